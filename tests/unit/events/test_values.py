"""Conversions between Python values and Value / Record."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from driftloop.common.v1.common_pb2 import Value
from driftloop_events.values import (
    PyValue,
    make_record,
    make_value,
    record_to_dict,
    value_text,
    value_to_python,
)

pytestmark = pytest.mark.unit

_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text()
    | st.binary()
    | st.datetimes(timezones=st.just(UTC), min_value=datetime(1971, 1, 1))
)
_values = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=3), max_leaves=8)


@given(obj=_values)
def test_python_values_survive_a_trip_through_value(obj: PyValue) -> None:
    assert value_to_python(make_value(obj)) == obj


def test_bool_becomes_bool_value_not_int64() -> None:
    assert make_value(True).WhichOneof("kind") == "bool_value"
    assert make_value(1).WhichOneof("kind") == "int64_value"


def test_none_becomes_an_explicit_null_and_an_unset_value_reads_as_none() -> None:
    assert make_value(None).WhichOneof("kind") == "null_value"
    assert value_to_python(Value()) is None


def test_naive_datetimes_and_dicts_are_refused() -> None:
    with pytest.raises(TypeError, match="naive datetime"):
        make_value(datetime(2025, 3, 1))
    with pytest.raises(TypeError, match="dict"):
        make_value({"a": 1})  # type: ignore[arg-type]


def test_records_convert_both_ways() -> None:
    row: dict[str, PyValue] = {"sepal_length": 5.1, "species": "setosa", "tags": [1, 2]}

    assert record_to_dict(make_record(row)) == row


@pytest.mark.parametrize(
    ("obj", "text"),
    [
        ("eu", "eu"),
        (17, "17"),
        (1001.0, "1001"),
        (0.5, "0.5"),
        (True, "true"),
        (b"\x9f\x86", "9f86"),
        (None, ""),
        (datetime(2025, 3, 1, 12, 0, tzinfo=UTC), "2025-03-01T12:00:00Z"),
        ([1, "a"], "1,a"),
    ],
)
def test_value_text_renders_each_kind_as_the_contract_says(obj: PyValue, text: str) -> None:
    assert value_text(make_value(obj)) == text
