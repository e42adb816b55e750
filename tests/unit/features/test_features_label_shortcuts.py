"""Pins of the label store's text shortcut on SQLite (``adapters/sqlite_text.py``).

The label store writes the text SQLAlchemy's types would store, and reads it back
through them; these tests fail first when an upgrade of SQLAlchemy changes that text:
re-check the module against the new version and update the pin.
"""

from __future__ import annotations

import importlib.metadata
import json
from datetime import UTC, datetime, timedelta

import aiosqlite
import pytest
import sqlalchemy
from sqlalchemy.dialects import sqlite

from driftloop_features.adapters import sqlite_text
from driftloop_features.adapters.label_store import LABELS
from driftloop_features.domain.labels import Label

pytestmark = pytest.mark.unit

PINNED = "2.1.9"
PINNED_AIOSQLITE = "0.22.1"
RECHECK = "re-check adapters/sqlite_text.py against the new SQLAlchemy and update this pin"

_DIALECT = sqlite.dialect()
MOMENTS = [
    datetime(2026, 12, 1, 12, 0, tzinfo=UTC),
    datetime(2026, 12, 1, 12, 0, 0, 5, tzinfo=UTC),
    datetime(1, 1, 1, tzinfo=UTC),
    datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
    datetime(1970, 1, 1, tzinfo=UTC) - timedelta(microseconds=1),
]


def _bind(column: str) -> object:
    return LABELS.c[column].type.dialect_impl(_DIALECT).bind_processor(_DIALECT)


def _result(column: str) -> object:
    return LABELS.c[column].type.dialect_impl(_DIALECT).result_processor(_DIALECT, None)


def test_sqlalchemy_is_the_version_the_shortcut_was_checked_against() -> None:
    assert sqlalchemy.__version__ == PINNED, f"SQLAlchemy {sqlalchemy.__version__}: {RECHECK}"
    assert importlib.metadata.version("aiosqlite") == PINNED_AIOSQLITE, RECHECK
    assert callable(getattr(aiosqlite.Connection, "execute_fetchall", None)), RECHECK


@pytest.mark.parametrize("moment", MOMENTS, ids=str)
def test_a_time_is_written_as_the_text_sqlalchemys_datetime_writes(moment: datetime) -> None:
    processor = _bind("event_time")
    assert callable(processor)
    assert sqlite_text.datetime_text(moment) == processor(moment), RECHECK


@pytest.mark.parametrize("value", ["yes", 3, 2.5, True, None, "café"])
def test_a_ground_truth_is_written_as_the_text_sqlalchemys_json_writes(value: object) -> None:
    processor = _bind("ground_truth")
    assert callable(processor)
    assert sqlite_text.json_text(value) == processor(value), RECHECK


def test_the_written_entity_keys_read_back_through_sqlalchemys_json_as_the_same_keys() -> None:
    label = Label("churn", "yes", MOMENTS[0], entity_keys={"region": "eu", "customer_id": 7})
    values = sqlite_text.label_values(label.row(), "now")
    read = _result("entity_keys")
    assert callable(read)

    assert read(values[3]) == {"customer_id": 7, "region": "eu"}, RECHECK
    assert json.loads(values[3]) == dict(label.entity_keys)


def test_label_values_follow_the_columns_of_the_upsert() -> None:
    label = Label("churn", "yes", MOMENTS[1], request_id="req-1", entity_keys={"id": 1})
    values = sqlite_text.label_values(label.row(), "received")
    columns = sqlite_text.UPSERT_LABELS.split("(", 1)[1].split(")", 1)[0].split(", ")

    assert dict(zip(columns, values, strict=True)) == {
        "model_name": "churn",
        "label_key": "request:req-1",
        "request_id": "req-1",
        "entity_keys": '{"id":1}',
        "ground_truth": '"yes"',
        "event_time": "2026-12-01 12:00:00.000005",
        "received_at": "received",
    }
