"""The ingestion use case with fakes: good rows kept, bad rows and failed pushes
dead-lettered with the reason, one watermark per push source."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pytest

from driftloop.common.v1.common_pb2 import Value
from driftloop.features.v1 import events_pb2 as features
from driftloop_bus.consumer import RetryPolicy
from driftloop_bus.deadletter import Delivered
from driftloop_events.envelope import CloudEvent, to_record
from driftloop_features.domain.rows import ColumnSpec, Kind, PushSourceSchema
from driftloop_features.handlers import Ingestion

pytestmark = pytest.mark.unit

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def _schema(name: str) -> PushSourceSchema:
    return PushSourceSchema(
        name=name,
        entity_columns=(ColumnSpec("flower_id", Kind.INT),),
        feature_columns=(ColumnSpec("sepal_length", Kind.FLOAT),),
        timestamp_field="event_timestamp",
        created_field=None,
        feature_views=(f"{name}_view",),
    )


class FakeGateway:
    """Records pushes; pushes to a source named in ``failing`` raise."""

    def __init__(self, *sources: str, failing: tuple[str, ...] = ()) -> None:
        self.push_schemas = {name: _schema(name) for name in sources}
        self.failing = failing
        self.pushed: list[tuple[str, str, list[dict[str, Any]]]] = []
        self.refreshes = 0

    def push(self, name: str, frame: pd.DataFrame, to: str) -> None:
        if name in self.failing:
            raise ConnectionError("offline store is down")
        self.pushed.append((name, to, frame.to_dict("records")))

    def write_online_rows(self, name: str, rows: list[dict[str, Any]]) -> int:
        if name in self.failing:
            raise ConnectionError("online store is down")
        self.pushed.append((name, "online", list(rows)))
        return len(rows)

    def refresh(self) -> None:
        self.refreshes += 1


class FakeDeadLetters:
    def __init__(self) -> None:
        self.sent: list[tuple[int, str]] = []

    async def send(self, message: Delivered, *, error: BaseException, attempts: int) -> None:
        self.sent.append((message.offset, f"{type(error).__name__}: {error}"))


class FakeDatabase:
    @asynccontextmanager
    async def session(self) -> AsyncIterator[object]:
        yield object()


class FakeOutbox:
    def __init__(self) -> None:
        self.events: list[CloudEvent[Any]] = []

    async def add(self, session: object, *events: CloudEvent[Any]) -> None:
        self.events.extend(events)


def _message(offset: int, row: features.FeatureRow) -> Delivered:
    record = to_record(CloudEvent.new(row))
    return Delivered("features.ingest", 0, offset, record.key, record.value, record.headers)


def _row(source: str, flower: int | None, minutes: int, value: Any = 1.0) -> features.FeatureRow:
    row = features.FeatureRow(push_source=source, entity_columns=["flower_id"])
    if flower is not None:
        row.values["flower_id"].CopyFrom(Value(int64_value=flower))
    kind = "string_value" if isinstance(value, str) else "double_value"
    row.values["sepal_length"].CopyFrom(Value(**{kind: value}))
    row.event_time.FromDatetime(T0 + timedelta(minutes=minutes))
    return row


def _ingestion(gateway: FakeGateway) -> tuple[Ingestion, FakeDeadLetters, FakeOutbox]:
    dead, outbox = FakeDeadLetters(), FakeOutbox()
    ingestion = Ingestion(
        gateway=gateway,  # type: ignore[arg-type]
        dead_letters=dead,  # type: ignore[arg-type]
        database=FakeDatabase(),  # type: ignore[arg-type]
        outbox=outbox,  # type: ignore[arg-type]
        retry=RetryPolicy(attempts=2, initial_backoff=0.0),
    )
    return ingestion, dead, outbox


async def test_good_rows_of_a_batch_are_pushed_and_bad_ones_dead_lettered_with_the_reason() -> None:
    gateway = FakeGateway("a")
    ingestion, dead, outbox = _ingestion(gateway)
    messages = [
        _message(0, _row("a", 1, 5)),
        _message(1, _row("a", None, 6)),
        _message(2, _row("a", 2, 9, value="tall")),
        _message(3, _row("a", 3, 2)),
        _message(4, _row("zzz", 4, 1)),
        Delivered("features.ingest", 0, 5, b"k", b"\x00", [("ce_type", b"x")]),
    ]
    report = await ingestion.handle_batch(messages)

    good = [
        {"flower_id": 1, "sepal_length": 1.0, "event_timestamp": T0 + timedelta(minutes=5)},
        {"flower_id": 3, "sepal_length": 1.0, "event_timestamp": T0 + timedelta(minutes=2)},
    ]
    assert gateway.pushed == [("a", "online", good), ("a", "offline", good)]
    reasons = dict(dead.sent)
    assert sorted(reasons) == [1, 2, 4, 5]
    assert "entity column 'flower_id' is missing" in reasons[1]
    assert "expects float, got string" in reasons[2]
    assert "unknown push source 'zzz'" in reasons[4]
    assert reasons[5].startswith("MissingHeader")
    assert gateway.refreshes == 1, "an unknown push source makes it re-read the registry once"
    assert report.written == {"a": 2}
    assert report.rejected == 4

    (event,) = outbox.events
    assert event.type == "driftloop.features.ingested"
    assert event.data.push_source == "a"
    assert list(event.data.feature_views) == ["a_view"]
    assert (event.data.rows_written, event.data.rows_rejected) == (2, 2)
    assert event.data.min_event_time.ToDatetime(tzinfo=UTC) == T0 + timedelta(minutes=2)
    assert event.data.max_event_time.ToDatetime(tzinfo=UTC) == T0 + timedelta(minutes=5)
    assert event.data.online_store_written
    assert event.data.offline_store_written


async def test_a_push_that_keeps_failing_dead_letters_only_its_own_rows() -> None:
    gateway = FakeGateway("a", "b", failing=("b",))
    ingestion, dead, outbox = _ingestion(gateway)
    online_only = _row("a", 2, 3)
    online_only.to = features.PUSH_MODE_ONLINE
    report = await ingestion.handle_batch(
        [_message(0, _row("a", 1, 1)), _message(1, _row("b", 1, 1)), _message(2, online_only)]
    )
    assert [(name, to) for name, to, _ in gateway.pushed] == [
        ("a", "online"),
        ("a", "offline"),
        ("a", "online"),
    ]
    assert dead.sent == [(1, "ConnectionError: online store is down")]
    assert report.failed == 1
    assert [(e.data.push_source, e.data.rows_written) for e in outbox.events] == [("a", 2)]
