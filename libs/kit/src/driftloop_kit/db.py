"""One async SQLAlchemy engine per service: SQLite (aiosqlite) or PostgreSQL (psycopg 3)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import StaticPool

__all__ = ["SQLITE_BUSY_TIMEOUT_MS", "Database", "async_url", "sqlite_path", "sync_url"]

#: How long a SQLite writer waits for another writer's lock before failing.
SQLITE_BUSY_TIMEOUT_MS = 5000

_ASYNC_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "sqlite+aiosqlite": "sqlite+aiosqlite",
    "sqlite+pysqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+psycopg",
    "postgresql+psycopg": "postgresql+psycopg",
}
_SYNC_DRIVERS = {
    "sqlite": "sqlite",
    "sqlite+aiosqlite": "sqlite",
    "sqlite+pysqlite": "sqlite",
    "postgresql": "postgresql+psycopg",
    "postgresql+psycopg": "postgresql+psycopg",
}


def _with_driver(url: str, drivers: dict[str, str]) -> str:
    scheme, sep, rest = url.partition("://")
    try:
        driver = drivers[scheme.lower()]
    except KeyError:
        raise ValueError(f"unsupported database URL scheme {scheme!r}") from None
    # Swap the scheme only: re-rendering a parsed URL would re-quote the rest
    # (``:memory:`` becomes ``%3Amemory%3A``).
    return f"{driver}{sep}{rest}"


def async_url(url: str) -> str:
    """Rewrite a database URL for the async engine.

    ``sqlite://`` becomes ``sqlite+aiosqlite://``, ``postgresql://`` becomes
    ``postgresql+psycopg://``; URLs already naming those drivers are kept.

    Raises:
        ValueError: For any other database.
    """
    return _with_driver(url, _ASYNC_DRIVERS)


def sync_url(url: str) -> str:
    """Rewrite a database URL for synchronous use (Alembic).

    ``sqlite+aiosqlite://`` becomes ``sqlite://``; PostgreSQL uses psycopg 3,
    which is both sync and async.

    Raises:
        ValueError: For any other database.
    """
    return _with_driver(url, _SYNC_DRIVERS)


def sqlite_path(url: str | URL) -> Path | None:
    """File behind a SQLite URL, or ``None`` for PostgreSQL and in-memory SQLite."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def _set_sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        # WAL lets readers run while one writer writes; the rest of SQLite's
        # defaults are wrong for a server (no FK checks, fail at once on lock).
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


class Database:
    """A service's database: an async engine and a session factory.

    Args:
        url: ``postgresql://``, ``postgresql+psycopg://``, ``sqlite:///<path>`` or
            ``sqlite:///:memory:`` (async drivers are chosen automatically).
        echo: Log every SQL statement.

    Example::

        db = Database("sqlite:///.driftloop/tracking/tracking.db")
        async with db.session() as session:
            session.add(run)
        await db.dispose()
    """

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url: URL = make_url(async_url(url))
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        kwargs: dict[str, Any] = {"echo": echo}
        if self.is_sqlite:
            path = sqlite_path(self.url)
            if path is None:
                # Every connection to :memory: is a new, empty database: share one.
                kwargs["poolclass"] = StaticPool
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                # One file, one writer at a time: a small pool is plenty.
                kwargs.update(pool_size=5, max_overflow=5)
        else:
            # Connections die with failovers and idle timeouts; check before use.
            kwargs.update(pool_pre_ping=True, pool_size=5, max_overflow=10)
        self.engine: AsyncEngine = create_async_engine(self.url, **kwargs)
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _set_sqlite_pragmas)
        # expire_on_commit=False: objects stay readable after commit without
        # lazy loads, which would need I/O outside the session in async code.
        self.sessionmaker: async_sessionmaker[AsyncSession] = async_sessionmaker(
            self.engine, expire_on_commit=False
        )

    def __repr__(self) -> str:
        return f"Database({self.url.render_as_string(hide_password=True)!r})"

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session in one transaction: committed on success, rolled back on error."""
        async with self.sessionmaker() as session, session.begin():
            yield session

    async def ping(self) -> None:
        """Run ``SELECT 1``; raises if the database cannot be reached."""
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()
