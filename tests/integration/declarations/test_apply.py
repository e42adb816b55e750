"""A model declared once: ``driftloop apply`` against a running trainer, serving and
monitor (real servers on ports, the embedded broker), each taking the document up
without a restart."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import mlflow
import pytest
import yaml
from mlflow import MlflowClient
from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]
from typer.testing import CliRunner

from driftloop_bus.embedded import EmbeddedBroker, free_port
from driftloop_cli.main import app as cli
from driftloop_kit.auth import Role
from driftloop_kit.testing import ServedApp, auth_headers
from driftloop_monitor.entrypoints.app import create_app as create_monitor
from driftloop_monitor.settings import MonitorSettings
from driftloop_serving.entrypoints.app import create_app as create_serving
from driftloop_serving.settings import ServingSettings
from driftloop_trainer.entrypoints.app import create_app as create_trainer
from driftloop_trainer.settings import TrainerSettings

from ..serving.conftest import iris_frame, register_sklearn
from ..stack import reset_mlflow_uris, start_stack

pytestmark = pytest.mark.integration

MODEL = "churn-declared"
HEADERS = auth_headers(Role.ADMIN)


def document(**spec: Any) -> dict[str, Any]:
    """A model document for :data:`MODEL` (iris columns stand in for the features)."""
    body: dict[str, Any] = {
        "label": "churned",
        "features": {"feature_service": "churn_v1"},
        "trigger": {"cooldown_seconds": 120},
        "monitor": {"window_rows": 200},
    }
    body.update(spec)
    return {
        "apiVersion": "driftloop/v1",
        "kind": "Model",
        "metadata": {"name": MODEL},
        "spec": body,
    }


def within(seconds: float, probe: Callable[[], bool]) -> float:
    """How long until ``probe()`` holds (fails after ``seconds``)."""
    started = time.monotonic()
    while not probe():
        assert time.monotonic() - started < seconds, f"not within {seconds} s"
        time.sleep(0.1)
    return time.monotonic() - started


class Suite:
    """Trainer, serving and monitor, and the CLI pointed at them."""

    def __init__(self, home: Path, trainer: str, serving: str, monitor: str) -> None:
        self.home = home
        self.trainer = trainer
        self.serving = serving
        self.monitor = monitor

    def get(self, url: str) -> httpx.Response:
        return httpx.get(url, headers=HEADERS, timeout=10, trust_env=False)

    def apply(self, *documents: dict[str, Any]) -> Any:
        path = self.home / f"model-{uuid.uuid4().hex[:6]}.yaml"
        path.write_text(yaml.safe_dump_all(documents))
        return CliRunner().invoke(
            cli, ["apply", str(path), "--trainer-url", self.trainer, "--home", str(self.home)]
        )

    def trainer_revision(self) -> int:
        answer = self.get(f"{self.trainer}/models/{MODEL}")
        return int(answer.json()["revision"]) if answer.status_code == 200 else 0

    def serving_parameters(self) -> dict[str, Any]:
        answer = self.get(f"{self.serving}/v2/models/{MODEL}")
        return dict(answer.json().get("parameters") or {}) if answer.status_code == 200 else {}

    def monitor_policy(self) -> dict[str, Any]:
        return dict(self.get(f"{self.monitor}/policies/{MODEL}").json())


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Suite]:
    home = tmp_path_factory.mktemp("declared")
    with EmbeddedBroker() as broker:
        servers = []
        stack, started = start_stack(
            home=home,
            registry_database=f"sqlite:///{home / 'registry.db'}",
            bootstrap_servers=broker.bootstrap_servers,
        )
        servers.extend(started)
        mlflow.set_tracking_uri(stack.tracking_url)
        mlflow.set_registry_uri(stack.registry_url)
        frame, labels = iris_frame()
        register_sklearn(MODEL, LogisticRegression(max_iter=300).fit(frame, labels), frame)
        MlflowClient().set_registered_model_alias(MODEL, "champion", "1")
        common: dict[str, Any] = {
            "home": home,
            "kafka_bootstrap_servers": broker.bootstrap_servers,
            "auth_url": stack.tracking_url,
        }
        trainer = TrainerSettings(
            **common,
            port=free_port(),
            database_url=f"sqlite:///{home / 'trainer.db'}",
            registry_url=stack.registry_url,
            tracking_url=stack.tracking_url,
            consumer_group=f"trainer-{uuid.uuid4().hex[:6]}",
            models={},
        )
        serving = ServingSettings(
            **common, port=free_port(), grpc_port=0, registry_url=stack.registry_url, models=""
        )
        monitor = MonitorSettings(
            **common,
            port=free_port(),
            database_url=f"sqlite:///{home / 'monitor.db'}",
            consumer_group=f"monitor-{uuid.uuid4().hex[:6]}",
        )
        for app, settings, name in (
            (create_trainer(trainer), trainer, "trainer"),
            (create_serving(serving), serving, "serving"),
            (create_monitor(monitor), monitor, "monitor"),
        ):
            server = ServedApp(app, host=settings.host, port=settings.port, name=name)
            server.start()
            servers.append(server)
        try:
            yield Suite(home, servers[2].url, servers[3].url, servers[4].url)
        finally:
            reset_mlflow_uris()
            for server in reversed(servers):
                server.stop()


def test_apply_declares_a_model_that_trainer_serving_and_monitor_take_up_without_restart(
    suite: Suite,
) -> None:
    # Nothing knows the model before its document: serving does not serve it.
    assert suite.get(f"{suite.serving}/v2/models/{MODEL}").status_code == 404

    result = suite.apply(document())

    assert result.exit_code == 0, result.output
    assert f"model/{MODEL} configured (revision 1)" in result.output
    model = suite.get(f"{suite.trainer}/models/{MODEL}").json()
    assert model["policy"]["cooldown_seconds"] == 120
    assert model["job"]["label"] == "churned"
    assert model["job"]["feature_service"] == "churn_v1"
    assert model["document"]["spec"]["monitor"]["window_rows"] == 200
    # Serving loads its champion; the monitor stores the document's policy.
    within(20, lambda: suite.serving_parameters().get("document_revision") == 1)
    within(20, lambda: suite.monitor_policy()["window_rows"] == 200)

    # A change to three sections takes effect in the three services within seconds.
    changed = document(
        trigger={"cooldown_seconds": 60},
        serving={"shadow": True},
        monitor={"window_rows": 300, "drift_share": 0.4},
    )
    result = suite.apply(changed)
    assert result.exit_code == 0, result.output
    assert f"model/{MODEL} configured (revision 2)" in result.output
    assert suite.get(f"{suite.trainer}/models/{MODEL}").json()["policy"]["cooldown_seconds"] == 60
    took = within(10, lambda: suite.serving_parameters().get("shadow") is True)
    took = max(took, within(10, lambda: suite.monitor_policy()["window_rows"] == 300))
    assert suite.monitor_policy()["drift_share"] == 0.4
    assert took < 10

    # The same document again is no new revision.
    again = suite.apply(changed)
    assert again.exit_code == 0, again.output
    assert f"model/{MODEL} unchanged (revision 2)" in again.output
    revisions = suite.get(f"{suite.trainer}/models/{MODEL}/revisions").json()["revisions"]
    assert [r["revision"] for r in revisions] == [2, 1]
    assert revisions[0]["applied_by"] == "tests"  # the CLI token's subject


def test_an_invalid_document_is_refused_with_every_error_and_nothing_changes(
    suite: Suite,
) -> None:
    assert suite.apply(document()).exit_code == 0
    within(10, lambda: suite.monitor_policy()["window_rows"] == 200)
    before = suite.trainer_revision()
    policy = suite.monitor_policy()
    bad = document(
        trigger={"cooldown_seconds": -1, "schedule": "every tuesday"},
        serving={"canary_percent": 150},
        monitor={"window_rows": 1},
    )
    bad["spec"]["evaluaton"] = {}

    result = suite.apply(document(monitor={"window_rows": 500}), bad)

    assert result.exit_code == 2
    for error in (
        "spec.trigger.cooldown_seconds",
        "spec.trigger.schedule",
        "spec.serving.canary_percent",
        "spec.monitor.window_rows",
        "spec.evaluaton: Extra inputs are not permitted",
    ):
        assert error in result.output
    assert "5 error(s); nothing was applied" in result.output
    # The valid document beside the bad one was not sent either.
    assert suite.trainer_revision() == before
    time.sleep(1)
    assert suite.monitor_policy() == policy

    # The trainer checks on its own too: a client that skips the CLI gets a 400 listing them.
    answer = httpx.put(
        f"{suite.trainer}/models/{MODEL}", json=bad, headers=HEADERS, timeout=10, trust_env=False
    )
    assert answer.status_code == 400
    message = answer.json()["message"]
    assert "cooldown_seconds" in message
    assert "canary_percent" in message
    assert "evaluaton" in message
    assert suite.trainer_revision() == before


def test_applying_needs_the_deployer_role(suite: Suite) -> None:
    answer = httpx.put(
        f"{suite.trainer}/models/{MODEL}",
        json=document(),
        headers=auth_headers(Role.WRITER),
        timeout=10,
        trust_env=False,
    )

    assert answer.status_code == 403
