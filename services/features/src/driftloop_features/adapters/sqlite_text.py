"""The ``labels`` table as SQLite holds it: text, written and read as it is.

What it replaces: on SQLite, SQLAlchemy's statement execution and type conversion of
the label store's upsert, and of the read of a training set's labels. ``sa.JSON``
stores ``json.dumps(value)`` and the dialect's ``DATETIME`` stores
``YYYY-MM-DD HH:MM:SS.ffffff`` (the time zone dropped: the store writes UTC). Here the
upsert is the driver's own statement (:data:`UPSERT_LABELS`, through
``exec_driver_sql``) with the values already as that text (:func:`label_values`), and
the same table declared with text columns (:data:`LABELS_AS_TEXT`) reads it back as
it is.

Why: the label consumer stores thousands of labels a second and a training set reads
up to a million; per label, SQLAlchemy's binding and its JSON and DateTime processors
cost more than SQLite takes to store the row (bench/README.md has the figures).

What it relies on: the text SQLAlchemy's types store and read. Times are the very
text the ``DATETIME`` type writes (the upsert's rule and the time ranges of a read
compare that text in SQL); the JSON is JSON that ``sa.JSON`` reads back as the same
value (entity keys in canonical form, as in the label's key).
``tests/unit/features/test_features_label_shortcuts.py`` checks both against
SQLAlchemy's own processors on the same values and pins the SQLAlchemy version they
were checked against.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from driftloop_features.domain.labels import LabelRow, canonical_json

__all__ = ["LABELS_AS_TEXT", "UPSERT_LABELS", "datetime_text", "json_text", "label_values"]

LABELS_AS_TEXT = sa.Table(
    "labels",
    sa.MetaData(),
    sa.Column("id", sa.Integer(), primary_key=True),
    sa.Column("model_name", sa.Text(), nullable=False),
    sa.Column("label_key", sa.Text(), nullable=False),
    sa.Column("request_id", sa.Text(), nullable=True),
    sa.Column("entity_keys", sa.Text(), nullable=False),
    sa.Column("ground_truth", sa.Text(), nullable=True),
    sa.Column("event_time", sa.Text(), nullable=False),
    sa.Column("received_at", sa.Text(), nullable=False),
)


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
