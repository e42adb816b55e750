"""Run events on the real broker: exactly one ``run.finished``, also across an outage."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow import MlflowClient

from driftloop.tracking.v1 import events_pb2 as tracking_events
from driftloop_bus.embedded import EmbeddedBroker
from driftloop_events.envelope import from_record

from ..bus.helpers import eventually, read_topic, relay_failed_since, relay_failures
from .conftest import RunningServer, tracking_settings

pytestmark = pytest.mark.integration


async def run_events(bootstrap: str, run_id: str, expected: int) -> list[object]:
    records = await read_topic(bootstrap, "tracking.runs", expected=10_000, timeout=5)
    events = [from_record(r.value, r.headers) for r in records]
    return [e for e in events if e.key == run_id]


async def test_a_finished_run_publishes_created_then_one_finished_with_what_was_logged(
    tracking_url: str, broker: EmbeddedBroker
) -> None:
    client = MlflowClient(tracking_url)
    run = client.create_run(client.create_experiment("events-ok"), run_name="evented")
    run_id = run.info.run_id
    client.log_param(run_id, "alpha", "0.5")
    client.log_metric(run_id, "auc", 0.91)
    client.set_terminated(run_id, "FINISHED")
    client.set_terminated(run_id, "FINISHED")  # a second end changes nothing

    async def both() -> list[object] | None:
        found = await run_events(broker.bootstrap_servers, run_id, 2)
        return found if len(found) >= 2 else None

    events = await eventually(both, timeout=30)
    types = [e.type for e in events]
    assert types == ["driftloop.tracking.run.created", "driftloop.tracking.run.finished"]
    finished = events[1].data
    assert finished.status == tracking_events.RUN_STATUS_FINISHED
    assert dict(finished.params) == {"alpha": "0.5"}
    assert finished.metrics["auc"] == pytest.approx(0.91)
    assert finished.run_name == "evented"
    assert finished.artifact_uri.endswith(f"/{run_id}/artifacts")


async def test_a_run_finished_while_the_broker_is_down_is_published_once_it_returns(
    sqlite_url: str, tmp_path: Path, own_broker: EmbeddedBroker
) -> None:
    server = RunningServer(
        tracking_settings(
            home=tmp_path / "home",
            database_url=sqlite_url,
            bootstrap_servers=own_broker.bootstrap_servers,
        )
    )
    server.start()
    try:
        client = MlflowClient(server.url)
        run_id = client.create_run("0").info.run_id

        async def created() -> list[object] | None:
            return await run_events(own_broker.bootstrap_servers, run_id, 1) or None

        await eventually(created, timeout=30)  # nothing left in the outbox
        failures = relay_failures("tracking")
        own_broker.stop()  # in memory: what it held is gone when it returns
        client.log_metric(run_id, "loss", 0.1)
        client.set_terminated(run_id, "FAILED")  # stored now, published later
        assert client.get_run(run_id).info.status == "FAILED"
        # The broker stays away until the relay has given up on it and failed to
        # reconnect (its second failed pass), so no send of the first producer is still
        # being retried. A tansu restarted under such a send takes it into a topic it
        # auto-creates with its own partitions, and loses it (Kafka's topics outlive a
        # restart); a send the broker takes just as the relay gives up arrives twice,
        # with the same id (delivery is at least once; consumers deduplicate by id).
        await eventually(lambda: relay_failed_since("tracking", failures + 1), timeout=60)
        own_broker.start()

        async def finished() -> list[object] | None:
            found = [
                e
                for e in await run_events(own_broker.bootstrap_servers, run_id, 1)
                if e.type == "driftloop.tracking.run.finished"  # type: ignore[attr-defined]
            ]
            return found or None

        events = await eventually(finished, timeout=60)
    finally:
        server.stop()
    assert len(events) == 1
    assert events[0].data.status == tracking_events.RUN_STATUS_FAILED
