"""The real monitor service in the test's event loop, against the real broker."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from driftloop.common.v1.common_pb2 import ModelRef
from driftloop.serving.v1 import events_pb2 as serving
from driftloop_bus.embedded import EmbeddedBroker
from driftloop_bus.publisher import Publisher
from driftloop_events.envelope import CloudEvent, from_record
from driftloop_events.values import make_record
from driftloop_kit.testing import auth_headers
from driftloop_monitor.entrypoints.app import create_app
from driftloop_monitor.entrypoints.stream import MonitorStream
from driftloop_monitor.service_layer.monitor import Monitor
from driftloop_monitor.settings import MonitorSettings


@dataclass
class RunningMonitor:
    """The app, its HTTP client, a publisher for test input, and the monitor inside."""

    client: httpx.AsyncClient
    publisher: Publisher
    monitor: Monitor
    stream: MonitorStream
    settings: MonitorSettings
    bootstrap_servers: str

    async def predict(
        self,
        model: str,
        version: int,
        rows: list[dict[str, Any]],
        *,
        outputs: list[dict[str, Any]] | None = None,
        request_ids: list[str] | None = None,
    ) -> list[str]:
        """Publish one single-row prediction per row; return the request ids."""
        ids = request_ids or [f"req-{uuid.uuid4().hex[:12]}" for _ in rows]
        futures = []
        for i, (request_id, row) in enumerate(zip(ids, rows, strict=True)):
            answer = outputs[i] if outputs else {"prediction": 0.5}
            event = CloudEvent.new(
                serving.PredictionLogged(
                    request_id=request_id,
                    model=ModelRef(name=model, version=version, run_id="a" * 32),
                    alias="champion",
                    route=serving.ROUTE_CHAMPION,
                    inputs=[make_record(row)],
                    outputs=[make_record(answer)],
                    latency_ms=1.0,
                )
            )
            event.data.request_time.FromDatetime(event.time)
            futures.append(await self.publisher.publish(event))
        for future in futures:
            await future
        return ids

    async def alerts(self, model: str) -> list[CloudEvent[Any]]:
        """Every event on monitor.alerts about ``model``, in order."""
        records = await read_all(self.bootstrap_servers, "monitor.alerts")
        events = [from_record(r.value, r.headers) for r in records]
        return [e for e in events if e.key == model]


async def read_all(bootstrap_servers: str, topic: str, timeout: float = 10.0) -> list[Any]:
    """Every record of ``topic`` up to its end offsets now (no waiting for more)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    try:
        partitions = [
            TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or set()
        ]
        if not partitions:
            await consumer.force_metadata_update()
            partitions = [
                TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or set()
            ]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        records: list[Any] = []
        deadline = time.monotonic() + timeout

        async def behind() -> bool:
            for tp, end in ends.items():
                if await consumer.position(tp) < end:
                    return True
            return False

        while time.monotonic() < deadline and await behind():
            batch = await consumer.getmany(timeout_ms=200)
            for partition_records in batch.values():
                records.extend(partition_records)
        return records
    finally:
        await consumer.stop()


def monitor_settings(
    *, database_url: str, tmp_path: Path, broker: EmbeddedBroker, **overrides: Any
) -> MonitorSettings:
    """Settings of a test's monitor (the default durable engine), its own group."""
    return MonitorSettings(
        home=tmp_path / "home",
        database_url=database_url,
        kafka_bootstrap_servers=broker.bootstrap_servers,
        consumer_group=f"monitor-test-{uuid.uuid4().hex[:8]}",
        public_url="http://monitor.test",
        **overrides,
    )


@asynccontextmanager
async def monitor_running(settings: MonitorSettings) -> AsyncIterator[RunningMonitor]:
    """The monitor app with its lifespan, once its stream has joined its group."""
    # Short sessions: a test's group never waits long for a (re)join.
    if settings.stream_engine == "faust":
        options: dict[str, Any] = {"broker_session_timeout": 2.0, "broker_heartbeat_interval": 0.5}
    else:
        options = {"session_timeout_ms": 6000, "heartbeat_interval_ms": 500}
    app = create_app(settings, **options)
    publisher = Publisher(settings.kafka_bootstrap_servers)
    async with app.router.lifespan_context(app):
        stream: MonitorStream = app.state.stream
        await stream.wait_started(timeout=60)
        await publisher.start()
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            headers=auth_headers(), transport=transport, base_url="http://monitor.test"
        ) as client:
            try:
                yield RunningMonitor(
                    client=client,
                    publisher=publisher,
                    monitor=app.state.container.monitor,
                    stream=stream,
                    settings=settings,
                    bootstrap_servers=settings.kafka_bootstrap_servers,
                )
            finally:
                await publisher.stop()


@pytest.fixture
async def running_monitor(
    database_url: str, tmp_path: Path, broker: EmbeddedBroker
) -> AsyncIterator[RunningMonitor]:
    """The monitor with its default (durable) engine, on SQLite and on PostgreSQL.

    Each test has its own consumer group. Reference data of new champions comes
    from a URI template over ``<tmp_path>/refs``.
    """
    settings = monitor_settings(
        database_url=database_url,
        tmp_path=tmp_path,
        broker=broker,
        reference_uri_template=f"file://{tmp_path}/refs/{{model}}-{{version}}-{{run_id}}.csv",
    )
    async with monitor_running(settings) as running:
        yield running


@pytest.fixture
async def monitor_api(
    database_url: str, tmp_path: Path, broker: EmbeddedBroker
) -> AsyncIterator[httpx.AsyncClient]:
    """The monitor's REST API alone (no stream processor)."""
    settings = MonitorSettings(
        home=tmp_path / "home",
        database_url=database_url,
        kafka_bootstrap_servers=broker.bootstrap_servers,
        consume=False,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            headers=auth_headers(), transport=transport, base_url="http://monitor.test"
        ) as client:
            yield client
