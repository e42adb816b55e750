"""Trigger policies on the real broker: debounce, cooldown, redelivery; decisions by REST."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml

from driftloop.common.v1.common_pb2 import ModelRef, Window
from driftloop.features.v1 import events_pb2 as features
from driftloop.monitor.v1 import events_pb2 as monitor
from driftloop_bus.embedded import EmbeddedBroker
from driftloop_events.envelope import CloudEvent
from driftloop_kit.auth import Role
from driftloop_kit.declarations import TriggerPolicy
from driftloop_kit.testing import auth_headers
from driftloop_trainer.adapters.kubernetes import JOB_ID_ANNOTATION, dns_label
from driftloop_trainer.domain.jobs import JobSpec, ModelConfig
from tests.fakes.common import unique

from .conftest import drift_alert, eventually, publisher, running_trainer, wait_for_job
from .test_trainer_kubernetes_executor import (  # noqa: F401 - api: the fixture
    FakeApi,
    api,
    stand_in_kubeconfig,
)

pytestmark = pytest.mark.integration

#: An entry point that cannot be loaded: the job fails at once, in its setup stage.
BROKEN = JobSpec(entry_point="driftloop_trainer.no_such_module:train")


#: A job that fails after a few seconds: the burst is decided while it runs.
SLOW_FAILURE = JobSpec(entry_point="tests.integration.trainer.slow_failing_pipeline:train")
REPOSITORY = Path(__file__).resolve().parents[3]


async def test_five_drift_alerts_in_the_debounce_window_start_one_job_and_one_in_cooldown_none(
    database_url: str, tmp_path: Path, broker: EmbeddedBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHONPATH", str(REPOSITORY))
    model = unique("debounced")
    policy = TriggerPolicy(debounce_seconds=300, cooldown_seconds=600, max_concurrent=5)
    async with (
        running_trainer(
            home=tmp_path,
            database_url=database_url,
            bootstrap_servers=broker.bootstrap_servers,
            models={model: ModelConfig(policy=policy, job=SLOW_FAILURE)},
        ) as client,
        publisher(broker.bootstrap_servers) as bus,
    ):

        async def decisions(count: int) -> list[dict[str, Any]] | None:
            found = (await client.get("/decisions", params={"model": model})).json()["decisions"]
            return found if len(found) >= count else None

        for window in range(5):
            await bus.publish_and_wait(drift_alert(model, f"w{window}"))
        burst = list(reversed(await eventually(lambda: decisions(5), timeout=60)))
        assert [d["outcome"] for d in burst] == ["started"] + ["suppressed"] * 4
        assert {d["suppression"] for d in burst[1:]} == {"debounce"}
        job_id = burst[0]["job_id"]
        assert job_id
        assert all(d["job_id"] is None for d in burst[1:])

        job = await wait_for_job(client, job_id)
        assert (job["status"], job["stage"]) == ("failed", "data")

        await bus.publish_and_wait(drift_alert(model, "w5"))
        latest = (await eventually(lambda: decisions(6), timeout=30))[0]
        assert (latest["outcome"], latest["suppression"]) == ("suppressed", "cooldown")
        assert latest["detail"].startswith("cooldown: a job finished")

        # The monitor alerting again on the window that started the job: a duplicate.
        await bus.publish_and_wait(drift_alert(model, "w0"))
        again = (await eventually(lambda: decisions(7), timeout=30))[0]
        assert (again["suppression"], again["dedup_key"]) == ("duplicate", f"drift:{model}:1:w0")

        suppressed = (
            await client.get("/decisions", params={"model": model, "outcome": "suppressed"})
        ).json()["decisions"]
        reasons = {d["suppression"]: d["detail"] for d in suppressed}
        assert set(reasons) == {"debounce", "cooldown", "duplicate"}
        assert "debounce: a job started" in reasons["debounce"]
        assert all(d["event"]["type"] == "driftloop.monitor.drift.detected" for d in suppressed)
        jobs = (await client.get("/jobs", params={"model": model})).json()["jobs"]
        assert [j["id"] for j in jobs] == [job_id]
        assert jobs[0]["trigger"]["kind"] == "drift"


async def test_a_persistent_drift_that_began_in_cooldown_gets_one_job_after_the_cooldown(
    database_url: str, tmp_path: Path, broker: EmbeddedBroker
) -> None:
    model = unique("cooling")
    policy = TriggerPolicy(debounce_seconds=0, cooldown_seconds=4, max_concurrent=5)
    async with (
        running_trainer(
            home=tmp_path,
            database_url=database_url,
            bootstrap_servers=broker.bootstrap_servers,
            models={model: ModelConfig(policy=policy, job=BROKEN)},
            schedule_check_seconds=0.5,
        ) as client,
        publisher(broker.bootstrap_servers) as bus,
    ):

        async def jobs(count: int) -> list[dict[str, Any]] | None:
            found = (await client.get("/jobs", params={"model": model})).json()["jobs"]
            return found if len(found) >= count else None

        await bus.publish_and_wait(drift_alert(model, "w0", episode_id="ep-first"))
        (queued,) = await eventually(lambda: jobs(1), timeout=60)
        first = await wait_for_job(client, queued["id"])  # it fails at once: cooldown starts

        # The drift of a new episode begins in the cooldown: deferred, not dropped.
        await bus.publish_and_wait(drift_alert(model, "w1", episode_id="ep-second"))
        second = await eventually(lambda: jobs(2), timeout=60)
        retrained = [j for j in second if j["trigger"]["episode_id"] == "ep-second"]
        assert len(retrained) == 1
        decisions = (await client.get("/decisions", params={"model": model})).json()["decisions"]
        outcomes = [(d["outcome"], d["episode_id"]) for d in reversed(decisions)]
        assert outcomes == [
            ("started", "ep-first"),
            ("deferred", "ep-second"),
            ("started", "ep-second"),
        ]
        started = retrained[0]["created_at"]
        assert started >= first["finished_at"]
        # Exactly one: the clock keeps ticking past another cooldown, no third job starts.
        await wait_for_job(client, retrained[0]["id"])
        await asyncio.sleep(policy.cooldown_seconds + 2)
        assert len((await client.get("/jobs", params={"model": model})).json()["jobs"]) == 2
        # Many jobs by id in one call (the console's page of versions), and a bounded list.
        by_id = await client.get("/jobs", params={"id": [retrained[0]["id"], "no-such-job"]})
        assert [j["id"] for j in by_id.json()["jobs"]] == [retrained[0]["id"]]
        too_many = await client.get("/jobs", params={"id": [f"j{i}" for i in range(101)]})
        assert too_many.status_code == 400


async def test_a_redelivered_drift_alert_starts_no_second_job(
    database_url: str, tmp_path: Path, broker: EmbeddedBroker
) -> None:
    model = unique("redelivered")
    # Nothing but the inbox stands between a redelivery and a second job.
    policy = TriggerPolicy(
        debounce_seconds=0, cooldown_seconds=0, max_concurrent=10, dedup_seconds=0
    )
    async with (
        running_trainer(
            home=tmp_path,
            database_url=database_url,
            bootstrap_servers=broker.bootstrap_servers,
            models={model: ModelConfig(policy=policy, job=BROKEN)},
        ) as client,
        publisher(broker.bootstrap_servers) as bus,
    ):
        alert = drift_alert(model, "w1")
        await bus.publish_and_wait(alert)
        await bus.publish_and_wait(alert)  # the same event id, as a redelivery brings it
        marker = drift_alert(model, "w2")
        await bus.publish_and_wait(marker)  # handled after both copies: same partition

        async def marker_decided() -> list[dict[str, Any]] | None:
            found = (await client.get("/decisions", params={"model": model})).json()["decisions"]
            return found if any(d["event"]["id"] == marker.id for d in found) else None

        decided = await eventually(marker_decided, timeout=60)
        assert sorted(d["event"]["id"] for d in decided) == sorted([alert.id, marker.id])
        assert all(d["outcome"] == "started" for d in decided)
        jobs = (await client.get("/jobs", params={"model": model})).json()["jobs"]
        assert len(jobs) == 2
        assert sorted(j["trigger"]["event_id"] for j in jobs) == sorted([alert.id, marker.id])


async def test_a_manual_request_is_decided_by_the_policy_and_unknown_models_are_404(
    sqlite_url: str, tmp_path: Path, broker: EmbeddedBroker
) -> None:
    model = unique("manual")
    policy = TriggerPolicy(debounce_seconds=300, cooldown_seconds=0, max_concurrent=5)
    async with running_trainer(
        home=tmp_path,
        database_url=sqlite_url,
        bootstrap_servers=broker.bootstrap_servers,
        models={model: ModelConfig(policy=policy, job=BROKEN)},
    ) as client:
        first = await client.post(
            f"/models/{model}/train",
            json={"reason": "new labels", "requested_by": "someone-else"},
            headers=auth_headers(Role.DEPLOYER, subject="alice"),
        )
        assert first.status_code == 202
        job_id = first.json()["job_id"]
        second = await client.post(f"/models/{model}/train", json={})
        assert second.status_code == 200
        assert second.json()["suppression"] == "debounce"
        job = await wait_for_job(client, job_id)
        assert job["trigger"]["reason"] == "new labels"
        # Who asked is the token's subject, not what the body claims.
        assert job["trigger"]["requested_by"] == "alice"
        assert "no_such_module" in job["error"]
        logs = await client.get(f"/jobs/{job_id}/logs")
        assert "ModuleNotFoundError" in logs.text
        missing = await client.post("/models/nobody/train", json={})
        assert missing.status_code == 404
        assert (await client.get("/jobs/job-nope")).status_code == 404


async def test_new_data_past_its_threshold_and_a_performance_alert_start_jobs_a_cluster_reports(
    sqlite_url: str,
    tmp_path: Path,
    broker: EmbeddedBroker,
    api: tuple[FakeApi, str],  # noqa: F811 - the imported fixture
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The cluster is the in-process stand-in of the Kubernetes API (not a cluster), found
    # through a kubeconfig as the trainer finds a real one.
    state, url = api
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(stand_in_kubeconfig(url)))
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    model = unique("clustered")
    policy = TriggerPolicy(
        debounce_seconds=0, cooldown_seconds=0, max_concurrent=5, new_data_rows=500
    )
    # A view of its own: other tests of the session ingest into iris_features.
    view = f"{model}_features"
    spec = JobSpec(feature_views=[view], image="ghcr.io/acme/trainer:1")
    async with (
        running_trainer(
            home=tmp_path,
            database_url=sqlite_url,
            bootstrap_servers=broker.bootstrap_servers,
            models={model: ModelConfig(policy=policy, job=spec)},
            executor="kubernetes",
        ) as client,
        publisher(broker.bootstrap_servers) as bus,
    ):
        for rows in (300, 300):
            await bus.publish_and_wait(
                CloudEvent.new(
                    features.FeaturesIngested(
                        push_source="iris_push",
                        feature_views=[view],
                        rows_written=rows,
                        online_store_written=True,
                        offline_store_written=True,
                    )
                )
            )
        degraded = CloudEvent.new(
            monitor.PerformanceDegraded(
                model=ModelRef(name=model, version=1),
                metric="accuracy",
                value=0.7,
                threshold=0.9,
                higher_is_better=True,
                window=Window(id="perf-w1"),
                labelled_rows=200,
            )
        )
        await bus.publish_and_wait(degraded)

        async def three() -> list[dict[str, Any]] | None:
            found = (await client.get("/decisions", params={"model": model})).json()["decisions"]
            return found if len(found) >= 3 else None

        decided = list(reversed(await eventually(three, timeout=60)))
        new_data = [d for d in decided if d["kind"] == "new_data"]
        assert [(d["outcome"], d["suppression"]) for d in new_data] == [
            ("suppressed", "below_threshold"),
            ("started", None),
        ]
        assert "300 new rows" in new_data[0]["detail"]
        (performance,) = [d for d in decided if d["kind"] == "performance"]
        assert performance["outcome"] == "started"
        assert performance["event"]["id"] == degraded.id
        assert "accuracy 0.7000 crossed 0.9000" in performance["reason"]

        # The Kubernetes executor created a valid Job through the API; the pod reports back.
        job_id = new_data[1]["job_id"]

        async def running() -> dict[str, Any] | None:
            job = (await client.get(f"/jobs/{job_id}")).json()["job"]
            return job if job["status"] == "running" else None

        await eventually(running, timeout=30)
        (manifest,) = [
            body
            for body in state.created
            if body["metadata"].get("annotations", {}).get(JOB_ID_ANNOTATION) == dns_label(job_id)
        ]
        kubernetes_validate.validate(manifest, "1.30", strict=True)
        env = {
            e["name"]: e["value"]
            for e in manifest["spec"]["template"]["spec"]["containers"][0]["env"]
        }
        assert env["DRIFTLOOP_TRAINER_REPORT_URL"].startswith("http://127.0.0.1:")
        failure = {"ok": False, "stage": "data", "error": "no rows", "error_type": "NoData"}
        # The pod reports with its job's own token (in its context); no other may.
        token = json.loads(env["DRIFTLOOP_TRAINER_JOB"])["token"]
        forged = await client.post(f"/jobs/{job_id}/result", json=failure)  # an admin's
        assert forged.status_code == 403, forged.text
        reported = await client.post(
            f"/jobs/{job_id}/result", json=failure, headers={"Authorization": f"Bearer {token}"}
        )
        assert reported.status_code == 200, reported.text
        assert (reported.json()["job"]["status"], reported.json()["job"]["stage"]) == (
            "failed",
            "data",
        )
        again = await client.post(
            f"/jobs/{job_id}/result", json=failure, headers={"Authorization": f"Bearer {token}"}
        )
        assert again.status_code == 409
