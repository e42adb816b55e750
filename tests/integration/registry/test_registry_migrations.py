"""The registry's migrations create exactly the schema the code declares."""

from __future__ import annotations

import pytest

from driftloop_registry.adapters.tables import ALL_METADATA
from driftloop_registry.entrypoints.app import MIGRATIONS

from ..schema import migrated_schema_differences

pytestmark = pytest.mark.integration


def test_upgraded_database_matches_the_declared_tables(database_url: str) -> None:
    differences = migrated_schema_differences(database_url, MIGRATIONS, ALL_METADATA)
    assert differences == [], "tables.py changed without a migration: " + repr(differences[:5])
