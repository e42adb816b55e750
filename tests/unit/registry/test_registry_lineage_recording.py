"""The lineage consumer with fakes: a redelivered event is recorded once."""

from __future__ import annotations

import pytest

from driftloop_bus.consumer import bind
from driftloop_events.catalog import CATALOG, spec_for
from driftloop_events.envelope import CloudEvent
from driftloop_registry.domain.lineage_log import LOGGED_TYPES, InvalidEvent
from driftloop_registry.entrypoints.consumers import HANDLERS
from driftloop_registry.service_layer.lineage import LineageRecording
from tests.fakes.common import FakeDatabase
from tests.fakes.registry import FakeInbox, FakeLineageLog

pytestmark = pytest.mark.unit


def recording() -> tuple[LineageRecording, FakeLineageLog]:
    log = FakeLineageLog()
    return LineageRecording(database=FakeDatabase(), log=log, inbox=FakeInbox()), log


async def test_a_redelivered_event_is_recorded_in_the_lineage_log_once() -> None:
    use_case, log = recording()
    event = CloudEvent.new(CATALOG["driftloop.monitor.drift.detected"].example())

    await use_case.record(event)
    await use_case.record(event)

    assert [(e.id, e.model, e.version) for e in log.entries] == [(event.id, "iris-classifier", 3)]


async def test_an_event_the_log_cannot_take_fails_its_handler() -> None:
    use_case, log = recording()
    prediction = CloudEvent.new(CATALOG["driftloop.serving.prediction.logged"].example())

    with pytest.raises(InvalidEvent, match="not recorded"):
        await use_case.record(prediction)

    assert log.entries == []


def test_the_consumer_takes_every_event_of_another_service_the_log_records() -> None:
    handled = {key if isinstance(key, str) else spec_for(key).type for key in HANDLERS}

    assert handled == {t for t in LOGGED_TYPES if not t.startswith("driftloop.registry.")}


async def test_the_bound_handlers_record_each_event_in_the_log() -> None:
    use_case, log = recording()
    table = bind(HANDLERS, use_case)
    events = [
        CloudEvent.new(spec_for(key).example()) for key in HANDLERS if not isinstance(key, str)
    ]

    for event in events:
        for key, handlers in table.items():
            if not isinstance(key, str) and spec_for(key).type == event.type:
                for handler in handlers:
                    await handler(event)

    assert [e.id for e in log.entries] == [e.id for e in events]
