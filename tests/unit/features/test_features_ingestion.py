"""The ingestion use case with fakes: good rows kept, bad rows and failed pushes
dead-lettered with the reason, one watermark per push source.

Records go through the bus ``Dispatcher`` and the service's ``HANDLERS``, as the
ingestion engines hand them over, then the batch is written."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from driftloop.common.v1.common_pb2 import Value
from driftloop.features.v1 import events_pb2 as features
from driftloop_bus.consumer import Dispatcher, bind
from driftloop_bus.deadletter import Delivered
from driftloop_events.envelope import CloudEvent, to_record
from driftloop_features.entrypoints.consumers import HANDLERS
from driftloop_features.entrypoints.ingest import IngestBatches
from driftloop_features.service_layer.ingestion import Ingestion, RowBatch
from driftloop_kit.retry import Backoff
from tests.fakes.common import FakeDatabase, FakeOutbox
from tests.fakes.features import FakeDispatcherDeadLetters, FakeGateway

pytestmark = pytest.mark.unit

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


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


def _ingestion(
    gateway: FakeGateway,
) -> tuple[IngestBatches, FakeDispatcherDeadLetters, FakeOutbox]:
    dead, outbox = FakeDispatcherDeadLetters(), FakeOutbox()
    ingestion = Ingestion(
        gateway=gateway,
        dead_letters=dead,
        database=FakeDatabase(),
        outbox=outbox,
        retry=Backoff(attempts=2, initial=0.0),
    )
    rows = RowBatch()
    dispatcher = Dispatcher(handlers=bind(HANDLERS, rows), dead_letters=dead)
    return IngestBatches(rows=rows, ingestion=ingestion, dispatcher=dispatcher), dead, outbox


async def test_good_rows_of_a_batch_are_pushed_and_bad_ones_dead_lettered_with_the_reason() -> None:
    gateway = FakeGateway("a")
    batches, dead, outbox = _ingestion(gateway)
    messages = [
        _message(0, _row("a", 1, 5)),
        _message(1, _row("a", None, 6)),
        _message(2, _row("a", 2, 9, value="tall")),
        _message(3, _row("a", 3, 2)),
        _message(4, _row("zzz", 4, 1)),
        Delivered("features.ingest", 0, 5, b"k", b"\x00", [("ce_type", b"x")]),
    ]
    report = await batches.ingest(messages)

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
    # Four rejected: the undecodable record (offset 5) by the Dispatcher, first, before
    # the batch reaches ingestion; the three rows that do not fit by ingestion.
    assert [offset for offset, _ in dead.sent[:1]] == [5]
    assert report.rejected == 3

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
    batches, dead, outbox = _ingestion(gateway)
    online_only = _row("a", 2, 3)
    online_only.to = features.PUSH_MODE_ONLINE
    report = await batches.ingest(
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


async def test_rows_are_written_only_when_the_batch_is_and_other_event_types_are_ignored() -> None:
    gateway = FakeGateway("a")
    batches, dead, _ = _ingestion(gateway)
    batches.rows.arrived(_message(0, _row("a", 1, 1)))
    await batches.dispatcher.handle(_message(0, _row("a", 1, 1)))
    assert len(batches.rows) == 1
    assert gateway.pushed == [], "a row waits for its batch"
    report = await batches.ingestion.ingest(batches.rows.take())
    assert report.written == {"a": 1}
    assert len(batches.rows) == 0

    other = to_record(CloudEvent.new(features.FeaturesIngested(push_source="a")))
    report = await batches.ingest(
        [Delivered("features.ingest", 0, 1, other.key, other.value, other.headers)]
    )
    assert report.written == {}
    assert dead.sent == []


async def test_rows_of_a_batch_cut_short_are_not_written_with_the_next_one() -> None:
    gateway = FakeGateway("a")
    batches, _, _ = _ingestion(gateway)
    batches.rows.arrived(_message(0, _row("a", 1, 1)))
    batches.rows.add(CloudEvent.new(_row("a", 1, 1)))  # then the engine was stopped
    report = await batches.ingest([_message(7, _row("a", 2, 2))])
    assert report.written == {"a": 1}
    assert [[row["flower_id"] for row in rows] for _, _, rows in gateway.pushed] == [[2], [2]]


def test_a_row_added_outside_a_record_is_a_programming_error() -> None:
    with pytest.raises(RuntimeError, match="outside"):
        RowBatch().add(CloudEvent.new(_row("a", 1, 1)))
