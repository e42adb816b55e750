"""SQL helpers shared by the tracking adapters (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import operator
from collections.abc import Callable, Sequence
from typing import Any, cast

from sqlalchemy import Table
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement

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


async def _driver(connection: AsyncConnection) -> Any:
    """The driver's own connection (aiosqlite's) under SQLAlchemy's, in its transaction."""
    return (await connection.get_raw_connection()).driver_connection


class CompiledSQL:
    """SQL compiled for one dialect, and how to bind its parameters for the driver."""

    __slots__ = ("defaults", "order", "sql")

    def __init__(self, compiled: SQLCompiler) -> None:
        self.sql = str(compiled)
        # Values bound in the statement itself (literals), overridden by the caller's.
        self.defaults = dict(compiled.params)
        self.order = list(compiled.positiontup or []) if compiled.positional else None

    def bind(self, params: dict[str, Any]) -> Any:
        values = {**self.defaults, **params} if self.defaults else params
        if self.order is None:  # named parameters (PostgreSQL)
            return values
        return tuple(values[name] for name in self.order)

    def bind_rows(self, rows: Sequence[dict[str, Any]]) -> list[Any]:
        if self.order is None:
            return list(rows)
        if len(self.order) == 1:
            (name,) = self.order
            return [(row[name],) for row in rows]
        pick = operator.itemgetter(*self.order)  # a row's values, in the SQL's order
        return [pick(row) for row in rows]


class Query:
    """A statement compiled once per dialect, run through the database driver.

    On SQLite, SQLAlchemy's aiosqlite adapter spends four hops to aiosqlite's thread
    per statement (create a cursor, execute, fetch, close): ~250 µs of CPU, more than
    the statement. aiosqlite's own ``execute_fetchall`` and ``executemany`` take one.
    And executing many rows, SQLAlchemy binds each through the compiled statement
    (a third of a 1000-metric batch); the driver takes them as they are. PostgreSQL
    goes through SQLAlchemy's connection (``exec_driver_sql``), same SQL.

    The statements run in the executor's transaction. Parameters are bound by name
    (``bindparam("run_id")``) with values the driver takes as they are: str, int,
    float, bool, None; rows come back as tuples, without SQLAlchemy's result types
    (see :func:`json_value`).

    Args:
        build: The statement for a dialect name (``"sqlite"`` or ``"postgresql"``).
        columns: For INSERTs, the keys of every row (the columns given values).
    """

    def __init__(
        self, build: Callable[[str], ClauseElement], columns: Sequence[str] | None = None
    ) -> None:
        self.build = build
        self.columns = list(columns) if columns is not None else None
        self._compiled: dict[str, CompiledSQL] = {}

    def _for(self, dialect: Dialect) -> CompiledSQL:
        if (found := self._compiled.get(dialect.name)) is None:
            statement = self.build(dialect.name)
            compiled = statement.compile(dialect=dialect, column_keys=self.columns)
            found = self._compiled[dialect.name] = CompiledSQL(cast(SQLCompiler, compiled))
        return found

    async def all(self, executor: Executor, **params: Any) -> list[Any]:
        """The rows the statement returns, as tuples."""
        connection = await connection_of(executor)
        return await fetch_all(connection, self._for(connection.dialect), params)

    async def first(self, executor: Executor, **params: Any) -> Any | None:
        """The first row the statement returns, or ``None``."""
        rows = await self.all(executor, **params)
        return rows[0] if rows else None

    async def execute(self, executor: Executor, **params: Any) -> int:
        """Run a statement that returns no rows; how many rows it changed."""
        connection = await connection_of(executor)
        compiled = self._for(connection.dialect)
        if connection.dialect.name == "sqlite":
            driver = await _driver(connection)
            cursor = await driver.execute(compiled.sql, compiled.bind(params))
            return int(cursor.rowcount)
        result = await connection.exec_driver_sql(compiled.sql, compiled.bind(params))
        return int(result.rowcount)

    async def execute_many(self, executor: Executor, rows: Sequence[dict[str, Any]]) -> None:
        """Run the statement once per row of ``rows`` (dicts holding ``columns``)."""
        if not rows:
            return
        connection = await connection_of(executor)
        compiled = self._for(connection.dialect)
        if connection.dialect.name == "sqlite":
            driver = await _driver(connection)
            await driver.executemany(compiled.sql, compiled.bind_rows(rows))
        else:
            await connection.exec_driver_sql(compiled.sql, compiled.bind_rows(rows))


def compile_for(statement: ClauseElement, dialect: Dialect) -> CompiledSQL:
    """``statement`` compiled for ``dialect``, lists of values (``IN``) expanded."""
    compiled = statement.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
    return CompiledSQL(cast(SQLCompiler, compiled))


async def fetch_all(
    connection: AsyncConnection, compiled: CompiledSQL, params: dict[str, Any] | None = None
) -> list[Any]:
    """The rows of ``compiled`` run through the driver (see :class:`Query`), as tuples."""
    bound = compiled.bind(params or {})
    if connection.dialect.name == "sqlite":
        driver = await _driver(connection)
        return list(await driver.execute_fetchall(compiled.sql, bound))
    return list((await connection.exec_driver_sql(compiled.sql, bound)).all())


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
