"""The label store on SQLite and PostgreSQL: one label per key, corrections by event time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from driftloop_features.adapters.label_store import LabelStore
from driftloop_features.domain.labels import Label, LabelRejected
from driftloop_features.entrypoints.app import MIGRATIONS
from driftloop_kit.db import Database
from driftloop_kit.migrations import upgrade_async

pytestmark = pytest.mark.integration

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
async def database(database_url: str) -> Database:
    await upgrade_async(database_url, MIGRATIONS)
    return Database(database_url)


async def _stored(database: Database, model: str) -> list[Label]:
    async with database.session() as session:
        return [label for _id, label in await LabelStore().read(session, model)]


def _label(truth: str, at: datetime, model: str, **keys: object) -> Label:
    request_id = keys.pop("request_id", None)
    return Label(model, truth, at, request_id=request_id, entity_keys=keys)  # type: ignore[arg-type]


async def test_a_label_sent_twice_is_stored_once(database: Database) -> None:
    store = LabelStore()
    label = _label("yes", T0, "churn0", request_id="req-1")
    for _ in range(2):
        async with database.session() as session:
            await store.record(session, [label.row()])
    async with database.session() as session:  # and twice within one batch
        await store.record(session, [label.row(), label.row()])
    assert await _stored(database, "churn0") == [label]
    await database.dispose()


async def test_a_correction_with_a_later_or_equal_event_time_wins_an_older_one_is_ignored(
    database: Database,
) -> None:
    store = LabelStore()
    async with database.session() as session:
        await store.record(session, [_label("no", T0, "churn1", request_id="req-2").row()])
    async with database.session() as session:
        await store.record(
            session, [_label("yes", T0 + timedelta(hours=3), "churn1", request_id="req-2").row()]
        )
    async with database.session() as session:  # a late redelivery of the superseded label
        await store.record(session, [_label("no", T0, "churn1", request_id="req-2").row()])
    assert [(x.ground_truth, x.event_time) for x in await _stored(database, "churn1")] == [
        ("yes", T0 + timedelta(hours=3))
    ]
    async with database.session() as session:  # equal event time: the later received wins
        await store.record(
            session, [_label("maybe", T0 + timedelta(hours=3), "churn1", request_id="req-2").row()]
        )
    assert [x.ground_truth for x in await _stored(database, "churn1")] == ["maybe"]
    await database.dispose()


async def test_labels_by_entity_keys_are_keyed_by_model_and_keys_and_read_by_time_and_page(
    database: Database,
) -> None:
    store = LabelStore()
    async with database.session() as session:
        await store.record(
            session,
            [
                label.row()
                for label in (
                    _label("a", T0, "churn2", customer_id=7, region="eu"),
                    _label(
                        "b", T0 + timedelta(hours=1), "churn2", region="eu", customer_id=7
                    ),  # same keys
                    _label("c", T0 + timedelta(hours=2), "churn2", customer_id=8, region="eu"),
                    _label("d", T0, "other2", customer_id=7, region="eu"),
                )
            ],
        )
        first = await store.read(session, "churn2", limit=1)
        rest = await store.read(session, "churn2", after_id=first[-1][0])
        late = await store.read(session, "churn2", start=T0 + timedelta(hours=2))
    assert [x.ground_truth for _i, x in first + rest] == ["b", "c"]
    assert [x.ground_truth for _i, x in late] == ["c"]
    assert [x.ground_truth for x in await _stored(database, "other2")] == ["d"]
    await database.dispose()


async def test_a_training_sets_labels_are_read_as_columns_in_id_order_within_the_range(
    database: Database,
) -> None:
    store = LabelStore()
    paris = timezone(timedelta(hours=1))
    labels = [
        _label("a", T0, "churn3", customer_id=7, region="eu"),
        # Sent with another offset: stored, compared and read back at the same instant.
        Label(
            "churn3", 2, datetime(2026, 12, 1, 14, 0, tzinfo=paris), entity_keys={"customer_id": 8}
        ),
        _label("c", T0 + timedelta(hours=3), "churn3", request_id="req-3"),  # request id only
        _label("d", T0 - timedelta(hours=1), "churn3", customer_id=9),  # before the range
        _label("e", T0, "other3", customer_id=7),
    ]
    async with database.session() as session:
        await store.record(session, [label.row() for label in labels])
    async with database.session() as session:
        found = await store.training_labels(
            session, "churn3", start=datetime(2026, 12, 1, 13, 0, tzinfo=paris), limit=10
        )
        first = await store.training_labels(session, "churn3", limit=1)

    assert found.count == 3
    assert list(found.keys.columns) == ["customer_id", "region"]
    assert list(found.keys["customer_id"]) == [7, 8]
    assert found.keys["region"].where(found.keys["region"].notna(), None).tolist() == ["eu", None]
    assert list(found.event_time) == [T0, T0 + timedelta(hours=1)]
    assert str(found.event_time.dtype) == "datetime64[ns, UTC]"
    assert found.request_id == [None, None]
    assert found.ground_truth == ["a", 2]
    assert found.by_request == {"req-3": "c"}
    assert (first.count, first.ground_truth) == (1, ["a"])
    await database.dispose()


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"model_name": "m", "ground_truth": 1, "event_time": T0}, "request_id or entity_keys"),
        ({"model_name": " ", "ground_truth": 1, "event_time": T0, "request_id": "r"}, "empty"),
        (
            {
                "model_name": "m",
                "ground_truth": 1,
                "event_time": T0.replace(tzinfo=None),
                "request_id": "r",
            },
            "time zone",
        ),
        (
            {"model_name": "m", "ground_truth": float("nan"), "event_time": T0, "request_id": "r"},
            "finite",
        ),
    ],
)
def test_a_label_that_cannot_be_stored_says_why(kwargs: dict[str, object], reason: str) -> None:
    with pytest.raises(LabelRejected, match=reason):
        Label(**kwargs)  # type: ignore[arg-type]
