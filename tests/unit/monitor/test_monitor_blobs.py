"""Pin of the stream state's encoding (``adapters/blobs.py``), a shortcut past
SQLAlchemy's ``JSON`` type.

When msgspec is upgraded the first test fails: re-check that a blob written by the old
version still decodes to the same values (the second and third tests), then update the pin.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest

from driftloop_monitor.adapters import blobs

pytestmark = pytest.mark.unit


def test_the_blob_encoding_was_checked_against_this_msgspec() -> None:
    assert msgspec.__version__ == blobs.CHECKED_AGAINST, (
        "re-check driftloop_monitor/adapters/blobs.py against the new msgspec and update this pin"
    )


def test_every_kind_of_value_a_row_holds_comes_back_as_it_went_in() -> None:
    rows: list[dict[str, Any]] = [
        {
            "count": 3,
            "ratio": 1.0,
            "missing": None,
            "colour": "red",
            "member": True,
            "raw": b"\x00\xff",
            "at": datetime(2026, 12, 4, 12, 30, 1, 250_000, tzinfo=UTC),
            "tags": ["a", 2, 2.5],
            "big": 2**62,
        },
        {"ratio": float("inf"), "odd": float("nan")},
    ]

    back = blobs.decode_rows(blobs.encode(rows))

    assert back[0] == rows[0]
    assert type(back[0]["ratio"]) is float  # 1.0 stays a float, 3 an int
    assert type(back[0]["count"]) is int
    assert back[1]["ratio"] == math.inf
    assert math.isnan(back[1]["odd"])


def test_waiting_predictions_come_back_with_their_request_ids() -> None:
    waiting = [
        blobs.Waiting(
            event_id="e1",
            request_id="req-1",
            model_name="iris",
            version=3,
            run_id="r" * 32,
            prediction="setosa",
            time=1_764_849_600.5,
            expires=1_764_936_000.0,
        ),
        blobs.Waiting(
            event_id="e2",
            request_id="req-2",
            model_name="iris",
            version=3,
            run_id="r" * 32,
            prediction=0.75,
            time=1_764_849_601.0,
            expires=1_764_936_001.0,
        ),
    ]

    assert blobs.decode_waiting(blobs.encode(waiting)) == waiting
