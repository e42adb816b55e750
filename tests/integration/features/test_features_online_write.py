"""The batched online write stores what Feast's own ``online_write_batch`` stores.

Two projects on one SQLite file and on one Redis: the same batches go through
:class:`~driftloop_features.adapters.online_write.OnlineWriter` into one and through
Feast's own conversion (``_convert_arrow_to_proto``) and the provider's
``online_write_batch`` into the other. Both are then read through Feast's own
``get_online_features`` (values, statuses and event times), and the stored bytes are
compared: SQLite's rows, Redis's hashes. The batches hold every value type the writer
converts, nulls, an entity twice, rows older than the stored ones and a redelivery.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from feast import Entity, FeatureStore, FeatureView, Field, FileSource, PushSource, RepoConfig
from feast.types import Bool, Bytes, Float32, Float64, Int32, Int64, String
from feast.utils import _convert_arrow_to_proto
from feast.value_type import ValueType

from driftloop_bus.embedded import port_accepts
from driftloop_features.adapters import feast_internals
from driftloop_features.adapters.online_write import EntityKeys, OnlinePlan, OnlineWriter
from tests.conftest import REDIS_HOST, REDIS_PORT, require_or_skip

pytestmark = pytest.mark.integration

T0 = datetime(2026, 1, 1, 12, 0, 0, 123456, tzinfo=UTC)
FEATURES = ["d", "f", "i", "j", "s", "b", "raw"]


def _objects() -> tuple[list[Any], FeatureView]:
    driver = Entity(name="driver", join_keys=["driver_id"], value_type=ValueType.INT64)
    source = FileSource(
        name="src", path="unused.parquet", timestamp_field="ts", created_timestamp_column="created"
    )
    push = PushSource(name="push", batch_source=source)
    view = FeatureView(
        name="stats",
        entities=[driver],
        ttl=timedelta(days=3650),
        schema=[
            Field(name="driver_id", dtype=Int64),
            Field(name="d", dtype=Float64),
            Field(name="f", dtype=Float32),
            Field(name="i", dtype=Int64),
            Field(name="j", dtype=Int32),
            Field(name="s", dtype=String),
            Field(name="b", dtype=Bool),
            Field(name="raw", dtype=Bytes),
        ],
        source=push,
    )
    return [driver, source, push, view], view


def _row(driver: int, at: datetime, seed: float, *, nulls: bool = False) -> dict[str, Any]:
    return {
        "driver_id": driver,
        "d": None if nulls else seed * 1.1,
        "f": seed / 3,  # not exact in 32 bits: SQLite's value_text is the float32's
        "i": None if nulls else int(seed * 1000),
        "j": -int(seed),
        "s": None if nulls else f"s{seed}",
        "b": bool(int(seed) % 2),
        "raw": None if nulls else f"r{seed}".encode(),
        "ts": at,
        "created": at + timedelta(seconds=1),
    }


BATCHES = [
    [
        _row(1, T0, 1.0),
        _row(2, T0, 2.5, nulls=True),
        _row(1, T0 + timedelta(seconds=5), 7.25),  # the later value of driver 1
        _row(3, T0 - timedelta(days=1), 3.0),
    ],
    # Older than what is stored for 1 and 2 (Redis keeps the stored, SQLite overwrites, in
    # both writers); 4 is new.
    [
        _row(1, T0 - timedelta(hours=1), 9.0),
        _row(2, T0 - timedelta(hours=1), 8.0),
        _row(4, T0, 4.0),
    ],
]
REDELIVERED = BATCHES[0]


def _store(root: Path, online: dict[str, Any], project: str) -> FeatureStore:
    config = RepoConfig(
        project=project,
        provider="local",
        registry={"path": str(root / f"registry-{project}.db"), "cache_ttl_seconds": 600},
        online_store=online,
        offline_store={"type": "file"},
        entity_key_serialization_version=3,
        repo_path=str(root),
    )
    store = FeatureStore(config=config)
    store.apply(_objects()[0])
    return store


def _write_ours(store: FeatureStore, rows: list[dict[str, Any]]) -> int:
    view = store.get_feature_view("stats")
    plan = OnlinePlan.of(view)
    assert plan is not None
    provider = feast_internals.provider(store)
    assert OnlineWriter.covers(provider.online_store, store.config)
    keys = EntityKeys(store.config.entity_key_serialization_version)
    return OnlineWriter(provider.online_store, store.config, keys).write(view, plan, rows)


def _write_feasts(store: FeatureStore, rows: list[dict[str, Any]]) -> None:
    view = store.get_feature_view("stats")
    data = _convert_arrow_to_proto(pa.Table.from_pylist(rows), view, {"driver_id": ValueType.INT64})
    feast_internals.provider(store).online_write_batch(store.config, view, data, progress=None)


def _both(ours: FeatureStore, feasts: FeatureStore) -> None:
    for rows in (*BATCHES, REDELIVERED):
        _write_ours(ours, rows)
        _write_feasts(feasts, rows)


def _answer(store: FeatureStore) -> Any:
    response = store.get_online_features(
        features=[f"stats:{name}" for name in FEATURES],
        entity_rows=[{"driver_id": d} for d in (1, 2, 3, 4, 5)],
    )
    return response.proto


@pytest.fixture
def sqlite_pair(tmp_path: Path) -> tuple[FeatureStore, FeatureStore, Path]:
    path = tmp_path / "online.db"
    online = {"type": "sqlite", "path": str(path)}
    return _store(tmp_path, online, "ours"), _store(tmp_path, online, "feasts"), path


@pytest.fixture
def redis_pair(tmp_path: Path) -> Iterator[tuple[FeatureStore, FeatureStore]]:
    require_or_skip(
        "Redis", port_accepts(REDIS_HOST, REDIS_PORT), f"nothing listens on {REDIS_HOST}"
    )
    online = {"type": "redis", "connection_string": f"{REDIS_HOST}:{REDIS_PORT}"}
    suffix = uuid.uuid4().hex[:10]
    ours, feasts = _store(tmp_path, online, f"ours{suffix}"), _store(tmp_path, online, f"f{suffix}")
    try:
        yield ours, feasts
    finally:
        ours.teardown()  # type: ignore[no-untyped-call]
        feasts.teardown()  # type: ignore[no-untyped-call]


def test_sqlite_rows_read_back_and_are_stored_as_feasts_own_write(
    sqlite_pair: tuple[FeatureStore, FeatureStore, Path],
) -> None:
    ours, feasts, path = sqlite_pair
    _both(ours, feasts)
    assert _answer(ours) == _answer(feasts)
    answer = ours.get_online_features(
        features=["stats:d", "stats:s"], entity_rows=[{"driver_id": 1}, {"driver_id": 4}]
    ).to_dict()
    # SQLite keeps the last write: the redelivered first batch's latest row of driver 1.
    assert answer["d"] == [7.25 * 1.1, 4.0 * 1.1]
    with sqlite3.connect(path) as conn:
        tables = {
            project: conn.execute(
                f"SELECT entity_key, feature_name, value, value_text, event_ts, created_ts "
                f'FROM "{project}_stats" ORDER BY entity_key, feature_name'
            ).fetchall()
            for project in ("ours", "feasts")
        }
    assert len(tables["ours"]) == 4 * len(FEATURES)
    assert tables["ours"] == tables["feasts"]


def test_redis_rows_read_back_and_are_stored_as_feasts_own_write(
    redis_pair: tuple[FeatureStore, FeatureStore],
) -> None:
    ours, feasts = redis_pair
    _both(ours, feasts)
    assert _answer(ours) == _answer(feasts)
    answer = ours.get_online_features(
        features=["stats:d", "stats:s"], entity_rows=[{"driver_id": 1}, {"driver_id": 2}]
    ).to_dict()
    # Redis keeps the stored row when an older one arrives, and a redelivery changes nothing.
    assert answer["d"] == [7.25 * 1.1, None]
    assert answer["s"] == ["s7.25", None]
    client = feast_internals.provider(ours).online_store._get_client(ours.config.online_store)
    hashes = {}
    for store in (ours, feasts):
        project = store.config.project.encode()
        keys = sorted(client.scan_iter(match=b"*" + project))
        hashes[store.config.project] = [(key[: -len(project)], client.hgetall(key)) for key in keys]
    assert len(hashes[ours.config.project]) == 4
    assert hashes[ours.config.project] == hashes[feasts.config.project]
