"""Two trainer replicas (two processes) on one PostgreSQL database and the real broker;
``kill -9`` of the one that holds a job, mid-episode.

Both replicas are ``driftloop run trainer`` subprocesses in one consumer group. A drift
alert starts a job (a pipeline that sleeps) on whichever replica owns the alert's
partition; the test kills that replica. Then:

- the job it held is failed (``Interrupted``) by the survivor, by the lease rule: on
  one host a lease's owner whose process is gone is known dead at once (another host's
  would be after ``job_lease_seconds`` without renewal; test_trainer_replicas.py);
- the alert, delivered again (as after the rebalance, under a new event id), starts no
  second job for the same drift: one job per trigger;
- the survivor still decides: the next window's alert starts one job of its own.

Promotion by two replicas at once (one moves the aliases, the other's compare-and-set
fails) is the registry's CAS, tested in tests/integration/registry and
test_trainer_promotion.py; this test's jobs never reach the gate.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from driftloop_bus.embedded import EmbeddedBroker, free_port
from driftloop_kit.declarations import TriggerPolicy
from driftloop_kit.testing import auth_headers
from driftloop_trainer.domain.jobs import JobSpec, ModelConfig
from tests.fakes.common import unique
from tests.integration.trainer.conftest import drift_alert, publisher
from tests.integration.trainer.sleeping_pipeline import PID_FILE

pytestmark = pytest.mark.e2e

REPOSITORY = Path(__file__).resolve().parents[2]
SLEEPING = JobSpec(entry_point="tests.integration.trainer.sleeping_pipeline:train")
POLICY = TriggerPolicy(debounce_seconds=0, cooldown_seconds=0, max_concurrent=5)


def alive(pid: int) -> bool:
    """Whether the process runs (a zombie waiting for its reaper does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def wait_until(what: str, found: Callable[[], Any], timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            value = found()
            if value:
                return value
        time.sleep(0.3)
    raise AssertionError(f"{what} within {timeout:.0f} s")


@pytest.fixture
def replicas(
    tmp_path: Path, postgres_databases: Callable[[], str], broker: EmbeddedBroker
) -> Iterator[tuple[str, list[tuple[subprocess.Popen[bytes], str]]]]:
    """Two trainer processes on one database and one consumer group; the model's name."""
    model = unique("replicated")
    models = {model: ModelConfig(policy=POLICY, job=SLEEPING).model_dump(mode="json")}
    env = {
        **os.environ,
        "PYTHONPATH": str(REPOSITORY),
        "DRIFTLOOP_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
        "DRIFTLOOP_TRAINER_DATABASE_URL": postgres_databases(),
        "DRIFTLOOP_TRAINER_MODELS": json.dumps(models),
        "DRIFTLOOP_TRAINER_CONSUMER_GROUP": unique("trainer-replicas"),
        "DRIFTLOOP_TRAINER_WARM_PROCESS": "false",
        "DRIFTLOOP_TRAINER_SCHEDULE_CHECK_SECONDS": "1",
        "DRIFTLOOP_TRAINER_JOB_LEASE_SECONDS": "5",
    }
    started: list[tuple[subprocess.Popen[bytes], str]] = []
    try:
        for n in range(2):
            home = tmp_path / f"replica-{n}"
            home.mkdir()
            port = free_port()
            log = (tmp_path / f"replica-{n}.log").open("wb")
            process = subprocess.Popen(
                [sys.executable, "-m", "driftloop_cli", "run", "trainer", "--port", str(port)],
                env={**env, "DRIFTLOOP_HOME": str(home)},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            started.append((process, f"http://127.0.0.1:{port}"))
        for process, url in started:

            def ready(url: str = url) -> bool:
                return httpx.get(f"{url}/readyz", trust_env=False).status_code == 200

            wait_until(f"trainer {url} ready (pid {process.pid})", ready, timeout=180)
        yield model, started
    finally:
        for process, _ in started:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    process.kill()
        # The sleeping jobs a killed replica left behind (a local job outlives kill -9).
        for pid_file in tmp_path.rglob(PID_FILE):
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid_file.read_text()), signal.SIGKILL)


@pytest.mark.timeout(420)
def test_killing_the_replica_that_holds_a_job_leaves_one_job_per_trigger(
    replicas: tuple[str, list[tuple[subprocess.Popen[bytes], str]]],
    broker: EmbeddedBroker,
    tmp_path: Path,
) -> None:
    model, started = replicas
    headers = auth_headers()

    def get(url: str, path: str, **params: Any) -> Any:
        response = httpx.get(f"{url}{path}", params=params, headers=headers, trust_env=False)
        response.raise_for_status()
        return response.json()

    async def publish(window: str) -> None:
        async with publisher(broker.bootstrap_servers) as bus:
            await bus.publish_and_wait(drift_alert(model, window))

    asyncio.run(publish("w1"))

    def running_job() -> dict[str, Any] | None:
        jobs = get(started[0][1], "/jobs", model=model)["jobs"]
        found: dict[str, Any] | None = next((j for j in jobs if j["status"] == "running"), None)
        return found

    job = wait_until("a job running for the alert", running_job, timeout=120)

    def job_pid() -> tuple[int, int] | None:
        """(the replica that runs the job, the job's process): from the job's folder,
        which lies in the home of the replica that started it."""
        for n in range(len(started)):
            for found in (tmp_path / f"replica-{n}").rglob(PID_FILE):
                text = found.read_text() if found.parent.name == job["id"] else ""
                if text:
                    return n, int(text)
        return None

    n, process = wait_until("the job's process writing its pid", job_pid, timeout=60)
    assert alive(process)
    holder, _ = started[n]
    ((survivor, survivor_url),) = [r for m, r in enumerate(started) if m != n]

    holder.send_signal(signal.SIGKILL)
    holder.wait(10)
    killed_at = time.monotonic()
    # The job's process ends with its trainer: no orphan goes on training.
    wait_until("the job's process ending with its trainer", lambda: not alive(process), 15)

    def failed() -> dict[str, Any] | None:
        found: dict[str, Any] = get(survivor_url, f"/jobs/{job['id']}")["job"]
        return found if found["status"] == "failed" else None

    orphan = wait_until("the survivor failing the orphaned job", failed, timeout=60)
    print(f"the orphaned job was failed {time.monotonic() - killed_at:.1f} s after the kill")
    assert orphan["error_type"] == "Interrupted"
    assert survivor.poll() is None

    # The same drift again (a redelivery after the rebalance, under a new event id),
    # then the next window's drift.
    asyncio.run(publish("w1"))
    asyncio.run(publish("w2"))

    def two_started() -> list[dict[str, Any]] | None:
        found: list[dict[str, Any]] = get(survivor_url, "/decisions", model=model)["decisions"]
        started = [d for d in found if d["outcome"] == "started"]
        return found if len(started) >= 2 else None

    wait_until("the next window's alert starting a job", two_started, timeout=120)
    time.sleep(2)  # a second job for one trigger would be decided by now
    decisions = get(survivor_url, "/decisions", model=model)["decisions"]
    jobs = get(survivor_url, "/jobs", model=model)["jobs"]
    assert len(jobs) == 2, jobs
    started_keys = Counter(d["dedup_key"] for d in decisions if d["outcome"] == "started")
    assert sorted(started_keys.values()) == [1, 1], decisions
    # Every other decision on the same drift was a suppressed duplicate.
    others = [d for d in decisions if d["outcome"] != "started"]
    assert others, decisions
    assert {d["suppression"] for d in others} == {"duplicate"}, decisions
