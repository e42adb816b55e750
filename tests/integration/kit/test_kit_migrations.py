"""Per-service Alembic migrations run from code, on SQLite and PostgreSQL."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from threading import Barrier

import pytest
from alembic import command
from sqlalchemy import create_engine, inspect, text

from driftloop_kit.db import sync_url
from driftloop_kit.migrations import alembic_config, upgrade, upgrade_async

pytestmark = pytest.mark.integration

MIGRATIONS = Path(__file__).parent / "widget_migrations"


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database with no tables yet."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/svc/svc.db"
    factory: Callable[[], str] = request.getfixturevalue("postgres_databases")
    return factory()


def describe(url: str) -> tuple[set[str], set[str], list[str]]:
    """Tables, widget columns and applied revisions of the database at ``url``."""
    engine = create_engine(sync_url(url))
    try:
        inspector = inspect(engine)
        tables = set(inspector.get_table_names())
        columns = (
            {c["name"] for c in inspector.get_columns("widgets")} if "widgets" in tables else set()
        )
        with engine.connect() as connection:
            versions = (
                list(connection.scalars(text("SELECT version_num FROM alembic_version")))
                if "alembic_version" in tables
                else []
            )
    finally:
        engine.dispose()
    return tables, columns, versions


def test_upgrade_creates_the_tables_at_head(fresh_url: str) -> None:
    upgrade(fresh_url, MIGRATIONS)

    tables, columns, versions = describe(fresh_url)
    assert {"widgets", "alembic_version"} <= tables
    assert columns == {"id", "name", "colour"}
    assert versions == ["0002"]


def test_running_upgrade_twice_is_a_no_op(fresh_url: str) -> None:
    upgrade(fresh_url, MIGRATIONS)
    engine = create_engine(sync_url(fresh_url))
    try:
        with engine.begin() as connection:
            connection.execute(text("INSERT INTO widgets (name) VALUES ('kept')"))

        upgrade(fresh_url, MIGRATIONS)

        with engine.connect() as connection:
            names = list(connection.scalars(text("SELECT name FROM widgets")))
    finally:
        engine.dispose()
    assert names == ["kept"]
    assert describe(fresh_url)[2] == ["0002"]


def test_upgrade_stops_at_the_requested_revision(fresh_url: str) -> None:
    upgrade(fresh_url, MIGRATIONS, revision="0001")
    assert describe(fresh_url)[1:] == ({"id", "name"}, ["0001"])

    upgrade(fresh_url, MIGRATIONS)
    assert describe(fresh_url)[1:] == ({"id", "name", "colour"}, ["0002"])


async def test_upgrade_async_runs_inside_an_event_loop(fresh_url: str) -> None:
    await upgrade_async(fresh_url, MIGRATIONS)

    assert describe(fresh_url)[2] == ["0002"]


def test_downgrade_works_through_the_same_config(fresh_url: str) -> None:
    upgrade(fresh_url, MIGRATIONS)

    command.downgrade(alembic_config(fresh_url, MIGRATIONS), "0001")

    assert describe(fresh_url)[1:] == ({"id", "name"}, ["0001"])


def test_concurrent_upgrades_in_one_process_do_not_collide(fresh_url: str) -> None:
    with ThreadPoolExecutor(max_workers=4) as pool:
        for future in [pool.submit(upgrade, fresh_url, MIGRATIONS) for _ in range(4)]:
            future.result(timeout=60)

    assert describe(fresh_url)[2] == ["0002"]


def _upgrade_together(barrier: Barrier, url: str) -> None:
    # Everything is imported; now all replicas hit the database at the same moment.
    barrier.wait(timeout=60)
    upgrade(url, MIGRATIONS)


def test_replicas_upgrading_postgresql_at_once_do_not_collide(
    postgres_databases: Callable[[], str],
) -> None:
    url = postgres_databases()
    replicas = 4
    # Separate processes, like replicas starting together: only the database
    # (its advisory lock) can keep them apart.
    spawn = multiprocessing.get_context("spawn")
    with spawn.Manager() as manager:
        barrier = manager.Barrier(replicas)
        with ProcessPoolExecutor(max_workers=replicas, mp_context=spawn) as pool:
            futures = [pool.submit(_upgrade_together, barrier, url) for _ in range(replicas)]
            for future in futures:
                future.result(timeout=120)

    assert describe(url)[2] == ["0002"]


@pytest.mark.parametrize(
    "url", ["sqlite:///unused/offline.db", "postgresql://nobody@127.0.0.1:1/offline"]
)
def test_offline_mode_prints_sql_without_touching_a_database(
    url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    command.upgrade(alembic_config(url, MIGRATIONS), "head", sql=True)

    script = capsys.readouterr().out
    assert "CREATE TABLE widgets" in script
    assert "ALTER TABLE widgets ADD COLUMN colour VARCHAR(20)" in script
    assert not Path("unused").exists()
