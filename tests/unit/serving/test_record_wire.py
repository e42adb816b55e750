"""The hand-written record encoder gives the record protobuf builds field by field.

``driftloop_serving.domain.record_wire`` writes protobuf's wire format itself: the
first test pins the protobuf version it was checked against.
"""

from __future__ import annotations

import math

import google.protobuf
import numpy as np
import pytest

from driftloop.common.v1 import common_pb2 as common
from driftloop_serving.domain.record_wire import RecordEncoder

pytestmark = pytest.mark.unit


def test_the_encoder_was_checked_against_this_protobuf() -> None:
    assert google.protobuf.__version__.startswith("7."), (
        f"protobuf is {google.protobuf.__version__}; re-check domain/record_wire.py against "
        "the new protobuf (common.v1.Record's map of Value) and update this pin"
    )


def field_by_field(names: list[str], row: list[float]) -> common.Record:
    record = common.Record()
    for name, value in zip(names, row, strict=True):
        record.fields[name].double_value = value
    return record


@pytest.mark.parametrize(
    "names",
    [
        ["sepal_length", "sepal_width"],
        [f"f{i}" for i in range(20)],
        ["é" * 3, "x" * 200, ""],  # UTF-8, a key longer than 127 bytes, an empty key
        ["k" * 20_000],  # a key whose length takes three varint bytes
    ],
    ids=["two", "twenty", "odd-names", "long-key"],
)
def test_an_encoded_row_parses_as_the_record_built_field_by_field(names: list[str]) -> None:
    encode = RecordEncoder(names)
    rows = np.random.default_rng(5).normal(size=(4, len(names)))
    rows[1, 0] = np.nan
    rows[2, -1] = -0.0
    rows[3, 0] = math.inf
    for row in rows.tolist():
        parsed = common.Record()
        parsed.MergeFromString(encode(row))
        expected = field_by_field(names, row)
        assert parsed.fields.keys() == expected.fields.keys()
        for name in names:
            got, want = parsed.fields[name], expected.fields[name]
            assert got.WhichOneof("kind") == want.WhichOneof("kind") == "double_value"
            assert np.array_equal([got.double_value], [want.double_value], equal_nan=True)
            assert math.copysign(1, got.double_value) == math.copysign(1, want.double_value)
        assert parsed.SerializeToString(deterministic=True) == expected.SerializeToString(
            deterministic=True
        )
