"""What differs between a service's migrated database and the tables its code declares."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import MetaData, create_engine

from driftloop_kit.db import sync_url
from driftloop_kit.migrations import upgrade


def migrated_schema_differences(
    database_url: str, migrations: Path, metadata: Iterable[MetaData]
) -> list[Any]:
    """Upgrade twice (the second must be a no-op), then compare with ``metadata``."""
    upgrade(database_url, migrations)
    upgrade(database_url, migrations)
    engine = create_engine(sync_url(database_url))
    # Alembic compares against a list of MetaData as well as one; its annotation names one.
    every: Any = list(metadata)
    try:
        with engine.connect() as connection:
            differences: list[Any] = compare_metadata(
                MigrationContext.configure(connection),
                every,
            )
    finally:
        engine.dispose()
    return differences
