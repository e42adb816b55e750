"""The production stores: Redis online, PostgreSQL registry and PostgreSQL offline store."""

from __future__ import annotations

import io
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pandas as pd  # type: ignore[import-untyped]
import psycopg
import pyarrow.parquet as pq
import pytest

from driftloop_bus.embedded import EmbeddedBroker, port_accepts
from driftloop_kit.testing import auth_headers
from tests.conftest import REDIS_HOST, REDIS_PORT, require_or_skip

from .conftest import (
    RunningServer,
    eventually,
    feature_row,
    features_settings,
    measurements,
    new_flower_ids,
    online_values,
    produce,
)

pytestmark = pytest.mark.integration

T0 = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def production_server(
    broker: EmbeddedBroker,
    postgres_databases: Callable[[], str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RunningServer]:
    """The service on Redis (online) and PostgreSQL (registry, offline store)."""
    require_or_skip(
        "Redis",
        port_accepts(REDIS_HOST, REDIS_PORT),
        f"nothing listens on {REDIS_HOST}:{REDIS_PORT}",
    )
    database = postgres_databases()
    server = RunningServer(
        features_settings(
            home=tmp_path_factory.mktemp("features-production"),
            bootstrap_servers=broker.bootstrap_servers,
            # A project of its own: Redis keys are prefixed by it, and the server is shared.
            project=f"test_{uuid.uuid4().hex[:10]}",
            online_store_url=f"redis://{REDIS_HOST}:{REDIS_PORT}/0",
            offline_store_url=database,
            registry_url=database,
            database_url=database,
            stream_engine="bus",
        )
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def test_rows_produced_with_aiokafka_appear_in_the_redis_online_store(
    production_server: RunningServer,
) -> None:
    ids = new_flower_ids(2)
    now = datetime.now(UTC)
    rows = [
        feature_row(ids[0], now - timedelta(minutes=2), values=measurements(5.8, "west")),
        feature_row(ids[1], now - timedelta(minutes=1), values=measurements(6.9, "east")),
    ]
    await produce(production_server.settings.kafka_bootstrap_servers, rows)

    async def arrived() -> bool:
        values = await online_values(
            production_server.url, ids, ["iris_features:sepal_length", "iris_features:site"]
        )
        return values["sepal_length"] == [5.8, 6.9] and values["site"] == ["west", "east"]

    await eventually(arrived, timeout=10)


def test_historical_retrieval_on_postgresql_is_point_in_time_correct(
    production_server: RunningServer,
) -> None:
    flower, other = new_flower_ids(2)
    rows = [
        (flower, T0, 1.0),
        (flower, T0 + timedelta(hours=1), 2.0),
        (flower, T0 + timedelta(hours=2), 3.0),
        (other, T0 + timedelta(minutes=30), 9.0),
    ]
    df = {
        "flower_id": [r[0] for r in rows],
        "sepal_length": [r[2] for r in rows],
        "sepal_width": [3.0] * 4,
        "petal_length": [1.5] * 4,
        "petal_width": [0.25] * 4,
        "site": ["lab"] * 4,
        "event_timestamp": [r[1].isoformat() for r in rows],
        "created": [r[1].isoformat() for r in rows],
    }
    pushed = httpx.post(
        f"{production_server.url}/push",
        json={"push_source_name": "iris_push", "df": df, "to": "offline"},
        timeout=30,
        headers=auth_headers(),
    )
    assert pushed.status_code == 200, pushed.text
    times = [
        T0 - timedelta(minutes=1),
        T0,
        T0 + timedelta(minutes=59),
        T0 + timedelta(hours=1, minutes=30),
        T0 + timedelta(days=2),
        T0 + timedelta(days=40),
    ]
    response = httpx.post(
        f"{production_server.url}/get-historical-features",
        json={
            "entities": {
                "flower_id": [flower] * 6 + [other],
                "event_timestamp": [t.isoformat() for t in times]
                + [(T0 + timedelta(minutes=10)).isoformat()],
            },
            "features": ["iris_features:sepal_length"],
        },
        timeout=60,
        headers=auth_headers(),
    )
    assert response.status_code == 200, response.text
    frame = pq.read_table(io.BytesIO(response.content)).to_pandas()
    values = [None if pd.isna(v) else v for v in frame["sepal_length"]]
    assert values == [None, 1.0, 1.0, 2.0, 3.0, None, None]


def test_the_registry_and_offline_rows_live_in_postgresql(
    production_server: RunningServer,
) -> None:
    url = production_server.settings.database_url
    with psycopg.connect(url) as conn:
        views = conn.execute(
            "SELECT feature_view_name FROM feature_views WHERE project_id = %s",
            (production_server.settings.project,),
        ).fetchall()
        columns = conn.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_name = 'iris_features' ORDER BY ordinal_position"
        ).fetchall()
    assert views == [("iris_features",)]
    assert [c[0] for c in columns] == [
        "flower_id",
        "sepal_length",
        "sepal_width",
        "petal_length",
        "petal_width",
        "site",
        "event_timestamp",
        "created",
    ]
