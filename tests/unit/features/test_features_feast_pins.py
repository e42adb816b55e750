"""Pins of the features service's reaches past Feast's public API (Feast 0.67.0).

Each shortcut module (``adapters/feast_internals.py``, ``adapters/online_write.py``,
``adapters/online_json.py``, ``adapters/online_read.py``,
``adapters/postgres_offline.py``) was checked against
this Feast version. When Feast is upgraded these tests fail first: re-check the
modules against the new Feast and update the pin.
"""

from __future__ import annotations

import inspect
from datetime import UTC, datetime, timedelta
from typing import Any

import feast
import pyarrow as pa
import pytest
from feast import Entity, FeatureStore, FeatureView, Field, FileSource, PushSource
from feast.feature_server_utils import convert_response_to_dict
from feast.infra.offline_stores.contrib.postgres_offline_store.postgres import (
    PostgreSQLOfflineStore,
)
from feast.infra.offline_stores.contrib.postgres_offline_store.postgres_source import (
    PostgreSQLSource,
)
from feast.infra.online_stores.sqlite import SqliteOnlineStore
from feast.infra.provider import Provider
from feast.types import Float64, Int64, String
from feast.utils import _convert_arrow_to_proto
from feast.value_type import ValueType

from driftloop_features.adapters import feast_internals
from driftloop_features.adapters.online_write import OnlinePlan
from driftloop_features.adapters.postgres_offline import DriftloopPostgreSQLOfflineStore

pytestmark = pytest.mark.unit

PINNED = "0.67.0"
RECHECK = (
    "re-check adapters/feast_internals.py, online_write.py, online_json.py and "
    "postgres_offline.py against the new Feast and update this pin"
)


def test_feast_is_the_version_the_shortcuts_were_checked_against() -> None:
    assert feast.__version__ == PINNED, f"Feast {feast.__version__}: {RECHECK}"


def test_the_private_feast_names_the_internals_use_still_exist() -> None:
    assert callable(getattr(FeatureStore, "_get_provider", None)), RECHECK
    assert callable(getattr(FeatureStore, "_get_feature_views_to_materialize", None)), RECHECK
    assert callable(getattr(SqliteOnlineStore, "_get_conn", None)), RECHECK
    assert hasattr(SqliteOnlineStore, "_conn"), RECHECK
    assert list(inspect.signature(Provider.online_write_batch).parameters) == [
        "self",
        "config",
        "table",
        "data",
        "progress",
    ], RECHECK
    source = PostgreSQLSource(name="s", table="public.t", timestamp_field="ts")
    assert feast_internals.postgres_table(source) == "public.t", RECHECK
    query = PostgreSQLSource(name="q", query="SELECT 1", timestamp_field="ts")
    assert feast_internals.postgres_table(query) is None, RECHECK
    from feast.infra.utils.postgres import connection_utils

    assert callable(getattr(connection_utils, "_get_conn", None)), RECHECK


def test_the_online_json_helpers_still_exist_and_match_feasts_rendering() -> None:
    from feast import feature_server_utils

    assert callable(getattr(feature_server_utils, "_value_to_native", None)), RECHECK
    assert callable(getattr(feature_server_utils, "_metadata_to_dict", None)), RECHECK
    # The full comparison is test_features_online_json.py; this pins the replaced function.
    assert callable(convert_response_to_dict), RECHECK


def test_the_postgres_offline_store_still_cannot_write_on_its_own() -> None:
    # Feast's own store inherits the base class's offline_write_batch (it raises); the
    # day Feast implements it, the subclass may no longer be needed.
    own = PostgreSQLOfflineStore.offline_write_batch
    assert own.__qualname__.startswith("OfflineStore."), RECHECK
    assert DriftloopPostgreSQLOfflineStore.offline_write_batch is not own


def test_online_plan_protos_equal_feasts_own_conversion_of_the_same_rows() -> None:
    batch = FileSource(
        name="src", path="x.parquet", timestamp_field="ts", created_timestamp_column="created"
    )
    view = FeatureView(
        name="v",
        entities=[Entity(name="e", join_keys=["id"], value_type=ValueType.INT64)],
        ttl=timedelta(days=1),
        schema=[
            Field(name="id", dtype=Int64),
            Field(name="x", dtype=Float64),
            Field(name="site", dtype=String),
        ],
        source=PushSource(name="push", batch_source=batch),
    )
    t0 = datetime(2025, 1, 1, tzinfo=UTC)
    rows: list[dict[str, Any]] = [
        {"id": 1, "x": 1.5, "site": "north", "ts": t0, "created": t0},
        {"id": 2, "x": None, "site": "south", "ts": t0 + timedelta(minutes=1), "created": t0},
    ]
    plan = OnlinePlan.of(view)
    assert plan is not None
    ours = plan.protos(rows)
    table = pa.Table.from_pylist(rows)
    theirs = _convert_arrow_to_proto(table, view, {"id": ValueType.INT64})
    assert len(ours) == len(theirs) == 2
    for (key, values, ts, created), (f_key, f_values, f_ts, f_created) in zip(
        ours, theirs, strict=True
    ):
        assert key == f_key, RECHECK
        assert values == f_values, RECHECK
        # Feast hands naive UTC times to the online store; ours are aware: same instants.
        assert (ts, created) == (_utc(f_ts), _utc(f_created)), RECHECK


def _utc(moment: datetime | None) -> datetime | None:
    return moment.replace(tzinfo=UTC) if moment and moment.tzinfo is None else moment


def test_the_private_feast_names_the_online_read_uses_still_exist() -> None:
    # adapters/online_read.py; its answers are compared with Feast's own
    # get_online_features in tests/integration/features/test_features_online_read.py.
    from feast import utils
    from feast.infra.online_stores import sqlite

    context = inspect.signature(utils._get_cached_request_context).parameters
    assert list(context) == ["registry", "project", "features", "full_feature_names"], RECHECK
    assert callable(getattr(sqlite, "_table_id", None)), RECHECK
    assert sqlite._quote_id('a"b') == '"a""b"', RECHECK
    assert callable(getattr(SqliteOnlineStore, "_get_conn", None)), RECHECK


def test_the_private_feast_names_the_online_write_uses_still_exist() -> None:
    # adapters/online_write.py writes what these stores' online_write_batch writes; the
    # stored rows and hashes are compared with Feast's own write in
    # tests/integration/features/test_features_online_write.py.
    from feast.infra.key_encoding_utils import serialize_entity_key
    from feast.infra.online_stores import helpers, redis, sqlite
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.protos.feast.types.Value_pb2 import Value

    assert callable(getattr(sqlite, "_table_id", None)), RECHECK
    assert callable(getattr(redis.RedisOnlineStore, "_get_client", None)), RECHECK
    sqlite_write = inspect.getsource(SqliteOnlineStore.online_write_batch)
    assert "ON CONFLICT(entity_key, feature_name) DO UPDATE SET" in sqlite_write, RECHECK
    assert "extract_text_and_num" in sqlite_write, RECHECK
    redis_write = inspect.getsource(redis.RedisOnlineStore.online_write_batch)
    assert 'f_key = _mmh3(f"{feature_view}:{feature_name}")' in redis_write, RECHECK
    assert "new_total_nanos <= latest_seen_nanos" in redis_write, RECHECK
    key = EntityKey(join_keys=["id"], entity_values=[Value(int64_val=7)])
    assert callable(getattr(helpers, "_mmh3", None)), RECHECK
    redis_key = getattr(helpers, "_redis_key", None)
    assert callable(redis_key), RECHECK
    assert redis_key("p", key, 3) == serialize_entity_key(key, 3) + b"p", RECHECK
