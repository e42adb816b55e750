"""``POST /jobs/{id}/cancel``: a queued or running job is failed (``Cancelled``) and its
run stopped by the executor: the local executor terminates the job's process; the
Kubernetes executor deletes the Job with foreground propagation, here against the
in-process stand-in of the Kubernetes API (NOT a cluster; see
test_trainer_kubernetes_executor.py)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from driftloop_bus.embedded import EmbeddedBroker
from driftloop_kit.auth import Role
from driftloop_kit.declarations import TriggerPolicy
from driftloop_kit.testing import auth_headers
from driftloop_trainer.adapters.kubernetes import job_name
from driftloop_trainer.domain.jobs import JobSpec, ModelConfig
from tests.fakes.common import unique

from .conftest import eventually, running_trainer
from .sleeping_pipeline import PID_FILE
from .test_trainer_kubernetes_executor import (  # noqa: F401 - api: the fixture
    FakeApi,
    api,
    stand_in_kubeconfig,
)

pytestmark = pytest.mark.integration

REPOSITORY = Path(__file__).resolve().parents[3]
SLEEPING = JobSpec(entry_point="tests.integration.trainer.sleeping_pipeline:train")
POLICY = TriggerPolicy(debounce_seconds=0, cooldown_seconds=0, max_concurrent=5)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_cancelling_a_running_local_job_terminates_its_process_and_fails_it(
    sqlite_url: str, tmp_path: Path, broker: EmbeddedBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHONPATH", str(REPOSITORY))
    model = unique("cancelled")
    async with running_trainer(
        home=tmp_path,
        database_url=sqlite_url,
        bootstrap_servers=broker.bootstrap_servers,
        models={model: ModelConfig(policy=POLICY, job=SLEEPING)},
        warm_process=False,
    ) as client:
        started = await client.post(f"/models/{model}/train", json={"force": True})
        assert started.status_code == 202, started.text
        job_id = started.json()["job_id"]

        def read_pid() -> int | None:
            found = [p for p in tmp_path.rglob(PID_FILE) if p.parent.name == job_id]
            text = found[0].read_text() if found else ""
            return int(text) if text else None

        async def pid() -> int | None:
            return await asyncio.to_thread(read_pid)

        process = await eventually(pid, timeout=60, interval=0.2)
        assert alive(process)
        # Cancelling moves nothing in production: a reader may not.
        refused = await client.post(
            f"/jobs/{job_id}/cancel", headers=auth_headers(Role.READER, subject="r")
        )
        assert refused.status_code == 403

        cancelled = await client.post(
            f"/jobs/{job_id}/cancel", headers=auth_headers(Role.DEPLOYER, subject="ops")
        )
        assert cancelled.status_code == 200, cancelled.text
        body = cancelled.json()
        assert body["stopped"] is True
        job = body["job"]
        assert (job["status"], job["error_type"], job["error"]) == (
            "failed",
            "Cancelled",
            "cancelled by ops",
        )

        async def gone() -> bool | None:
            return True if not alive(process) else None

        assert await eventually(gone, timeout=15, interval=0.1)

        # The process's end changes nothing: the job stays cancelled.
        app: Any = client.app  # type: ignore[attr-defined]
        await app.state.container.training.wait_idle()
        after = (await client.get(f"/jobs/{job_id}")).json()["job"]
        assert (after["status"], after["error_type"]) == ("failed", "Cancelled")
        again = await client.post(f"/jobs/{job_id}/cancel")
        assert again.status_code == 409
        assert (await client.post("/jobs/no-such-job/cancel")).status_code == 404


async def test_cancelling_a_kubernetes_job_deletes_the_job_with_foreground_propagation(
    sqlite_url: str,
    tmp_path: Path,
    broker: EmbeddedBroker,
    api: tuple[FakeApi, str],  # noqa: F811 - the imported fixture
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    state, url = api
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(stand_in_kubeconfig(url)))
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    model = unique("cancelled-k8s")
    spec = JobSpec(image="ghcr.io/acme/trainer:1")
    async with running_trainer(
        home=tmp_path,
        database_url=sqlite_url,
        bootstrap_servers=broker.bootstrap_servers,
        models={model: ModelConfig(policy=POLICY, job=spec)},
        executor="kubernetes",
    ) as client:
        started = await client.post(f"/models/{model}/train", json={"force": True})
        assert started.status_code == 202, started.text
        job_id = started.json()["job_id"]
        name = job_name(job_id)

        async def created() -> bool | None:
            return True if name in state.jobs else None

        await eventually(created, timeout=30, interval=0.1)
        cancelled = await client.post(f"/jobs/{job_id}/cancel")
        assert cancelled.status_code == 200, cancelled.text
        assert cancelled.json()["stopped"] is True
        assert cancelled.json()["job"]["error_type"] == "Cancelled"
        assert state.deletes == [{"name": name, "propagationPolicy": "Foreground"}]
        assert name not in state.jobs
        # The executor's watch sees the Job gone; the job stays cancelled.
        app: Any = client.app  # type: ignore[attr-defined]
        await app.state.container.training.wait_idle()
        job = (await client.get(f"/jobs/{job_id}")).json()["job"]
        assert (job["status"], job["error_type"]) == ("failed", "Cancelled")
