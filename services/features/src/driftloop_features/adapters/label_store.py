"""The label store: the ``labels`` table of the features database (migration 0002).

Why not Feast's ``feast.labeling.LabelView``: it is a feature view over a user's
entities and push source, written through the offline store (which appends), with
conflict policies applied only when reading; it has no key for a prediction's request
id and no idempotent write. The suite needs labels of any model, keyed by request id
or entity keys, stored once and replaced by a stated rule (``domain/labels.py``), on
SQLite and PostgreSQL alike: one table with one upsert does that.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from driftloop_features.adapters import sqlite_text
from driftloop_features.domain.labels import Label, LabelRow

__all__ = ["LABELS", "PREDICTION_INPUTS", "LabelStore"]

_metadata = sa.MetaData()
LABELS = sa.Table(
    "labels",
    _metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
    sa.Column("model_name", sa.String(255), nullable=False),
    sa.Column("label_key", sa.String(1024), nullable=False),
    sa.Column("request_id", sa.String(255), nullable=True),
    sa.Column("entity_keys", sa.JSON(), nullable=False),
    sa.Column("ground_truth", sa.JSON(), nullable=True),
    sa.Column("event_time", sa.DateTime(timezone=True), nullable=False),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
)


#: What each one-row prediction was given (migration 0003): a label keyed by the
#: prediction's request id alone joins with it.
PREDICTION_INPUTS = sa.Table(
    "prediction_inputs",
    _metadata,
    sa.Column("request_id", sa.String(255), primary_key=True),
    sa.Column("model_name", sa.String(255), nullable=False),
    sa.Column("request_time", sa.DateTime(timezone=True), nullable=False),
    sa.Column("inputs", sa.JSON(), nullable=False),
)


def _postgresql_upsert() -> Any:
    """INSERT ... ON CONFLICT (model, key) DO UPDATE when the stored label is not newer
    (the statement :data:`.sqlite_text.UPSERT_LABELS` is on SQLite)."""
    insert = postgresql.insert(LABELS)
    excluded = insert.excluded
    return insert.on_conflict_do_update(
        index_elements=[LABELS.c.model_name, LABELS.c.label_key],
        set_={
            "request_id": excluded.request_id,
            "entity_keys": excluded.entity_keys,
            "ground_truth": excluded.ground_truth,
            "event_time": excluded.event_time,
            "received_at": excluded.received_at,
        },
        where=LABELS.c.event_time <= excluded.event_time,
    )


_POSTGRESQL_UPSERT = _postgresql_upsert()


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


class LabelStore:
    """Writes and reads labels in the caller's session (one transaction with the outbox)."""

    async def record(self, session: AsyncSession, labels: Sequence[LabelRow]) -> None:
        """Store ``labels``: one row per (model, key), by the rule of ``domain/labels.py``.

        One statement for the batch, run once per distinct key (executemany). On SQLite
        it is the driver's own statement with the values as the text SQLite stores
        (:mod:`.sqlite_text`); PostgreSQL gets SQLAlchemy's, with typed values.
        """
        if not labels:
            return
        latest: dict[tuple[str, str], LabelRow] = {}
        for label in labels:  # within one batch too: the same rule, the later wins ties
            held = latest.get((label.model_name, label.label_key))
            if held is None or label.event_time >= held.event_time:
                latest[(label.model_name, label.label_key)] = label
        connection = await session.connection()
        now = datetime.now(UTC)
        if connection.dialect.name == "sqlite":
            received = sqlite_text.datetime_text(now)
            await connection.exec_driver_sql(
                sqlite_text.UPSERT_LABELS,
                [sqlite_text.label_values(label, received) for label in latest.values()],
            )
            return
        rows = [{**label._asdict(), "received_at": now} for label in latest.values()]
        await connection.execute(_POSTGRESQL_UPSERT, rows)

    async def read(
        self,
        session: AsyncSession,
        model_name: str,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        after_id: int = 0,
        limit: int = 1000,
    ) -> list[tuple[int, Label]]:
        """Labels of ``model_name``, ``start <= event_time < end``, by id after ``after_id``."""
        query = sa.select(LABELS).where(LABELS.c.model_name == model_name, LABELS.c.id > after_id)
        if start is not None:
            query = query.where(LABELS.c.event_time >= start)
        if end is not None:
            query = query.where(LABELS.c.event_time < end)
        result = await session.execute(query.order_by(LABELS.c.id).limit(limit))
        return [
            (
                row.id,
                Label(
                    model_name=row.model_name,
                    ground_truth=row.ground_truth,
                    event_time=_aware(row.event_time),
                    request_id=row.request_id,
                    entity_keys=row.entity_keys,
                ),
            )
            for row in result
        ]

    async def record_inputs(self, session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
        """Keep predictions' inputs (``request_id``, ``model_name``, ``request_time``,
        ``inputs`` each); a redelivered one changes nothing."""
        if not rows:
            return
        dialect = session.get_bind().dialect.name
        insert: Any = (postgresql if dialect == "postgresql" else sqlite).insert(PREDICTION_INPUTS)
        unique = list({row["request_id"]: row for row in rows}.values())
        await session.execute(
            insert.on_conflict_do_nothing(index_elements=[PREDICTION_INPUTS.c.request_id]), unique
        )

    async def inputs_of(
        self, session: AsyncSession, model_name: str, request_ids: Sequence[str]
    ) -> dict[str, tuple[datetime, dict[str, Any]]]:
        """The kept inputs of these requests of ``model_name``: ``request id -> (request
        time, inputs)``; requests never seen are absent."""
        found: dict[str, tuple[datetime, dict[str, Any]]] = {}
        ids = list(dict.fromkeys(request_ids))
        for start in range(0, len(ids), 500):
            result = await session.execute(
                sa.select(PREDICTION_INPUTS).where(
                    PREDICTION_INPUTS.c.model_name == model_name,
                    PREDICTION_INPUTS.c.request_id.in_(ids[start : start + 500]),
                )
            )
            for row in result:
                found[row.request_id] = (_aware(row.request_time), dict(row.inputs))
        return found
