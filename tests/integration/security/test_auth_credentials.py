"""Tokens issued through the suite are listed and revocable everywhere; stored users log in.

Tracking keeps them; the registry, a service of its own, reads the revoked ids and
checks passwords there, as every other service does.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import mlflow
import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from typer.testing import CliRunner

from driftloop_bus.embedded import EmbeddedBroker
from driftloop_cli.main import app as cli
from driftloop_kit.auth import Role
from driftloop_kit.testing import auth_headers
from tests.fakes.common import unique

from ..stack import Stack, reset_mlflow_uris, running_stack

pytestmark = pytest.mark.integration

API = "/api/2.0/driftloop"
SEARCH = "/api/2.0/mlflow/registered-models/search"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, broker: EmbeddedBroker) -> Iterator[Stack]:
    with running_stack(
        home=tmp_path_factory.mktemp("home"), bootstrap_servers=broker.bootstrap_servers
    ) as running:
        yield running


def until(check: object, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.2)
    raise AssertionError("not within the time")


def test_a_revoked_token_is_refused_by_every_service_and_listed_as_revoked(
    stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DRIFTLOOP_TOKEN", auth_headers(Role.ADMIN)["Authorization"][7:])
    made = CliRunner().invoke(
        cli,
        [
            "token",
            "create",
            "--role",
            "reader",
            "--subject",
            "dashboard",
            "--tracking-url",
            stack.tracking_url,
            "--home",
            str(tmp_path),
        ],
    )
    assert made.exit_code == 0, made.output
    token = made.output.strip()
    headers = {"Authorization": f"Bearer {token}"}
    assert httpx.get(f"{stack.registry_url}{SEARCH}", headers=headers).status_code == 200

    listed = CliRunner().invoke(
        cli, ["token", "list", "--tracking-url", stack.tracking_url, "--home", str(tmp_path)]
    )
    (line,) = [x for x in listed.output.splitlines() if "dashboard" in x]
    token_id = line.split()[0]
    revoked = CliRunner().invoke(
        cli,
        [
            "token",
            "revoke",
            token_id,
            "--tracking-url",
            stack.tracking_url,
            "--home",
            str(tmp_path),
        ],
    )
    assert revoked.exit_code == 0, revoked.output

    def refused_everywhere() -> bool:
        answers = [
            httpx.get(f"{stack.registry_url}{SEARCH}", headers=headers),
            httpx.get(f"{stack.tracking_url}/api/2.0/mlflow/experiments/search", headers=headers),
        ]
        return all(a.status_code == 401 and "revoked" in a.text for a in answers)

    until(refused_everywhere)
    relisted = CliRunner().invoke(
        cli, ["token", "list", "--tracking-url", stack.tracking_url, "--home", str(tmp_path)]
    )
    assert token_id in relisted.output
    assert relisted.output.split(token_id)[1].split()[-1] != "-"  # a revocation time


def test_only_an_admin_issues_tokens_and_bounds_are_checked(stack: Stack) -> None:
    body = {"role": "admin", "subject": "me", "ttl_seconds": 60}
    as_deployer = httpx.post(
        f"{stack.tracking_url}{API}/tokens", json=body, headers=auth_headers(Role.DEPLOYER)
    )
    too_long = httpx.post(
        f"{stack.tracking_url}{API}/tokens",
        json={**body, "ttl_seconds": 10**9},
        headers=auth_headers(Role.ADMIN),
    )
    assert as_deployer.status_code == 403
    assert too_long.status_code == 400
    assert "ttl_seconds" in too_long.json()["message"]


def test_a_stored_user_logs_in_with_the_mlflow_client_on_tracking_and_the_registry(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    name, password = unique("carol"), "correct horse battery staple"
    created = httpx.post(
        f"{stack.tracking_url}{API}/users",
        json={"name": name, "password": password, "role": "writer"},
        headers=auth_headers(Role.ADMIN),
    )
    assert created.status_code == 200, created.text
    users = httpx.get(f"{stack.tracking_url}{API}/users", headers=auth_headers(Role.ADMIN))
    assert {"name": name, "role": "writer"}.items() <= next(
        u for u in users.json()["users"] if u["name"] == name
    ).items()
    assert "password" not in users.text

    monkeypatch.delenv("MLFLOW_TRACKING_TOKEN", raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", name)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", password)
    mlflow.set_tracking_uri(stack.tracking_url)
    mlflow.set_registry_uri(stack.registry_url)
    try:
        client = MlflowClient()
        model = unique("carols-model")
        client.create_registered_model(model)  # a writer registers (on the registry)
        with pytest.raises(MlflowException) as denied:
            client.delete_registered_model(model)  # an admin's
        assert denied.value.error_code == "PERMISSION_DENIED"
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "not her password at all")
        with pytest.raises(MlflowException) as wrong:
            MlflowClient().search_experiments()
        assert wrong.value.error_code == "UNAUTHENTICATED"
    finally:
        reset_mlflow_uris()


def test_passwords_are_checked_for_the_services_only(stack: Stack) -> None:
    answer = httpx.post(
        f"{stack.tracking_url}{API}/users/verify",
        json={"name": "anyone", "password": "guess"},
        headers=auth_headers(Role.ADMIN, subject="mallory"),
    )
    assert answer.status_code == 403
