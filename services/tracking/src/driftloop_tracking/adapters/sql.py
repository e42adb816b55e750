"""SQL helpers shared by the tracking adapters (SQLite and PostgreSQL).

The statements run past SQLAlchemy's execution (compiled once, through the driver)
are in :mod:`driftloop_tracking.adapters.driver_sql`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

#: What the adapters run statements on: a session, or a Core connection
#: (:meth:`~driftloop_kit.db.Database.connection`, lighter, for the per-call paths).
Executor = AsyncSession | AsyncConnection


async def connection_of(executor: Executor) -> AsyncConnection:
    """The connection under ``executor``, in its transaction."""
    return executor if isinstance(executor, AsyncConnection) else await executor.connection()


def dialect_of(executor: Executor) -> Dialect:
    """The dialect ``executor`` speaks."""
    if isinstance(executor, AsyncConnection):
        return executor.dialect
    return executor.get_bind().dialect


def dialect_insert(dialect: str, table: Table) -> Any:
    """The dialect's INSERT of ``table``, which has ``on_conflict_do_update``/``_nothing``."""
    return (pg_insert if dialect == "postgresql" else sqlite_insert)(table)


def upsert_statement(
    dialect: str, table: Table, columns: Sequence[str], keys: Sequence[str]
) -> Any:
    """INSERT ``columns``, or on a conflict on ``keys`` set the others to the new values."""
    statement = dialect_insert(dialect, table)
    changed = {c: statement.excluded[c] for c in columns if c not in keys}
    if not changed:
        return statement.on_conflict_do_nothing(index_elements=list(keys))
    return statement.on_conflict_do_update(index_elements=list(keys), set_=changed)


def id_list(ids: Sequence[str | int], dialect: str) -> Any:
    """The value of a bound list of ids (see :func:`in_ids`): a JSON array on SQLite."""
    return list(ids) if dialect == "postgresql" else json.dumps(list(ids))


def json_value(value: Any) -> Any:
    """A JSON column as read through the driver: text on SQLite, decoded by psycopg."""
    return json.loads(value) if isinstance(value, str | bytes) else value


async def upsert(
    executor: Executor, table: Table, values: dict[str, Any], keys: tuple[str, ...]
) -> None:
    """Insert ``values`` into ``table``, or update the row with the same ``keys``."""
    dialect = dialect_of(executor).name
    statement = dialect_insert(dialect, table).values(**values)
    changed = {k: v for k, v in values.items() if k not in keys}
    await executor.execute(
        statement.on_conflict_do_update(index_elements=list(keys), set_=changed)
        if changed
        else statement.on_conflict_do_nothing(index_elements=list(keys))
    )
