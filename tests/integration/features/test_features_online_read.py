"""The fast online read answers exactly what Feast's own ``get_online_features`` answers.

Same Feast store, same data, on SQLite and on Redis: random entity sets (present,
missing and duplicated keys), three feature views (one keyed by two join keys, one
with rows past their TTL), a feature service with projections, with and without full
feature names. And a registry change (a new feature applied by another process) is
served once the registry's cache TTL has passed.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd  # type: ignore[import-untyped]
import pytest
from feast import (
    Entity,
    FeatureService,
    FeatureStore,
    FeatureView,
    Field,
    FileSource,
    PushSource,
    RepoConfig,
)
from feast.types import Float64, Int64, String
from feast.value_type import ValueType
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from driftloop_bus.embedded import port_accepts
from driftloop_features.adapters import online_read
from driftloop_features.adapters.online_json import online_response_dict
from tests.conftest import REDIS_HOST, REDIS_PORT, require_or_skip

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC).replace(microsecond=0)
DRIVERS = range(12)  # 0..8 written; 9..11 never
SITES = ["north", "south", "east"]


def _views(extra_feature: bool = False) -> tuple[list[Any], FeatureService]:
    driver = Entity(name="driver", join_keys=["driver_id"], value_type=ValueType.INT64)
    site = Entity(name="site", join_keys=["site"], value_type=ValueType.STRING)
    source = FileSource(name="src", path="unused.parquet", timestamp_field="ts")
    push = PushSource(name="push", batch_source=source)
    stats_schema = [Field(name=f"f{i}", dtype=Float64) for i in range(3)]
    if extra_feature:
        stats_schema.append(Field(name="f3", dtype=Float64))
    stats = FeatureView(
        name="stats",
        entities=[driver],
        ttl=timedelta(days=1),
        schema=[Field(name="driver_id", dtype=Int64), *stats_schema],
        source=push,
    )
    recent = FeatureView(
        name="recent",
        entities=[driver],
        ttl=timedelta(seconds=1),
        schema=[
            Field(name="driver_id", dtype=Int64),
            Field(name="trips", dtype=Int64),
            Field(name="label", dtype=String),
        ],
        source=push,
    )
    pair = FeatureView(
        name="pair",
        entities=[driver, site],
        ttl=timedelta(days=1),
        schema=[
            Field(name="driver_id", dtype=Int64),
            Field(name="site", dtype=String),
            Field(name="h", dtype=Float64),
        ],
        source=push,
    )
    service = FeatureService(name="svc", features=[stats[["f0", "f2"]], recent.with_name("latest")])
    return [driver, site, source, push, stats, recent, pair, service], service


def _store(root: Path, online: dict[str, Any], project: str, ttl: int = 600) -> FeatureStore:
    config = RepoConfig(
        project=project,
        provider="local",
        registry={"path": str(root / "registry.db"), "cache_ttl_seconds": ttl},
        online_store=online,
        offline_store={"type": "file"},
        entity_key_serialization_version=3,
        repo_path=str(root),
    )
    return FeatureStore(config=config)


def _seed(store: FeatureStore) -> None:
    objects, _ = _views()
    store.apply(objects)
    old = NOW - timedelta(days=2)  # past the TTL of every view
    store.write_to_online_store(
        "stats",
        pd.DataFrame(
            {
                "driver_id": list(range(9)),
                **{f"f{i}": [d * 1.5 + i if d != 4 else None for d in range(9)] for i in range(3)},
                "ts": [old if d % 3 == 0 else NOW - timedelta(seconds=d) for d in range(9)],
            }
        ),
    )
    store.write_to_online_store(
        "recent",
        pd.DataFrame(
            {
                "driver_id": [1, 2, 5, 7],
                "trips": [10, 20, 50, 70],
                "label": ["a", "", "c", "d"],
                "ts": [old, NOW, NOW, old],
            }
        ),
    )
    store.write_to_online_store(
        "pair",
        pd.DataFrame(
            {
                "driver_id": [0, 1, 1, 3],
                "site": ["north", "north", "south", "east"],
                "h": [0.5, 1.5, 2.5, 3.5],
                "ts": [NOW, NOW, old, NOW],
            }
        ),
    )


@pytest.fixture(scope="module")
def sqlite_store(tmp_path_factory: pytest.TempPathFactory) -> FeatureStore:
    root = tmp_path_factory.mktemp("online-read-sqlite")
    store = _store(root, {"type": "sqlite", "path": str(root / "online.db")}, "fastread")
    _seed(store)
    return store


@pytest.fixture(scope="module")
def redis_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FeatureStore]:
    require_or_skip(
        "Redis", port_accepts(REDIS_HOST, REDIS_PORT), f"nothing listens on {REDIS_HOST}"
    )
    root = tmp_path_factory.mktemp("online-read-redis")
    # Redis keys carry the project: a project of its own keeps parallel runs apart.
    project = f"fastread{uuid.uuid4().hex[:10]}"
    online = {"type": "redis", "connection_string": f"{REDIS_HOST}:{REDIS_PORT}"}
    store = _store(root, online, project)
    _seed(store)
    try:
        yield store
    finally:
        store.teardown()  # type: ignore[no-untyped-call]


STORES = ["sqlite_store", "redis_store"]

requests = st.fixed_dictionaries(
    {
        "drivers": st.lists(st.sampled_from(DRIVERS), min_size=1, max_size=8),
        "features": st.one_of(
            st.just("svc"),
            st.lists(
                st.sampled_from(
                    [
                        "stats:f0",
                        "stats:f1",
                        "stats:f2",
                        "recent:trips",
                        "recent:label",
                        "pair:h",
                    ]
                ),
                min_size=1,
                max_size=6,
                unique=True,
            ),
        ),
        "full_feature_names": st.booleans(),
        "sites": st.lists(st.sampled_from(SITES), min_size=8, max_size=8),
    }
)


def _request(store: FeatureStore, drawn: dict[str, Any]) -> tuple[Any, dict[str, list[Any]]]:
    features = drawn["features"]
    if features == "svc":
        features = store.get_feature_service("svc", allow_cache=True)
    entities: dict[str, list[Any]] = {"driver_id": drawn["drivers"]}
    if isinstance(features, list) and "pair:h" in features:
        entities["site"] = drawn["sites"][: len(drawn["drivers"])]
    return features, entities


def _feasts(store: FeatureStore, features: Any, entities: Any, full: bool) -> dict[str, Any]:
    response = store.get_online_features(
        features=features, entity_rows=entities, full_feature_names=full
    )
    return online_response_dict(response.proto)


@pytest.mark.parametrize("store_fixture", STORES)
def test_the_fast_read_answers_what_feast_answers(
    store_fixture: str, request: pytest.FixtureRequest
) -> None:
    store: FeatureStore = request.getfixturevalue(store_fixture)

    @settings(
        max_examples=25,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(drawn=requests)
    def check(drawn: dict[str, Any]) -> None:
        features, entities = _request(store, drawn)
        full = drawn["full_feature_names"]
        plan = online_read.read_plan(store, features, list(entities), full_feature_names=full)
        assert plan is not None
        ours = online_read.read_online(store, plan, entities)
        assert ours == _feasts(store, features, entities, full)

    check()


def test_the_asynchronous_redis_read_answers_as_the_blocking_one(redis_store: FeatureStore) -> None:
    cases: list[tuple[Any, dict[str, list[Any]]]] = [
        (["stats:f0", "recent:label"], {"driver_id": [1, 11, 1, 4]}),
        (["pair:h", "stats:f2"], {"driver_id": [1, 1, 3], "site": ["north", "south", "east"]}),
        (redis_store.get_feature_service("svc"), {"driver_id": [5, 0, 9]}),
    ]

    async def both() -> None:
        for features, entities in cases:
            plan = online_read.read_plan(
                redis_store, features, list(entities), full_feature_names=True
            )
            assert plan is not None
            ours = await online_read.read_online_async(redis_store, plan, entities)
            assert ours == _feasts(redis_store, features, entities, True)

    # One event loop: Feast's Redis store keeps its asynchronous client.
    asyncio.run(both())


@pytest.mark.parametrize("store_fixture", STORES)
def test_missing_duplicated_and_expired_rows_read_as_feast_reads_them(
    store_fixture: str, request: pytest.FixtureRequest
) -> None:
    store: FeatureStore = request.getfixturevalue(store_fixture)
    entities = {"driver_id": [3, 11, 3, 1]}
    features = ["stats:f1", "recent:trips"]
    plan = online_read.read_plan(store, features, ["driver_id"], full_feature_names=True)
    assert plan is not None
    ours = online_read.read_online(store, plan, entities)
    assert ours == _feasts(store, features, entities, True)
    # Feast's online read does not apply the TTL: 3's stats row (two days old) is PRESENT.
    # A missing entity (11) is NOT_FOUND on SQLite; Feast's Redis store answers it
    # PRESENT with null values, and so does the fast read there.
    missing = "NOT_FOUND" if store_fixture == "sqlite_store" else "PRESENT"
    assert ours["results"][1]["statuses"] == ["PRESENT", missing, "PRESENT", "PRESENT"]
    assert ours["results"][1]["values"] == [4.5 + 1, None, 4.5 + 1, 1.5 + 1]
    assert ours["results"][2]["values"] == [None, None, None, 10]


def test_requests_past_the_plain_case_go_to_feast(sqlite_store: FeatureStore) -> None:
    # A column that is no join key (request data of an on-demand view, or a typo).
    plan = online_read.read_plan(
        sqlite_store, ["stats:f0"], ["driver_id", "tip"], full_feature_names=False
    )
    assert plan is None


def test_a_feature_applied_by_another_process_is_served_within_the_registry_ttl(
    tmp_path: Path,
) -> None:
    online = {"type": "sqlite", "path": str(tmp_path / "online.db")}
    serving = _store(tmp_path, online, "fastreg", ttl=1)
    _seed(serving)
    features = ["stats:f0"]
    first = online_read.read_plan(serving, features, ["driver_id"], full_feature_names=False)
    assert first is not None
    assert online_read.read_online(serving, first, {"driver_id": [1]})["results"][1]["values"] == [
        1.5
    ]
    # Another process applies the repo with a new feature and writes it.
    other = _store(tmp_path, online, "fastreg", ttl=1)
    objects, _ = _views(extra_feature=True)
    other.apply(objects)
    other.write_to_online_store(
        "stats",
        pd.DataFrame({"driver_id": [1], **{f"f{i}": [float(i)] for i in range(4)}, "ts": [NOW]}),
    )
    wanted = ["stats:f0", "stats:f3"]
    deadline = time.monotonic() + 10
    answer: dict[str, Any] | None = None
    while time.monotonic() < deadline:
        try:
            plan = online_read.read_plan(serving, wanted, ["driver_id"], full_feature_names=False)
        except Exception:  # Feast: the feature is unknown until the registry refreshes
            time.sleep(0.2)
            continue
        assert plan is not None
        answer = online_read.read_online(serving, plan, {"driver_id": [1]})
        break
    assert answer is not None, "the new feature was not served within 10 s (registry TTL 1 s)"
    columns = dict(
        zip(answer["metadata"]["feature_names"], answer["results"], strict=True)
    )  # Feast orders a view's features as it pleases: compare by name
    assert columns["f3"]["values"] == [3.0]
    assert columns["f0"]["values"] == [0.0]
    assert answer == _feasts(serving, wanted, {"driver_id": [1]}, False)
