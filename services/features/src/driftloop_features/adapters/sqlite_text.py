"""The ``labels`` table as SQLite holds it: text, written and read as it is.

What it replaces: on SQLite, SQLAlchemy's statement execution and type conversion of
the label store's upsert, and of the read of a training set's labels. ``sa.JSON``
stores ``json.dumps(value)`` and the dialect's ``DATETIME`` stores
``YYYY-MM-DD HH:MM:SS.ffffff`` (the time zone dropped: the store writes UTC). Here the
upsert is the driver's own statement (:data:`UPSERT_LABELS`, through
``exec_driver_sql``) with the values already as that text (:func:`label_values`), and
a training set's labels are read as that text (:func:`select_labels`,
:func:`fetch_all`) and parsed a column at a time.

Why: the label consumer stores thousands of labels a second and a training set reads
up to a million; per label, SQLAlchemy's binding and its JSON and DateTime processors
cost more than SQLite takes to store the row (bench/README.md has the figures).

What it relies on: the text SQLAlchemy's types store and read, and aiosqlite's own
connection under SQLAlchemy's (``get_raw_connection().driver_connection``, as the
tracking service's ``driver_sql`` does) to fetch a read's rows as tuples. Times are
the very text the ``DATETIME`` type writes (the upsert's rule and the time ranges of
a read compare that text in SQL); the JSON is JSON that ``sa.JSON`` reads back as the
same value (entity keys in canonical form, as in the label's key).
``tests/unit/features/test_features_label_shortcuts.py`` checks both against
SQLAlchemy's own processors on the same values and pins the SQLAlchemy and aiosqlite
versions they were checked against; ``tests/integration/features/test_label_store.py``
runs the statements on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from driftloop_features.domain.labels import LabelRow, canonical_json

__all__ = [
    "DATETIME_FORMAT",
    "UPSERT_LABELS",
    "datetime_text",
    "fetch_all",
    "json_text",
    "label_values",
    "select_labels",
]

#: The text of a time, for ``strptime`` and ``pandas.to_datetime``.
DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S.%f"

#: The label store's upsert (``adapters/label_store.py``) for the driver, its values in
#: the order of :func:`label_values`: a label replaces the stored one of its key unless
#: that one's event time is later.
UPSERT_LABELS = (
    "INSERT INTO labels (model_name, label_key, request_id, entity_keys, ground_truth, "
    "event_time, received_at) VALUES (?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (model_name, label_key) DO UPDATE SET request_id = excluded.request_id, "
    "entity_keys = excluded.entity_keys, ground_truth = excluded.ground_truth, "
    "event_time = excluded.event_time, received_at = excluded.received_at "
    "WHERE labels.event_time <= excluded.event_time"
)
_ENTITIES = "entities:"


def label_values(label: LabelRow, received_at: str) -> tuple[Any, ...]:
    """The values of :data:`UPSERT_LABELS` for ``label`` (``received_at`` as text)."""
    key = label.label_key
    # A label keyed by its entities has their canonical JSON in its key already.
    keys = key[len(_ENTITIES) :] if key.startswith(_ENTITIES) else canonical_json(label.entity_keys)
    return (
        label.model_name,
        key,
        label.request_id,
        keys,
        json_text(label.ground_truth),
        datetime_text(label.event_time),
        received_at,
    )


def json_text(value: Any) -> str:
    """What ``sa.JSON`` stores for ``value`` on SQLite (``None`` is JSON ``null``)."""
    return json.dumps(value)


def datetime_text(moment: datetime) -> str:
    """What SQLite's ``DATETIME`` stores for ``moment`` (a UTC time: its zone is dropped)."""
    return moment.replace(tzinfo=None).isoformat(" ", "microseconds")


def select_labels(
    model_name: str, *, start: datetime | None, end: datetime | None, limit: int
) -> tuple[str, tuple[Any, ...]]:
    """The driver's query of a model's labels (``start <= event_time < end``, at most
    ``limit``, in id order) and its values: ``request_id``, ``entity_keys``,
    ``ground_truth`` and ``event_time``, each as stored."""
    where = ["model_name = ?"]
    params: list[Any] = [model_name]
    if start is not None:
        where.append("event_time >= ?")
        params.append(datetime_text(start.astimezone(UTC)))
    if end is not None:
        where.append("event_time < ?")
        params.append(datetime_text(end.astimezone(UTC)))
    sql = (
        "SELECT request_id, entity_keys, ground_truth, event_time FROM labels "
        f"WHERE {' AND '.join(where)} ORDER BY id LIMIT ?"
    )
    return sql, (*params, limit)


async def fetch_all(connection: AsyncConnection, sql: str, params: Sequence[Any]) -> list[Any]:
    """The rows of ``sql`` as tuples, fetched by aiosqlite itself in the connection's
    transaction: SQLAlchemy's result makes a ``Row`` of each and twice the time."""
    driver: Any = (await connection.get_raw_connection()).driver_connection
    return list(await driver.execute_fetchall(sql, params))
