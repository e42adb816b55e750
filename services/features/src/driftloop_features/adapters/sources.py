"""Helpers for the Python files of a Feast repo served by driftloop.

A repo's batch sources must be writable by the offline store the deployment uses:
Parquet files with the embedded default, PostgreSQL tables in production. A repo
written with :func:`batch_source` runs unchanged in both::

    from driftloop_features.sources import batch_source

    iris_source = batch_source("iris_features", timestamp_field="event_timestamp")
    iris_push = PushSource(name="iris_push", batch_source=iris_source)

The service says which store is in use before it loads the repo
(:func:`use_offline_store`); the Feast CLI run on the repo sees
``DRIFTLOOP_FEATURES_OFFLINE_STORE_URL``.
"""

from __future__ import annotations

import os
from typing import Literal

from feast import FileSource
from feast.data_source import DataSource
from feast.infra.offline_stores.contrib.postgres_offline_store.postgres_source import (
    PostgreSQLSource,
)

__all__ = ["OfflineKind", "batch_source", "offline_kind", "use_offline_store"]

OfflineKind = Literal["file", "postgres"]

_active: OfflineKind | None = None


def use_offline_store(kind: OfflineKind) -> None:
    """Make :func:`batch_source` build sources for ``kind`` (called by the service)."""
    global _active  # noqa: PLW0603 - one process serves one deployment
    _active = kind


def offline_kind() -> OfflineKind:
    """The offline store batch sources are built for."""
    if _active is not None:
        return _active
    url = os.environ.get("DRIFTLOOP_FEATURES_OFFLINE_STORE_URL", "file")
    return "postgres" if url.startswith("postgresql") else "file"


def batch_source(
    name: str,
    *,
    timestamp_field: str = "event_timestamp",
    created_timestamp_column: str = "created",
    description: str = "",
) -> DataSource:
    """A batch source named ``name`` in the deployment's offline store.

    Args:
        name: Source name; also the Parquet file (``data/<name>.parquet``, relative to
            the repo) or the PostgreSQL table.
        timestamp_field: Column holding each row's event time.
        created_timestamp_column: Column holding when each row was written (tie-breaker).
        description: Shown when the source is listed.
    """
    if offline_kind() == "postgres":
        return PostgreSQLSource(
            name=name,
            table=name,
            timestamp_field=timestamp_field,
            created_timestamp_column=created_timestamp_column,
            description=description,
        )
    return FileSource(
        name=name,
        path=f"data/{name}.parquet",
        timestamp_field=timestamp_field,
        created_timestamp_column=created_timestamp_column,
        description=description,
    )
