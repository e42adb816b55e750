"""A ``labels`` record straight into the row the store writes: the same labels, the same
refusals, for the same reasons, as building a checked ``Label`` from it."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from driftloop.common.v1.common_pb2 import Value, ValueList
from driftloop.monitor.v1 import events_pb2 as monitor
from driftloop_events.values import value_to_python
from driftloop_features.domain.labels import (
    Label,
    LabelRejected,
    LabelRow,
    Scalar,
    canonical_json,
    label_of,
    row_of,
)

pytestmark = pytest.mark.unit

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _checked_label(message: monitor.LabelRecorded) -> Label:
    """How a label was read before rows: every value unwrapped, then a checked Label."""
    if not message.HasField("event_time"):
        raise LabelRejected("event_time is missing")
    if not message.HasField("ground_truth"):
        raise LabelRejected("ground_truth is missing")
    truth = value_to_python(message.ground_truth)
    if not isinstance(truth, str | int | float | bool) and truth is not None:
        raise LabelRejected("ground_truth is not a string, number, bool or null")
    keys: dict[str, Scalar] = {}
    for name, value in message.entity_keys.items():
        key = value_to_python(value)
        if not isinstance(key, str | int | bool):
            raise LabelRejected(f"entity key {name!r} is not a string, integer or bool")
        keys[name] = key
    try:
        moment = message.event_time.ToDatetime(tzinfo=UTC)
    except ValueError as error:  # protobuf's own range check
        raise LabelRejected("event_time is out of range (years 1 to 9999)") from error
    return Label(
        model_name=message.model_name,
        ground_truth=truth,
        event_time=moment,
        request_id=message.request_id or None,
        entity_keys=keys,
    )


_good_values = st.one_of(
    st.builds(Value, string_value=st.text(max_size=8)),
    st.builds(Value, int64_value=st.integers(-(2**63), 2**63 - 1)),
    st.builds(Value, bool_value=st.booleans()),
)
_other_values = st.one_of(
    st.builds(Value, double_value=st.floats()),
    st.builds(Value, bytes_value=st.binary(max_size=4)),
    st.just(Value(null_value="NULL_VALUE")),
    st.just(Value()),
    st.just(Value(timestamp_value=T0)),
    st.just(Value(list_value=ValueList(values=[Value(int64_value=1)]))),
)
# Mostly labels that can be stored, so both outcomes are compared often.
_values = st.one_of(_good_values, _good_values, _good_values, _other_values)
_names = st.one_of(
    st.text(min_size=1, max_size=6),
    st.text(min_size=1, max_size=6),
    st.sampled_from(["", " ", "m" * 255, "m" * 256]),
)


@st.composite
def _storable(draw: st.DrawFn) -> monitor.LabelRecorded:
    message = monitor.LabelRecorded(
        model_name=draw(st.text(min_size=1, max_size=6).filter(str.strip)),
        request_id=draw(st.text(max_size=6)),
        ground_truth=draw(_good_values),
    )
    message.event_time.seconds = draw(st.integers(-62_135_596_800, 253_402_300_799))
    message.event_time.nanos = draw(st.integers(0, 999_999_999))
    for name, value in draw(st.dictionaries(st.text(max_size=8), _good_values, max_size=3)).items():
        message.entity_keys[name].CopyFrom(value)
    return message


@st.composite
def _anything(draw: st.DrawFn) -> monitor.LabelRecorded:
    message = monitor.LabelRecorded(
        model_name=draw(_names),
        request_id=draw(st.one_of(st.just(""), _names, st.just("r" * 1100))),
    )
    if draw(st.integers(0, 9)):
        message.ground_truth.CopyFrom(draw(_values))
    if draw(st.integers(0, 9)):
        valid = draw(st.integers(0, 9))
        message.event_time.seconds = draw(
            st.integers(-62_135_596_800, 253_402_300_799)
            if valid
            else st.integers(-(2**63), 2**63 - 1)
        )
        message.event_time.nanos = draw(
            st.integers(0, 999_999_999) if valid else st.integers(-(2**31), 2**31 - 1)
        )
    keys = st.one_of(st.text(max_size=8), st.just("k" * 1100))
    for name, value in draw(st.dictionaries(keys, _values, max_size=3)).items():
        message.entity_keys[name].CopyFrom(value)
    return message


_messages = st.one_of(_storable(), _anything())


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(message=_messages)
def test_row_of_stores_what_a_checked_label_would_and_refuses_what_it_refuses(
    message: monitor.LabelRecorded,
) -> None:
    try:
        expected: LabelRow | str = _checked_label(message).row()
    except LabelRejected as refused:
        expected = str(refused)
    try:
        got: LabelRow | str = row_of(message)
    except LabelRejected as refused:
        got = str(refused)

    if isinstance(expected, LabelRow) and isinstance(got, LabelRow):
        # NaN is refused, so every stored value equals itself.
        assert got == expected
        assert got.event_time.tzinfo is UTC
    else:
        assert got == expected


def test_a_label_is_keyed_by_its_request_id_else_by_its_entity_keys_in_canonical_json() -> None:
    by_request = monitor.LabelRecorded(
        request_id="req-1", model_name="churn", ground_truth=Value(string_value="yes")
    )
    by_request.event_time.FromDatetime(T0)
    by_keys = monitor.LabelRecorded(model_name="churn", ground_truth=Value(bool_value=True))
    by_keys.event_time.FromDatetime(T0)
    by_keys.entity_keys["region"].CopyFrom(Value(string_value="eu"))
    by_keys.entity_keys["customer_id"].CopyFrom(Value(int64_value=7))

    assert row_of(by_request).label_key == "request:req-1"
    assert row_of(by_keys).label_key == 'entities:{"customer_id":7,"region":"eu"}'
    assert row_of(by_keys) == label_of(by_keys).row()


def test_a_label_of_another_time_zone_is_stored_at_the_same_instant_in_utc() -> None:
    paris = timezone(timedelta(hours=1))
    label = Label("churn", "yes", datetime(2026, 12, 1, 13, 0, tzinfo=paris), request_id="r")

    assert label.row().event_time == T0
    assert label.row().event_time.tzinfo is UTC


def test_a_timestamp_past_year_9999_is_refused_with_the_reason() -> None:
    message = monitor.LabelRecorded(
        request_id="req-1", model_name="churn", ground_truth=Value(string_value="yes")
    )
    message.event_time.seconds = 253_402_300_800

    with pytest.raises(LabelRejected, match="out of range"):
        row_of(message)


_keys = st.dictionaries(
    st.text(max_size=6),
    st.one_of(
        st.text(max_size=6),
        st.integers(-(2**70), 2**70),
        st.booleans(),
        st.floats(allow_nan=False),
        st.none(),
    ),
    max_size=4,
)


@given(keys=_keys)
def test_canonical_json_is_json_dumps_with_sorted_keys_and_no_spaces(
    keys: dict[str, Any],
) -> None:
    assert canonical_json(keys) == json.dumps(keys, sort_keys=True, separators=(",", ":"))


def test_nan_entity_values_are_left_to_the_encoder() -> None:
    assert canonical_json({"x": math.inf}) == '{"x":Infinity}'
