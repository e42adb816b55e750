"""Statements compiled once and run through the database driver, past SQLAlchemy.

What it replaces: ``AsyncSession.execute`` / ``AsyncConnection.execute`` of a Core
statement on the per-call paths (log-metric, log-batch, runs/create, runs/get and the
run page of a search).

Why: on SQLite, SQLAlchemy's aiosqlite adapter makes four hops to aiosqlite's thread
per statement (create a cursor, execute, fetch, close), more CPU than the statement
itself; aiosqlite's own ``execute_fetchall`` and ``executemany`` take one. Executing
many rows, SQLAlchemy also binds each one through the compiled statement; the driver
takes them as they are. And building and compiling a statement costs more than
running it, so each is compiled once per dialect and kept (:class:`Query`; the
statements built per request, a search's, in a :class:`CompiledCache`).
PostgreSQL gets the same SQL through ``exec_driver_sql``. bench/README.md has the
figures.

It relies on SQLAlchemy internals that are not public API: ``SQLCompiler.positiontup``,
``compiled.params`` and ``get_raw_connection().driver_connection`` (aiosqlite's
connection, in the session's transaction); ``tests/unit/tracking/test_tracking_shortcuts.py``
pins the SQLAlchemy and aiosqlite versions it was checked against.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar, cast

from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement

from driftloop_tracking.adapters.sql import Executor, connection_of

__all__ = ["CompiledCache", "CompiledSQL", "Query", "compile_for", "fetch_all"]


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

    On SQLite it runs with aiosqlite's ``execute_fetchall``/``executemany`` (one hop
    to aiosqlite's thread, rows bound as they are); PostgreSQL goes through
    SQLAlchemy's connection (``exec_driver_sql``), same SQL (see the module's docstring).

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


Key = TypeVar("Key")


class CompiledCache(Generic[Key]):
    """Statements built per request (a search's), compiled once per ``key`` and kept.

    Emptied when full: the keys a deployment repeats (a dashboard's searches) come
    back at once, and a bound keeps odd requests from growing it.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._compiled: dict[Key, CompiledSQL] = {}

    def get(self, key: Key, build: Callable[[], ClauseElement], dialect: Dialect) -> CompiledSQL:
        """The compiled statement of ``key`` (which must name the dialect too)."""
        if (found := self._compiled.get(key)) is None:
            found = compile_for(build(), dialect)
            if len(self._compiled) >= self.size:
                self._compiled.clear()
            self._compiled[key] = found
        return found
