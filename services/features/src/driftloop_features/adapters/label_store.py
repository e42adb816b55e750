"""The label store: the ``labels`` table of the features database (migration 0002).

Why not Feast's ``feast.labeling.LabelView``: it is a feature view over a user's
entities and push source, written through the offline store (which appends), with
conflict policies applied only when reading; it has no key for a prediction's request
id and no idempotent write. The suite needs labels of any model, keyed by request id
or entity keys, stored once and replaced by a stated rule (``domain/labels.py``), on
SQLite and PostgreSQL alike: one table with one upsert does that.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pandas as pd  # type: ignore[import-untyped]
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from driftloop_features.adapters import sqlite_text
from driftloop_features.domain.labels import Label, LabelRow, Scalar

__all__ = ["LABELS", "PREDICTION_INPUTS", "LabelStore", "TrainingLabels"]

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


@dataclass(frozen=True)
class TrainingLabels:
    """A model's labels as a training set needs them, in id order.

    The labels keyed by entity keys as aligned columns (``keys``: a column per entity
    key name, null where a label has no such key; ``event_time`` in UTC; ``request_id``;
    ``ground_truth``), and those keyed by a request id alone as ``by_request``.
    """

    keys: pd.DataFrame
    event_time: pd.Series
    request_id: list[str | None]
    ground_truth: list[Scalar]
    by_request: dict[str, Scalar]
    count: int

    @classmethod
    def of(
        cls,
        request_ids: list[str | None],
        keys: list[dict[str, Scalar]],
        truths: list[Scalar],
        times: pd.Series,
    ) -> TrainingLabels:
        """Split labels (aligned lists) into those keyed by entities and by request id."""
        keyed = [i for i, found in enumerate(keys) if found]
        by_request = {
            request_id: truth
            for request_id, found, truth in zip(request_ids, keys, truths, strict=True)
            if request_id and not found
        }
        everything = len(keyed) == len(keys)
        return cls(
            keys=pd.DataFrame(keys if everything else [keys[i] for i in keyed]),
            event_time=(times if everything else times.take(keyed)).reset_index(drop=True),
            request_id=request_ids if everything else [request_ids[i] for i in keyed],
            ground_truth=truths if everything else [truths[i] for i in keyed],
            by_request=by_request,
            count=len(keys),
        )


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
        # In UTC, as stored (SQLite's DATETIME would drop another offset).
        if start is not None:
            query = query.where(LABELS.c.event_time >= start.astimezone(UTC))
        if end is not None:
            query = query.where(LABELS.c.event_time < end.astimezone(UTC))
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

    async def training_labels(
        self,
        session: AsyncSession,
        model_name: str,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int,
    ) -> TrainingLabels:
        """At most ``limit`` labels of ``model_name``, ``start <= event_time < end``, in id
        order, as columns (:class:`TrainingLabels`): one query, no object per label."""
        connection = await session.connection()
        if connection.dialect.name == "sqlite":
            sql, params = sqlite_text.select_labels(model_name, start=start, end=end, limit=limit)
            rows = await sqlite_text.fetch_all(connection, sql, params)
            if not rows:
                return TrainingLabels.of([], [], [], pd.Series([], dtype="datetime64[ns, UTC]"))
            request_ids, keys, truths, times = zip(*rows, strict=True)
            # A column of SQLite's JSON type has numeric affinity: a number comes back
            # as one, the rest as JSON text.
            truth_texts = (t if type(t) is str else json.dumps(t) for t in truths)
            return TrainingLabels.of(
                list(request_ids),
                # One parse for all: the JSON texts joined as one array.
                json.loads(f"[{','.join(keys)}]"),
                json.loads(f"[{','.join(truth_texts)}]"),
                pd.to_datetime(pd.Series(times), format=sqlite_text.DATETIME_FORMAT, utc=True),
            )
        query = sa.select(
            LABELS.c.request_id, LABELS.c.entity_keys, LABELS.c.ground_truth, LABELS.c.event_time
        ).where(LABELS.c.model_name == model_name)
        if start is not None:
            query = query.where(LABELS.c.event_time >= start)
        if end is not None:
            query = query.where(LABELS.c.event_time < end)
        result = (await connection.execute(query.order_by(LABELS.c.id).limit(limit))).all()
        return TrainingLabels.of(
            [row.request_id for row in result],
            [row.entity_keys for row in result],
            [row.ground_truth for row in result],
            pd.Series([row.event_time for row in result], dtype="datetime64[ns, UTC]"),
        )

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
