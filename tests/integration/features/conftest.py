"""The real features service, served by uvicorn on a free port, and Kafka helpers.

Starting the service applies the Feast repo and joins the ingestion group (a few
seconds on the embedded broker), so the servers are shared by the tests of a module;
tests keep apart by using entity ids of their own.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from driftloop.common.v1.common_pb2 import Value
from driftloop.features.v1 import events_pb2 as features
from driftloop_bus.embedded import EmbeddedBroker, free_port
from driftloop_events.envelope import PROTOBUF, CloudEvent, from_record, to_record
from driftloop_features.entrypoints.app import create_app
from driftloop_features.settings import FeaturesSettings
from driftloop_kit.testing import auth_headers

_ids = itertools.count(1)


def new_flower_ids(count: int) -> list[int]:
    """Entity ids no other test of the session uses."""
    base = (int(uuid.uuid4().int % 1_000_000) * 1000) + next(_ids) * 100_000_000
    return [base + i for i in range(count)]


class RunningServer:
    """A uvicorn server in a background thread, with the app it serves."""

    def __init__(self, settings: FeaturesSettings) -> None:
        self.settings = settings
        self.url = f"http://{settings.host}:{settings.port}"
        self.app = create_app(settings)
        config = uvicorn.Config(
            self.app, host=settings.host, port=settings.port, log_config=None, lifespan="on"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self, timeout: float = 60.0) -> None:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.server.started:
                agent = self.app.state.agent
                if agent is None or agent.started.is_set():
                    return
            if not self.thread.is_alive():
                raise RuntimeError("features server exited during start-up")
            time.sleep(0.05)
        raise RuntimeError(f"features server did not start in {timeout}s")

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


def features_settings(*, home: Path, bootstrap_servers: str, **overrides: Any) -> FeaturesSettings:
    """Settings for a test server on a free port, with a consumer group of its own."""
    values: dict[str, Any] = {
        "home": home,
        "kafka_bootstrap_servers": bootstrap_servers,
        "port": free_port(),
        "ingest_group": f"features-test-{uuid.uuid4().hex[:8]}",
        "labels_group": f"features-labels-test-{uuid.uuid4().hex[:8]}",
        "ingest_session_timeout": 6.0,
        "ingest_batch_seconds": 0.05,
        "log_format": "console",
        **overrides,
    }
    return FeaturesSettings(**values)


@pytest.fixture(scope="module")
def sqlite_server(
    broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    """The service on its embedded defaults: SQLite online, Parquet offline, file registry.

    Ingestion runs on the bus's batch consumer (``stream_engine="bus"``); the faust
    agent has a server of its own in ``test_features_ingest.py``.
    """
    home = tmp_path_factory.mktemp("features-sqlite")
    server = RunningServer(
        features_settings(
            home=home, bootstrap_servers=broker.bootstrap_servers, stream_engine="bus"
        )
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


def feature_row(
    flower_id: int | None,
    event_time: datetime,
    *,
    values: Mapping[str, Value],
    push_source: str = "iris_push",
    to: features.PushMode = features.PUSH_MODE_ONLINE_AND_OFFLINE,
) -> features.FeatureRow:
    """A row for the example repo's ``iris_push``; ``flower_id=None`` leaves the key out."""
    row = features.FeatureRow(push_source=push_source, entity_columns=["flower_id"], to=to)
    if flower_id is not None:
        row.values["flower_id"].CopyFrom(Value(int64_value=flower_id))
    for name, value in values.items():
        row.values[name].CopyFrom(value)
    row.event_time.FromDatetime(event_time)
    return row


def measurements(sepal_length: float, site: str = "north") -> dict[str, Value]:
    """Feature values of an iris row."""
    return {
        "sepal_length": Value(double_value=sepal_length),
        "sepal_width": Value(double_value=3.5),
        "petal_length": Value(double_value=1.4),
        "petal_width": Value(double_value=0.2),
        "site": Value(string_value=site),
    }


async def produce(
    bootstrap_servers: str,
    rows: Sequence[features.FeatureRow],
    *,
    content_type: str = PROTOBUF,
) -> list[str]:
    """Send ``rows`` to ``features.ingest`` with a plain aiokafka producer; return event ids."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers, acks="all", linger_ms=5)
    await producer.start()
    ids: list[str] = []
    try:
        futures = []
        for row in rows:
            event = CloudEvent.new(row)
            record = to_record(event, content_type=content_type)
            futures.append(
                await producer.send(
                    record.topic, record.value, key=record.key, headers=record.headers
                )
            )
            ids.append(event.id)
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return ids


async def read_records(
    bootstrap_servers: str,
    topic: str,
    predicate: Callable[[Any], bool],
    *,
    expected: int,
    timeout: float = 20.0,
) -> list[Any]:
    """Records of ``topic`` (from the beginning) matching ``predicate``, until ``expected``."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap_servers, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    found: list[Any] = []
    try:
        deadline = time.monotonic() + timeout
        while len(found) < expected and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=300)
            for records in batch.values():
                found.extend(r for r in records if predicate(r))
    finally:
        await consumer.stop()
    return found


def event_of(record: Any) -> CloudEvent[Any] | None:
    """The CloudEvent in a record, or None if it is not one."""
    try:
        return from_record(record.value, list(record.headers))
    except Exception:
        return None


async def eventually(
    probe: Callable[[], Awaitable[Any]], *, timeout: float = 15.0, interval: float = 0.05
) -> Any:
    """Poll ``probe`` until it returns something truthy (bounded), and return that."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = await probe()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s (last value: {last!r})")


async def online_values(
    url: str, flower_ids: Sequence[int], features_: Sequence[str]
) -> dict[str, list[Any]]:
    """``POST /get-online-features``, as feature name -> values."""
    async with httpx.AsyncClient(headers=auth_headers(), base_url=url, timeout=10) as client:
        response = await client.post(
            "/get-online-features",
            json={"entities": {"flower_id": list(flower_ids)}, "features": list(features_)},
        )
    response.raise_for_status()
    body = response.json()
    names = body["metadata"]["feature_names"]
    return {name: result["values"] for name, result in zip(names, body["results"], strict=True)}
