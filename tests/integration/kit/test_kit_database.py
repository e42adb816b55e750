"""Database against real SQLite files and a real PostgreSQL server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import (
    Column,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    func,
    insert,
    select,
    text,
)
from sqlalchemy.exc import IntegrityError, OperationalError

from driftloop_kit.db import Database

pytestmark = pytest.mark.integration

metadata = MetaData()
experiments = Table(
    "experiments",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(50), nullable=False, unique=True),
)
runs = Table(
    "runs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("experiment_id", ForeignKey("experiments.id"), nullable=False),
)


@pytest.fixture(params=["sqlite", "postgresql"])
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/nested/dir/kit.db"
    else:
        url = request.getfixturevalue("postgres_url")
    db = Database(url)
    async with db.engine.begin() as connection:
        await connection.run_sync(metadata.create_all)
    try:
        yield db
    finally:
        async with db.engine.begin() as connection:
            await connection.run_sync(metadata.drop_all)
        await db.dispose()


async def count_experiments(db: Database) -> int:
    async with db.session() as session:
        return int(await session.scalar(select(func.count()).select_from(experiments)) or 0)


# A session (ORM) and a Core connection keep the same promise: one transaction.
TRANSACTIONS = pytest.mark.parametrize("transaction", ["session", "connection"])


@TRANSACTIONS
async def test_transaction_commits_when_the_block_succeeds(
    database: Database, transaction: str
) -> None:
    async with getattr(database, transaction)() as executor:
        await executor.execute(insert(experiments).values(name="churn"))

    assert await count_experiments(database) == 1


@TRANSACTIONS
async def test_transaction_rolls_back_when_the_block_raises(
    database: Database, transaction: str
) -> None:
    async def insert_then_fail() -> None:
        async with getattr(database, transaction)() as executor:
            await executor.execute(insert(experiments).values(name="churn"))
            raise RuntimeError("handler failed")

    with pytest.raises(RuntimeError, match="handler failed"):
        await insert_then_fail()

    assert await count_experiments(database) == 0


async def test_foreign_keys_are_enforced(database: Database) -> None:
    with pytest.raises(IntegrityError):
        async with database.session() as session:
            await session.execute(insert(runs).values(experiment_id=999))

    async with database.session() as session:
        assert await session.scalar(select(func.count()).select_from(runs)) == 0


async def test_ping_succeeds_on_a_reachable_database(database: Database) -> None:
    await database.ping()


async def test_concurrent_writers_all_succeed(database: Database) -> None:
    async def write(i: int) -> None:
        async with database.session() as session:
            await session.execute(insert(experiments).values(name=f"exp-{i}"))

    await asyncio.gather(*(write(i) for i in range(20)))

    assert await count_experiments(database) == 20


async def test_sqlite_file_gets_its_folder_wal_and_busy_timeout(tmp_path: Path) -> None:
    path = tmp_path / "home" / "tracking" / "tracking.db"
    db = Database(f"sqlite:///{path}")
    try:
        async with db.engine.connect() as connection:
            journal = await connection.scalar(text("PRAGMA journal_mode"))
            foreign_keys = await connection.scalar(text("PRAGMA foreign_keys"))
            busy_timeout = await connection.scalar(text("PRAGMA busy_timeout"))
    finally:
        await db.dispose()

    assert path.exists()
    assert (journal, foreign_keys, busy_timeout) == ("wal", 1, 5000)


async def test_in_memory_sqlite_is_one_database_for_all_sessions() -> None:
    db = Database("sqlite:///:memory:")
    try:
        async with db.engine.begin() as connection:
            await connection.run_sync(metadata.create_all)
        async with db.session() as session:
            await session.execute(insert(experiments).values(name="churn"))

        assert await count_experiments(db) == 1
    finally:
        await db.dispose()


async def test_ping_raises_when_postgresql_is_unreachable() -> None:
    db = Database("postgresql://postgres@127.0.0.1:1/nothing?connect_timeout=2")
    try:
        with pytest.raises(OperationalError):
            await db.ping()
    finally:
        await db.dispose()


async def test_sqlite_connection_returned_in_a_transaction_is_rolled_back(tmp_path: Path) -> None:
    # A write through the driver that nobody commits: SQLAlchemy does not know of
    # the transaction, so only the pool's reset can end it (and free the write lock).
    db = Database(f"sqlite:///{tmp_path}/kit.db")
    try:
        async with db.engine.begin() as connection:
            await connection.run_sync(metadata.create_all)
        async with db.engine.connect() as connection:
            left_open = (await connection.get_raw_connection()).driver_connection
            assert left_open is not None
            await left_open.execute("INSERT INTO experiments (name) VALUES ('uncommitted')")
            assert left_open.in_transaction

        async with db.connection() as connection:
            driver = (await connection.get_raw_connection()).driver_connection
            assert driver is not None
            assert driver is left_open  # the pool's only connection, checked out again
            assert not driver.in_transaction
            await connection.execute(insert(experiments).values(name="churn"))
        names = {r.name for r in (await _all_experiments(db))}
        assert names == {"churn"}
    finally:
        await db.dispose()


async def _all_experiments(db: Database) -> list[Any]:
    async with db.session() as session:
        return list((await session.execute(select(experiments.c.name))).all())
