"""Authentication as the official mlflow client and an attacker on the network meet it.

Tracking and the registry are served on real ports (SQLite); the client is mlflow's,
unchanged, configured only through its usual environment variables.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from pathlib import Path

import httpx
import mlflow
import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from sklearn.datasets import load_iris  # type: ignore[import-untyped]
from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]

from driftloop_bus.embedded import EmbeddedBroker
from driftloop_kit.auth import Role
from driftloop_kit.testing import auth_headers
from tests.fakes.common import unique

from ..stack import Stack, reset_mlflow_uris, running_stack

pytestmark = pytest.mark.integration

MODELS = "/api/2.0/mlflow/registered-models"
VERSIONS = "/api/2.0/mlflow/model-versions"
CREDENTIAL_VARIABLES = (
    "MLFLOW_TRACKING_TOKEN",
    "MLFLOW_TRACKING_USERNAME",
    "MLFLOW_TRACKING_PASSWORD",
)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, broker: EmbeddedBroker) -> Iterator[Stack]:
    home = tmp_path_factory.mktemp("home")
    with running_stack(
        home=home,
        registry_database=f"sqlite:///{home / 'registry.db'}",
        bootstrap_servers=broker.bootstrap_servers,
    ) as running:
        yield running


@pytest.fixture
def client_env(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """The mlflow client pointed at the stack, with no credential until the test sets one."""
    for variable in CREDENTIAL_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    mlflow.set_tracking_uri(stack.tracking_url)
    mlflow.set_registry_uri(stack.registry_url)
    try:
        yield monkeypatch
    finally:
        reset_mlflow_uris()


def token(role: Role) -> str:
    return auth_headers(role)["Authorization"].removeprefix("Bearer ")


def log_register_and_promote(name: str) -> str:
    features, labels = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=200).fit(features, labels)
    with mlflow.start_run() as run:
        mlflow.log_metric("accuracy", 0.97)
        mlflow.sklearn.log_model(
            model, name="model", registered_model_name=name, pip_requirements=["scikit-learn"]
        )
    client = MlflowClient()
    client.set_registered_model_alias(name, "champion", "1")
    assert client.get_model_version_by_alias(name, "champion").run_id == run.info.run_id
    return str(run.info.run_id)


def test_the_mlflow_client_logs_registers_and_moves_an_alias_with_a_token(
    client_env: pytest.MonkeyPatch,
) -> None:
    client_env.setenv("MLFLOW_TRACKING_TOKEN", token(Role.DEPLOYER))

    log_register_and_promote(unique("token-model"))


def test_the_mlflow_client_works_with_a_user_name_and_a_token_as_password(
    client_env: pytest.MonkeyPatch,
) -> None:
    client_env.setenv("MLFLOW_TRACKING_USERNAME", "alice")
    client_env.setenv("MLFLOW_TRACKING_PASSWORD", token(Role.DEPLOYER))

    log_register_and_promote(unique("basic-model"))


@pytest.mark.parametrize(
    ("credential", "code"),
    [({}, "UNAUTHENTICATED"), ({"MLFLOW_TRACKING_PASSWORD": "not-a-token"}, "UNAUTHENTICATED")],
)
def test_without_a_valid_credential_the_mlflow_client_raises_its_usual_exception(
    client_env: pytest.MonkeyPatch, credential: dict[str, str], code: str
) -> None:
    for variable, value in credential.items():
        client_env.setenv("MLFLOW_TRACKING_USERNAME", "mallory")
        client_env.setenv(variable, value)

    with pytest.raises(MlflowException) as raised:
        MlflowClient().search_experiments()
    assert raised.value.error_code == code


def test_a_reader_may_read_but_not_register(client_env: pytest.MonkeyPatch) -> None:
    client_env.setenv("MLFLOW_TRACKING_TOKEN", token(Role.READER))
    client = MlflowClient()

    client.search_experiments()
    with pytest.raises(MlflowException) as raised:
        client.create_registered_model(unique("not-allowed"))
    assert raised.value.error_code == "PERMISSION_DENIED"


def _mlmodel_and_pickle(tmp_path: Path) -> dict[str, bytes]:
    class Payload:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (print, ("owned",))

    import pickle

    pickled = io.BytesIO()
    pickle.dump(Payload(), pickled)
    mlmodel = (
        b"flavors:\n  sklearn:\n    pickled_model: model.pkl\n    serialization_format: pickle\n"
    )
    return {"MLmodel": mlmodel, "model.pkl": pickled.getvalue()}


@pytest.mark.parametrize("role", [None, Role.WRITER])
def test_the_attack_chain_stops_at_upload_without_a_credential_and_at_the_alias_as_a_writer(
    stack: Stack, tmp_path: Path, role: Role | None
) -> None:
    name = unique("victim")
    headers = auth_headers(role) if role is not None else {}
    artifacts = f"{stack.tracking_url}/api/2.0/mlflow-artifacts/artifacts/x/{name}"
    with httpx.Client(headers=headers, timeout=30) as http:
        uploads = [
            http.put(f"{artifacts}/{file}", content=body)
            for file, body in _mlmodel_and_pickle(tmp_path).items()
        ]
        if role is None:  # step 1 fails: nothing is stored
            assert [u.status_code for u in uploads] == [401, 401]
            assert uploads[0].json()["error_code"] == "UNAUTHENTICATED"
            listed = httpx.get(
                f"{stack.tracking_url}/api/2.0/mlflow-artifacts/artifacts",
                params={"path": f"x/{name}"},
                headers=auth_headers(Role.READER),
            )
            assert listed.json().get("files", []) == []
            return
        assert [u.status_code for u in uploads] == [200, 200]
        created = http.post(f"{stack.registry_url}{MODELS}/create", json={"name": name})
        assert created.status_code == 200, created.text
        version = http.post(
            f"{stack.registry_url}{VERSIONS}/create",
            json={"name": name, "source": f"mlflow-artifacts:/x/{name}"},
        )
        assert version.status_code == 200, version.text
        alias = http.post(
            f"{stack.registry_url}{MODELS}/alias",
            json={"name": name, "alias": "champion", "version": "1"},
        )
    assert alias.status_code == 403
    assert alias.json()["error_code"] == "PERMISSION_DENIED"
    moved = httpx.get(
        f"{stack.registry_url}{MODELS}/alias",
        params={"name": name, "alias": "champion"},
        headers=auth_headers(Role.READER),
    )
    assert moved.status_code == 404  # no alias points at the crafted version


def test_basic_credentials_that_are_not_base64_are_a_401_not_a_500(stack: Stack) -> None:
    answer = httpx.get(
        f"{stack.tracking_url}/api/2.0/mlflow/experiments/search",
        headers={"Authorization": "Basic ***not-base64***"},
    )
    assert answer.status_code == 401
    assert "base64" in answer.json()["message"]
    good = base64.b64encode(f"bob:{token(Role.READER)}".encode()).decode()
    fine = httpx.get(
        f"{stack.tracking_url}/api/2.0/mlflow/experiments/search",
        params={"max_results": 5},
        headers={"Authorization": f"Basic {good}"},
    )
    assert fine.status_code == 200, fine.text
