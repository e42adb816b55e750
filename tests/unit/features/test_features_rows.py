"""Validating feature rows against a push source's schema, and grouping them in batches."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from driftloop.common.v1.common_pb2 import Value, ValueList
from driftloop.features.v1 import events_pb2 as features
from driftloop_features.domain.rows import (
    Batch,
    ColumnSpec,
    Kind,
    PushSourceSchema,
    RowRejected,
    validate_row,
)

pytestmark = pytest.mark.unit

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)

SCHEMA = PushSourceSchema(
    name="iris_push",
    entity_columns=(ColumnSpec("flower_id", Kind.INT),),
    feature_columns=(
        ColumnSpec("sepal_length", Kind.FLOAT),
        ColumnSpec("site", Kind.STRING),
        ColumnSpec("is_wild", Kind.BOOL),
        ColumnSpec("embedding", Kind.FLOAT, is_list=True),
        ColumnSpec("seen_at", Kind.TIMESTAMP),
    ),
    timestamp_field="event_timestamp",
    created_field="created",
    feature_views=("iris_features",),
)
SCHEMAS = {"iris_push": SCHEMA}


def _row(**values: Value) -> features.FeatureRow:
    row = features.FeatureRow(push_source="iris_push", entity_columns=["flower_id"])
    for name, value in values.items():
        row.values[name].CopyFrom(value)
    row.event_time.FromDatetime(T0)
    return row


def test_a_good_row_becomes_the_frame_columns_with_python_values() -> None:
    row = _row(
        flower_id=Value(int64_value=7),
        sepal_length=Value(int64_value=5),  # an int is a fine float
        site=Value(string_value="north"),
        embedding=Value(list_value=ValueList(values=[Value(double_value=0.5)])),
        seen_at=Value(timestamp_value=T0 - timedelta(days=1)),
    )
    row.create_time.FromDatetime(T0 + timedelta(seconds=1))
    valid = validate_row(row, SCHEMAS)
    assert valid.values == {
        "flower_id": 7,
        "sepal_length": 5.0,
        "site": "north",
        "is_wild": None,  # a feature left out is stored as null
        "embedding": [0.5],
        "seen_at": T0 - timedelta(days=1),
        "event_timestamp": T0,
        "created": T0 + timedelta(seconds=1),
    }
    assert list(valid.values) == SCHEMA.frame_columns
    assert valid.mode == features.PUSH_MODE_ONLINE_AND_OFFLINE, "unspecified means both"


def test_an_integral_double_is_accepted_as_an_entity_id_but_a_fraction_is_not() -> None:
    assert (
        validate_row(_row(flower_id=Value(double_value=1001.0)), SCHEMAS).values["flower_id"]
        == 1001
    )
    with pytest.raises(RowRejected, match="'flower_id' expects int, got float"):
        validate_row(_row(flower_id=Value(double_value=1.5)), SCHEMAS)


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        (features.FeatureRow(push_source=""), "push_source is empty"),
        (features.FeatureRow(push_source="nope"), "unknown push source 'nope' (known: iris_push)"),
        (_row(site=Value(string_value="x")), "entity column 'flower_id' is missing or null"),
        (
            _row(flower_id=Value(null_value="NULL_VALUE")),
            "entity column 'flower_id' is missing or null",
        ),
        (
            _row(flower_id=Value(int64_value=1), site=Value(double_value=2.0)),
            "column 'site' expects string, got float",
        ),
        (
            _row(flower_id=Value(int64_value=1), embedding=Value(double_value=2.0)),
            "column 'embedding' expects list of float, got float",
        ),
        (
            _row(flower_id=Value(int64_value=1), colour=Value(string_value="red")),
            "unknown column(s) 'colour'",
        ),
    ],
)
def test_a_row_that_does_not_fit_is_rejected_with_the_reason(
    row: features.FeatureRow, reason: str
) -> None:
    with pytest.raises(RowRejected) as caught:
        validate_row(row, SCHEMAS)
    assert reason in str(caught.value)


def test_a_row_without_event_time_is_rejected() -> None:
    row = _row(flower_id=Value(int64_value=1))
    row.ClearField("event_time")
    with pytest.raises(RowRejected, match="event_time is missing"):
        validate_row(row, SCHEMAS)


def test_a_row_without_create_time_gets_the_time_of_ingestion() -> None:
    now = T0 + timedelta(hours=3)
    assert (
        validate_row(_row(flower_id=Value(int64_value=1)), SCHEMAS, now=now).values["created"]
        == now
    )


def test_batches_group_rows_per_push_source_and_mode_and_track_event_time_bounds() -> None:
    rows = []
    unset = features.PUSH_MODE_UNSPECIFIED
    for minutes, mode in ((5, features.PUSH_MODE_ONLINE), (1, unset), (9, unset)):
        row = _row(flower_id=Value(int64_value=minutes))
        row.event_time.FromDatetime(T0 + timedelta(minutes=minutes))
        row.to = mode
        rows.append(validate_row(row, SCHEMAS))
    online, both = Batch.group(rows)
    assert (online.mode, [r["flower_id"] for r in online.rows]) == (
        features.PUSH_MODE_ONLINE,
        [5],
    )
    assert [r["flower_id"] for r in both.rows] == [1, 9]
    assert (both.min_event_time, both.max_event_time) == (
        T0 + timedelta(minutes=1),
        T0 + timedelta(minutes=9),
    )


def test_zero_false_and_empty_values_are_kept_as_values_not_nulls() -> None:
    row = _row(
        flower_id=Value(int64_value=0),
        sepal_length=Value(double_value=0.0),
        site=Value(string_value=""),
        is_wild=Value(bool_value=False),
    )
    values = validate_row(row, SCHEMAS).values
    assert (values["flower_id"], values["sepal_length"], values["site"], values["is_wild"]) == (
        0,
        0.0,
        "",
        False,
    )


def test_a_null_feature_value_is_a_null_and_a_wrong_kind_is_still_rejected() -> None:
    null = validate_row(
        _row(flower_id=Value(int64_value=1), site=Value(null_value="NULL_VALUE")), SCHEMAS
    )
    assert null.values["site"] is None
    with pytest.raises(RowRejected, match="'site' expects string, got float"):
        validate_row(_row(flower_id=Value(int64_value=1), site=Value(double_value=2.5)), SCHEMAS)


@pytest.mark.parametrize(
    ("seconds", "nanos"),
    [(1_700_000_000, 999_999_999), (0, 0), (-1, 1_500), (-62_135_596_800, 0), (253_402_300_799, 1)],
)
def test_event_and_created_times_are_what_protobuf_converts(seconds: int, nanos: int) -> None:
    row = _row(flower_id=Value(int64_value=1))
    row.event_time.seconds, row.event_time.nanos = seconds, nanos
    row.create_time.seconds, row.create_time.nanos = seconds, nanos
    valid = validate_row(row, SCHEMAS)
    expected = row.event_time.ToDatetime(tzinfo=UTC)
    assert (valid.event_time, valid.values["event_timestamp"], valid.values["created"]) == (
        expected,
        expected,
        expected,
    )


def test_an_event_time_out_of_protobufs_range_fails_as_protobuf_fails() -> None:
    row = _row(flower_id=Value(int64_value=1))
    row.event_time.seconds = 253_402_300_800  # year 10000
    with pytest.raises(ValueError, match="Timestamp"):
        validate_row(row, SCHEMAS)
