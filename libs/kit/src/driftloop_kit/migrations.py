"""Per-service Alembic migrations, run from code.

A service keeps an ordinary Alembic folder (``migrations/versions/*.py`` and a
``script.py.mako``); its ``migrations/env.py`` is two lines::

    from driftloop_kit.migrations import make_env
    from driftloop_tracking.adapters.tables import ALL_METADATA

    make_env(list(ALL_METADATA))

and its lifespan (or the CLI) calls :func:`upgrade_async` with the service's
database URL. Each service owns its database, so Alembic's default
``alembic_version`` table is fine.
"""

from __future__ import annotations

import asyncio
import threading
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, MetaData, create_engine, text
from sqlalchemy.pool import NullPool

from driftloop_kit.db import sqlite_path, sync_url

__all__ = ["SchemaMigrations", "alembic_config", "make_env", "upgrade", "upgrade_async"]

#: Key under ``Config.attributes`` holding the database URL (kept out of the
#: ini-style main options, which would interpolate ``%`` in passwords).
URL_ATTRIBUTE = "driftloop.database_url"

# Serialises concurrent upgrades (several replicas starting at once) on PostgreSQL.
_ADVISORY_LOCK_KEY = zlib.crc32(b"driftloop.migrations")

# Alembic keeps the running environment in module globals (alembic.context), so
# two upgrades in one process must not overlap.
_IN_PROCESS = threading.Lock()


def alembic_config(database_url: str, script_location: str | Path) -> Config:
    """An Alembic :class:`~alembic.config.Config` for one service, without an ini file.

    Args:
        database_url: The service's database URL (any driver the kit accepts).
        script_location: The service's migrations folder (holding ``env.py``).

    Returns:
        A config usable with any :mod:`alembic.command` (``revision``, ``downgrade`` ...).
    """
    config = Config()
    config.set_main_option("script_location", str(script_location))
    config.attributes[URL_ATTRIBUTE] = sync_url(database_url)
    return config


def upgrade(database_url: str, script_location: str | Path, *, revision: str = "head") -> None:
    """Upgrade the database to ``revision``; a no-op when it is already there.

    Creates the folder of a SQLite file if needed. Blocks: inside an event loop,
    use :func:`upgrade_async`. Safe to call from several threads or processes at
    once (on PostgreSQL an advisory lock makes later callers wait, then find the
    work done).

    Args:
        database_url: The service's database URL.
        script_location: The service's migrations folder.
        revision: Target revision, ``"head"`` by default.
    """
    path = sqlite_path(sync_url(database_url))
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    with _IN_PROCESS:
        command.upgrade(alembic_config(database_url, script_location), revision)


async def upgrade_async(
    database_url: str, script_location: str | Path, *, revision: str = "head"
) -> None:
    """:func:`upgrade` in a worker thread, so a lifespan does not block the loop."""
    await asyncio.to_thread(upgrade, database_url, script_location, revision=revision)


class SchemaMigrations:
    """An app resource that brings the service's schema up to date at start-up.

    List it first among the resources: the outbox relay reads its table as soon as
    it starts.

    Args:
        database_url: The service's database.
        script_location: The service's migrations folder.
    """

    def __init__(self, database_url: str, script_location: str | Path) -> None:
        self.database_url = database_url
        self.script_location = script_location

    async def start(self) -> None:
        """Upgrade to the latest revision."""
        await upgrade_async(self.database_url, self.script_location)

    async def stop(self) -> None:
        """Nothing to release."""


def make_env(target_metadata: MetaData | Sequence[MetaData]) -> None:
    """Run the migrations of the current Alembic invocation: the body of ``env.py``.

    Handles offline mode (``alembic upgrade --sql``: SQL is printed, not run) and
    online mode. SQLite uses batch mode, since it cannot alter most of a table in
    place. The URL comes from :func:`alembic_config`, else from ``sqlalchemy.url``
    in an ``alembic.ini``; a caller may pass an open connection as
    ``config.attributes["connection"]``.

    Args:
        target_metadata: The service's table metadata (used by autogenerate).
    """
    from alembic import context

    config = context.config
    url = config.attributes.get(URL_ATTRIBUTE) or config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no database URL: use driftloop_kit.migrations.upgrade()")
    url = sync_url(url)
    metadata = target_metadata if isinstance(target_metadata, MetaData) else list(target_metadata)
    options: dict[str, Any] = {
        "target_metadata": metadata,
        "render_as_batch": url.startswith("sqlite"),
        "compare_type": True,
    }

    if context.is_offline_mode():
        context.configure(url=url, literal_binds=True, **options)
        with context.begin_transaction():
            context.run_migrations()
        return

    def run(connection: Connection) -> None:
        context.configure(connection=connection, **options)
        with context.begin_transaction():
            if connection.dialect.name == "postgresql":
                # Held until the migration transaction ends.
                connection.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_LOCK_KEY}
                )
            context.run_migrations()

    given = config.attributes.get("connection")
    if given is not None:
        run(given)
        return
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            run(connection)
    finally:
        engine.dispose()
