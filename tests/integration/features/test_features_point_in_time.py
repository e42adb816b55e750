"""driftloop's point-in-time join (``adapters/point_in_time.py``) answers as Feast's own
``get_historical_features`` does on the same Parquet data (Feast 0.67.0's file store).

When Feast is upgraded the pin fails first: re-check the module's rules against the
new Feast's dask offline store, then update the pin.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import feast
import numpy as np
import pandas as pd  # type: ignore[import-untyped]
import pyarrow as pa
import pytest
from feast import (
    Entity,
    FeatureService,
    FeatureStore,
    FeatureView,
    Field,
    FileSource,
    RepoConfig,
)
from feast.types import Bool, Float64, Int64, String
from feast.value_type import ValueType

from driftloop_features.adapters import point_in_time

pytestmark = pytest.mark.integration

PINNED = "0.67.0"
RECHECK = "re-check adapters/point_in_time.py against the new Feast and update this pin"
T0 = datetime(2026, 11, 1, tzinfo=UTC)
ROW = "__row"


def test_feast_is_the_version_the_join_was_checked_against() -> None:
    assert feast.__version__ == PINNED, f"Feast {feast.__version__}: {RECHECK}"


def _store(tmp_path: Path, *, ties: bool = False) -> FeatureStore:
    """Three views: with a TTL and created timestamps, without a TTL, and keyed by two
    entities (one of them text). With ``ties``, some stored rows share an event time
    and differ by their created timestamp."""
    data = tmp_path / "data"
    data.mkdir()
    rng = np.random.default_rng(3)
    customers = np.arange(40)
    # Stored rows every 12 hours over 6 days, for some of the customers' times.
    stamps = [T0 + timedelta(hours=12 * i) for i in range(12)]
    rows = [(c, t) for c in customers for t in stamps if rng.random() < 0.6]
    stats = pd.DataFrame(rows, columns=["customer_id", "ts"])
    stats["created"] = stats["ts"] + pd.to_timedelta(rng.integers(0, 60, len(stats)), unit="m")
    if ties:
        again = stats.sample(frac=0.2, random_state=1).assign(
            created=lambda f: f["created"] + pd.Timedelta(minutes=90)
        )
        stats = pd.concat([stats, again], ignore_index=True)
    stats["x"] = rng.normal(0, 1, len(stats))
    stats["n"] = rng.integers(0, 100, len(stats))
    stats["site"] = rng.choice(["north", "south", "east"], len(stats))
    stats["flag"] = rng.random(len(stats)) < 0.5
    stats.sample(frac=1.0, random_state=2).to_parquet(data / "stats.parquet", index=False)
    scores = pd.DataFrame(
        {
            "customer_id": np.repeat(customers, 3),
            # naive times: UTC for Feast, and here
            "ts": np.tile(
                pd.to_datetime([T0 + timedelta(days=d) for d in (0, 2, 4)]).tz_localize(None), 40
            ),
            "score": rng.normal(5, 2, 120),
        }
    )
    scores.to_parquet(data / "scores.parquet", index=False)
    regions = pd.DataFrame(
        [
            (c, r, T0 + timedelta(days=d), float(c * 10 + d))
            for c in customers[::2]
            for r in ("eu", "us")
            for d in (1, 3)
        ],
        columns=["customer_id", "region", "ts", "spend"],
    )
    regions.to_parquet(data / "regions.parquet", index=False)

    customer = Entity(name="customer", join_keys=["customer_id"], value_type=ValueType.INT64)
    region = Entity(name="region", join_keys=["region"], value_type=ValueType.STRING)
    store = FeatureStore(
        config=RepoConfig(
            project="pit",
            registry=str(tmp_path / "registry.db"),
            provider="local",
            online_store={"type": "sqlite", "path": str(tmp_path / "online.db")},
            offline_store={"type": "file"},
            repo_path=str(tmp_path),
            entity_key_serialization_version=3,
        )
    )
    store.apply(
        [
            customer,
            region,
            FeatureView(
                name="stats",
                entities=[customer],
                ttl=timedelta(days=2),
                schema=[
                    Field(name="x", dtype=Float64),
                    Field(name="n", dtype=Int64),
                    Field(name="site", dtype=String),
                    Field(name="flag", dtype=Bool),
                ],
                source=FileSource(
                    name="stats_source",
                    path="data/stats.parquet",
                    timestamp_field="ts",
                    created_timestamp_column="created",
                ),
                online=False,
            ),
            FeatureView(
                name="scores",
                entities=[customer],
                ttl=timedelta(0),
                schema=[Field(name="score", dtype=Float64)],
                source=FileSource(
                    name="scores_source", path="data/scores.parquet", timestamp_field="ts"
                ),
                online=False,
            ),
            FeatureView(
                name="regions",
                entities=[customer, region],
                ttl=timedelta(days=30),
                schema=[Field(name="spend", dtype=Float64)],
                source=FileSource(
                    name="regions_source", path="data/regions.parquet", timestamp_field="ts"
                ),
                online=False,
            ),
        ]
    )
    return store


def _entity_df(rows: int = 300) -> pd.DataFrame:
    """Labels: before any stored row, between, on an exact stored time, past the TTL;
    no two with the same keys and time (Feast answers only one of those)."""
    rng = np.random.default_rng(11)
    frame = pd.DataFrame(
        {
            "customer_id": rng.integers(0, 45, rows),  # 40-44 have no stored rows
            "region": rng.choice(["eu", "us"], rows),
            "event_timestamp": T0 + pd.to_timedelta(rng.integers(-1 * 24, 9 * 24, rows), unit="h"),
            "label": rng.choice(["yes", "no"], rows),
        }
    )
    frame.loc[:9, "event_timestamp"] = T0 + timedelta(hours=12)  # exactly a stored time
    # Feast drops duplicates by each view's keys and time, so not by region either.
    return frame.drop_duplicates(["customer_id", "event_timestamp"]).reset_index(drop=True)


def _feasts_answer(
    store: FeatureStore, entity_df: pd.DataFrame, features: Any, full_feature_names: bool
) -> pd.DataFrame:
    """Feast's join, each entity row put back in its place (as the features gateway does)."""
    numbered = entity_df.assign(**{ROW: range(len(entity_df))})
    found = store.get_historical_features(
        entity_df=numbered, features=features, full_feature_names=full_feature_names
    ).to_df()
    frame = found.set_index(ROW).reindex(range(len(entity_df)))
    for column in entity_df.columns:
        frame[column] = entity_df[column].to_numpy()
    ordered = [*entity_df.columns, *(c for c in frame.columns if c not in entity_df.columns)]
    return frame[ordered].reset_index(drop=True)


def _ours(
    store: FeatureStore, entity_df: pd.DataFrame, features: Any, full_feature_names: bool
) -> pd.DataFrame:
    plan = point_in_time.plan(store, features, full_feature_names=full_feature_names)
    assert plan is not None
    answer = point_in_time.join(plan, entity_df)
    assert answer is not None
    return answer


def _same(ours: pd.DataFrame, feasts: pd.DataFrame) -> None:
    assert list(ours.columns) == list(feasts.columns), RECHECK
    for column in ours.columns:
        # Nulls compare equal whatever their spelling (NaN, None, pd.NA).
        got = ours[column].astype(object).where(ours[column].notna(), None).tolist()
        want = feasts[column].astype(object).where(feasts[column].notna(), None).tolist()
        assert got == want, f"{column}: {RECHECK}"


VIEWS = {
    "stats": ["stats:x", "stats:n", "stats:site", "stats:flag"],
    "scores": ["scores:score"],
    "regions": ["regions:spend"],
}
FEATURES = [ref for refs in VIEWS.values() for ref in refs]


@pytest.mark.parametrize("full_feature_names", [False, True])
@pytest.mark.parametrize("view", sorted(VIEWS))
def test_the_join_of_a_view_answers_as_feasts_get_historical_features(
    tmp_path: Path, view: str, full_feature_names: bool
) -> None:
    store = _store(tmp_path)
    entity_df = _entity_df()

    ours = _ours(store, entity_df, VIEWS[view], full_feature_names)
    feasts = _feasts_answer(store, entity_df, VIEWS[view], full_feature_names)

    _same(ours, feasts)
    schema = pa.Table.from_pandas(ours, preserve_index=False).schema
    assert schema == pa.Table.from_pandas(feasts, preserve_index=False).schema, RECHECK
    # The data reaches every case: values found, nulls past the TTL or before any row.
    last = ours.columns[-1]
    assert ours[last].isna().sum() > 10
    assert ours[last].notna().sum() > 50


def test_several_views_answer_as_feast_does_and_each_view_for_itself(tmp_path: Path) -> None:
    # Feast's dask store drops an entity row as soon as one view has stored rows of the
    # entity but none in reach; the gateway put such a row back with every feature null.
    # The join answers each view for itself: where Feast answers a row, the same.
    store = _store(tmp_path)
    entity_df = _entity_df()

    ours = _ours(store, entity_df, FEATURES, False)
    feasts = _feasts_answer(store, entity_df, FEATURES, False)

    features = [ref.split(":")[1] for ref in FEATURES]
    dropped = feasts[features].isna().all(axis=1)
    assert 0 < dropped.sum() < len(entity_df) / 2
    _same(ours[~dropped].reset_index(drop=True), feasts[~dropped].reset_index(drop=True))
    alone = pd.concat(
        [
            _ours(store, entity_df, refs, False).iloc[:, len(entity_df.columns) :]
            for refs in VIEWS.values()
        ],
        axis=1,
    )
    _same(ours[features], alone[features])


def test_the_join_of_a_feature_service_answers_as_feasts(tmp_path: Path) -> None:
    store = _store(tmp_path)
    service = FeatureService(name="svc", features=[store.get_feature_view("stats")[["x", "n"]]])
    store.apply([service])
    entity_df = _entity_df()

    _same(_ours(store, entity_df, service, False), _feasts_answer(store, entity_df, service, False))


def test_nothing_newer_or_older_than_the_ttl_is_joined_and_the_latest_created_wins_a_tie(
    tmp_path: Path,
) -> None:
    # Feast's dask store means the same (it sorts by created, then by event time, and
    # keeps the last), but its second sort is not stable: which of two rows of the same
    # event time it keeps changes with the order of the file's rows. Here the latest
    # created wins, as in Feast's SQL offline stores.
    store = _store(tmp_path, ties=True)
    stored = pd.read_parquet(tmp_path / "data" / "stats.parquet")
    entity_df = _entity_df()

    answer = _ours(store, entity_df, ["stats:x"], False)

    for row in answer.itertuples():
        mine = stored[stored["customer_id"] == row.customer_id]
        in_reach = mine[
            (mine["ts"] <= row.event_timestamp)
            & (mine["ts"] >= row.event_timestamp - timedelta(days=2))
        ]
        if in_reach.empty:
            assert pd.isna(row.x)
        else:
            latest = in_reach.sort_values(["ts", "created"]).iloc[-1]
            assert row.x == latest["x"]


def test_rows_with_the_same_keys_and_time_are_all_answered(tmp_path: Path) -> None:
    # Feast answers one of them; the training set has a row per label, each answered.
    store = _store(tmp_path)
    entity_df = pd.DataFrame(
        {
            "customer_id": [1, 1],
            "event_timestamp": [T0 + timedelta(days=5)] * 2,
            "label": ["yes", "no"],
        }
    )

    answer = _ours(store, entity_df, ["scores:score"], False)

    assert answer["score"].notna().all()
    assert answer["score"].iloc[0] == answer["score"].iloc[1]


def test_requests_the_join_does_not_follow_are_left_to_feast(tmp_path: Path) -> None:
    store = _store(tmp_path)

    assert point_in_time.plan(store, ["stats:x", "stats:x"], full_feature_names=False) is None
    assert point_in_time.plan(store, ["stats@v1:x"], full_feature_names=False) is None
    assert point_in_time.plan(store, ["no_such_view:x"], full_feature_names=False) is None
    plan = point_in_time.plan(store, ["regions:spend"], full_feature_names=False)
    assert plan is not None
    no_region = pd.DataFrame({"customer_id": [1], "event_timestamp": [T0]})
    assert point_in_time.join(plan, no_region) is None
