"""The materialization use case with fakes: one ``features.materialized`` per view."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from driftloop_features.service_layer.materializations import Materializations
from tests.fakes.common import FakeDatabase, FakeOutbox
from tests.fakes.features import FakeGateway

pytestmark = pytest.mark.unit

START = datetime(2025, 3, 1, tzinfo=UTC)
END = datetime(2025, 3, 2, 6, 30, tzinfo=UTC)


async def test_a_materialization_records_one_event_per_view_with_its_range() -> None:
    gateway, outbox = FakeGateway("a", "b"), FakeOutbox()
    use_case = Materializations(gateway=gateway, database=FakeDatabase(), outbox=outbox)

    views = await use_case.materialize(START, END, None)

    assert views == ["a_view", "b_view"]
    assert gateway.materialized == [(START, END, None)]
    assert [e.type for e in outbox.events] == ["driftloop.features.materialized"] * 2
    first = outbox.events[0].data
    assert first.feature_view == "a_view"
    assert first.materialization_id.startswith("mat-20250302-063000-")
    assert first.start_time.ToDatetime(tzinfo=UTC) == START
    assert first.end_time.ToDatetime(tzinfo=UTC) == END
    assert {e.data.materialization_id for e in outbox.events} == {first.materialization_id}


async def test_an_incremental_materialization_leaves_the_start_out_when_feast_chose_it() -> None:
    gateway, outbox = FakeGateway("a"), FakeOutbox()
    use_case = Materializations(gateway=gateway, database=FakeDatabase(), outbox=outbox)

    assert await use_case.accepted(["a_view", "nope"]) == ["a_view"]
    assert await use_case.materialize_incremental(END, ["a_view"]) == ["a_view"]
    (event,) = outbox.events
    assert not event.data.HasField("start_time")
    assert event.data.end_time.ToDatetime(tzinfo=UTC) == END
