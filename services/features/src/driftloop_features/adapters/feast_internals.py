"""Every reach past Feast's public API that is not a speed shortcut, one function each.

Checked against Feast 0.67.0; ``tests/unit/features/test_features_feast_pins.py`` pins
that version and fails when an upgrade moves one of these names. Each function says
what it replaces and why there is no public way:

- :func:`provider`: ``FeatureStore._get_provider()``. The provider's online store is
  needed to tune and close its connection, to know whether it reads asynchronously,
  and to write protobuf rows directly (:mod:`.online_write`); Feast exposes none of it.
- :func:`tune_sqlite_online_store` / :func:`close_sqlite_online_store`: the SQLite online
  store's ``_get_conn()`` / ``_conn``. Feast opens one connection and never closes it,
  and offers no pragma settings; WAL mode keeps online reads from waiting for an
  ingestion commit.
- :func:`views_to_materialize`: ``FeatureStore._get_feature_views_to_materialize``, the
  check Feast's own ``materialize`` makes, to name the views before loading them.
- :func:`counting_online_writes`: wraps the online store's ``online_write_batch`` on the
  instance, because Feast's materialization reports no row count.
- :func:`postgres_table` / :func:`postgres_connection`: ``PostgreSQLSource``'s table
  (``_postgres_options._table``, no public getter) and Feast's connection helper
  ``_get_conn``, for the writes Feast's PostgreSQL offline store lacks
  (:mod:`.postgres_offline`).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from feast import FeatureStore
from feast.infra.offline_stores.contrib.postgres_offline_store.postgres_source import (
    PostgreSQLSource,
)
from feast.infra.utils.postgres.connection_utils import _get_conn

__all__ = [
    "close_sqlite_online_store",
    "counting_online_writes",
    "postgres_connection",
    "postgres_table",
    "provider",
    "tune_sqlite_online_store",
    "views_to_materialize",
]


def provider(store: FeatureStore) -> Any:
    """The store's provider (its online store, async support, ``online_write_batch``)."""
    return store._get_provider()


def tune_sqlite_online_store(store: FeatureStore) -> None:
    """Put a SQLite online store in WAL mode with ``synchronous=NORMAL``."""
    conn = provider(store).online_store._get_conn(store.config)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")


def close_sqlite_online_store(store: FeatureStore) -> None:
    """Close the one connection a SQLite online store keeps open (if any)."""
    online = provider(store).online_store
    conn = getattr(online, "_conn", None)
    if conn is not None:
        conn.close()
        online._conn = None


def views_to_materialize(store: FeatureStore, names: list[str] | None) -> list[str]:
    """The views a materialization of ``names`` (None: all) loads; raises for unknown ones."""
    return [view.name for view in store._get_feature_views_to_materialize(names)]


@contextmanager
def counting_online_writes(store: FeatureStore) -> Iterator[dict[str, int]]:
    """Count the rows this thread writes to the online store, per feature view.

    Only the calling thread's writes are counted, so concurrent ingestion is not; the
    caller holds the store's write lock, so one count runs at a time.
    """
    online = provider(store).online_store
    original = online.online_write_batch
    counts: dict[str, int] = {}
    caller = threading.get_ident()

    def counting(config: Any, table: Any, data: Any, progress: Any) -> Any:
        if threading.get_ident() == caller:
            counts[table.name] = counts.get(table.name, 0) + len(data)
        return original(config, table, data, progress)

    online.online_write_batch = counting
    try:
        yield counts
    finally:
        del online.online_write_batch


def postgres_table(source: PostgreSQLSource) -> str | None:
    """The table a PostgreSQL source reads (None for a query source)."""
    table: str | None = source._postgres_options._table
    return table or None


def postgres_connection(offline_store_config: Any) -> AbstractContextManager[Any]:
    """A psycopg connection to the offline store, as Feast's PostgreSQL store opens one."""
    connection: AbstractContextManager[Any] = _get_conn(offline_store_config)
    return connection
