"""The lineage log in SQL: written inside the caller's transaction, read per model."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from driftloop_registry.adapters.tables import lineage_events
from driftloop_registry.domain.lineage_log import LogEntry

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _microseconds(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(microseconds=1)


def _entry(row: Any) -> LogEntry:
    return LogEntry(
        id=row.event_id,
        type=row.event_type,
        source=row.source,
        time=_EPOCH + timedelta(microseconds=row.event_time_us),
        model=row.model_name,
        version=row.version,
        job_id=row.job_id,
        cause_id=row.cause_event_id,
        summary=row.summary,
    )


class LineageLog:
    """The ``lineage_events`` table; every method works in the caller's session."""

    async def record(self, session: AsyncSession, entry: LogEntry) -> bool:
        """Add ``entry`` to the log in ``session``'s transaction; False if its id is there.

        The consumer's inbox already keeps a redelivered event out; the unique event id
        makes sure nothing else writes an event twice either.
        """
        connection = await session.connection()
        dialect_insert = pg_insert if connection.dialect.name == "postgresql" else sqlite_insert
        statement = (
            dialect_insert(lineage_events)
            .values(
                event_id=entry.id,
                event_type=entry.type,
                source=entry.source,
                event_time_us=_microseconds(entry.time),
                model_name=entry.model,
                version=entry.version,
                job_id=entry.job_id,
                cause_event_id=entry.cause_id,
                summary=entry.summary,
            )
            .on_conflict_do_nothing(index_elements=["event_id"])
            .returning(lineage_events.c.id)
        )
        return (await session.execute(statement)).first() is not None

    async def model_log(self, session: AsyncSession, model: str) -> list[LogEntry]:
        """Every entry about ``model``, oldest first (ties in the order they were recorded)."""
        rows = await session.execute(
            select(lineage_events)
            .where(lineage_events.c.model_name == model)
            .order_by(lineage_events.c.event_time_us, lineage_events.c.id)
        )
        return [_entry(row) for row in rows]

    async def rename_model(self, session: AsyncSession, *, name: str, new_name: str) -> None:
        """The model's log follows its rename."""
        await session.execute(
            update(lineage_events)
            .where(lineage_events.c.model_name == name)
            .values(model_name=new_name)
        )

    async def forget_model(self, session: AsyncSession, name: str) -> None:
        """Drop a deleted model's log: a model made later under its name starts afresh."""
        await session.execute(delete(lineage_events).where(lineage_events.c.model_name == name))
