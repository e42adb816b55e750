"""Feast's PostgreSQL offline store, plus the writes that pushes to the offline store need.

Feast 0.67's ``PostgreSQLOfflineStore`` reads (historical retrieval, materialization)
but cannot write, so ``push(..., to=OFFLINE)`` fails with it. This subclass adds
``offline_write_batch`` (a ``COPY`` into the source's table) and the table creation
the service does when it applies the repo. It reaches the source's table and Feast's
connection helper through :mod:`.feast_internals`; the subclass itself is pinned to
Feast 0.67.0 by ``tests/unit/features/test_features_feast_pins.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

import pyarrow as pa
from feast.feature_view import FeatureView
from feast.infra.offline_stores.contrib.postgres_offline_store.postgres import (
    PostgreSQLOfflineStore,
    PostgreSQLOfflineStoreConfig,
)
from feast.infra.offline_stores.contrib.postgres_offline_store.postgres_source import (
    PostgreSQLSource,
)
from feast.repo_config import RepoConfig
from psycopg import sql

from driftloop_features.adapters.feast_internals import postgres_connection, postgres_table

__all__ = [
    "DriftloopPostgreSQLOfflineStore",
    "DriftloopPostgreSQLOfflineStoreConfig",
    "create_table",
]


class DriftloopPostgreSQLOfflineStoreConfig(PostgreSQLOfflineStoreConfig):
    """Same settings as Feast's ``postgres`` offline store."""

    type: Literal[
        "driftloop_features.adapters.postgres_offline.DriftloopPostgreSQLOfflineStore"
    ] = "driftloop_features.adapters.postgres_offline.DriftloopPostgreSQLOfflineStore"  # type: ignore[assignment]


class DriftloopPostgreSQLOfflineStore(PostgreSQLOfflineStore):
    """Feast's PostgreSQL offline store that can also be pushed to."""

    @staticmethod
    def offline_write_batch(
        config: RepoConfig,
        feature_view: FeatureView,
        table: pa.Table,
        progress: Callable[[int], Any] | None,
    ) -> None:
        """Append ``table`` to the table of ``feature_view``'s batch source."""
        source = feature_view.batch_source
        target = postgres_table(source) if isinstance(source, PostgreSQLSource) else None
        if target is None:
            raise ValueError(
                f"feature view {feature_view.name!r} has no PostgreSQL table to write to"
            )
        names = table.column_names
        statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
            _table_identifier(target),
            sql.SQL(", ").join(sql.Identifier(name) for name in names),
        )
        rows = table.to_pylist()
        with postgres_connection(config.offline_store) as conn, conn.cursor() as cursor:
            with cursor.copy(statement) as copy:
                for row in rows:
                    copy.write_row([row[name] for name in names])
            conn.commit()
        if progress is not None:
            progress(len(rows))


#: PostgreSQL column types of the Feast value types a pushed column may have.
_SQL_TYPES = {
    "INT32": "INTEGER",
    "INT64": "BIGINT",
    "FLOAT": "REAL",
    "DOUBLE": "DOUBLE PRECISION",
    "STRING": "TEXT",
    "BOOL": "BOOLEAN",
    "BYTES": "BYTEA",
    "UNIX_TIMESTAMP": "TIMESTAMPTZ",
}


def sql_type(value_type_name: str) -> str:
    """The PostgreSQL type of a Feast value type name (``INT64``, ``DOUBLE_LIST`` ...)."""
    base = value_type_name.removesuffix("_LIST")
    column = _SQL_TYPES.get(base, "TEXT")
    return f"{column}[]" if value_type_name.endswith("_LIST") else column


def create_table(
    config: RepoConfig, table: str, columns: Sequence[tuple[str, str]], timestamp_field: str
) -> None:
    """Create ``table`` with ``columns`` (name, Feast value type name) when it is missing."""
    column_sql = sql.SQL(", ").join(
        sql.SQL("{} {}").format(sql.Identifier(name), sql.SQL(sql_type(type_name)))
        for name, type_name in columns
    )
    statements = [
        sql.SQL("CREATE TABLE IF NOT EXISTS {} ({})").format(_table_identifier(table), column_sql),
        # Point-in-time joins and materialization scan by event time.
        sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} ({})").format(
            sql.Identifier(f"ix_{table}_{timestamp_field}"[:63]),
            _table_identifier(table),
            sql.Identifier(timestamp_field),
        ),
    ]
    with postgres_connection(config.offline_store) as conn, conn.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)
        conn.commit()


def _table_identifier(name: str) -> sql.Composable:
    return sql.Identifier(*name.split(".", 1))
