"""The trainer's migrations create exactly the schema the code declares."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from driftloop_kit.db import sync_url
from driftloop_kit.migrations import upgrade
from driftloop_trainer.adapters.tables import ALL_METADATA
from driftloop_trainer.entrypoints.app import MIGRATIONS

pytestmark = pytest.mark.integration


def test_upgraded_database_matches_the_declared_tables(database_url: str) -> None:
    upgrade(database_url, MIGRATIONS)
    upgrade(database_url, MIGRATIONS)  # a second upgrade is a no-op
    engine = create_engine(sync_url(database_url))
    try:
        with engine.connect() as connection:
            differences = compare_metadata(
                MigrationContext.configure(connection), list(ALL_METADATA)
            )
    finally:
        engine.dispose()
    assert differences == [], "tables.py changed without a migration: " + repr(differences[:5])
