"""The closed loop on the production stores: every service on its own PostgreSQL
database, the features' online store in Redis and its offline store in PostgreSQL (the
embedded broker stands in for Kafka), as `docker-compose.yml` and `deploy/k8s` run it.

The demo's iris world runs as a user would run it, with only the stores' variables set;
the test then reads the stores themselves, so a service that fell back to its embedded
default would fail it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis

from tests.e2e.demo import run_demo

pytestmark = pytest.mark.e2e

SERVICES = ("tracking", "registry", "features", "monitor", "trainer", "serving")
#: A Redis database of its own: the online store's keys are this test's alone.
REDIS_DB = 13


@pytest.mark.timeout(900)
def test_the_loop_closes_on_postgresql_and_redis(
    tmp_path: Path, postgres_databases: Callable[[], str], redis_url: str
) -> None:
    databases = {service: postgres_databases() for service in SERVICES}
    offline = postgres_databases()
    online = redis_url.rsplit("/", 1)[0] + f"/{REDIS_DB}"
    redis.Redis.from_url(online).flushdb()
    env = {
        **{f"DRIFTLOOP_{s.upper()}_DATABASE_URL": url for s, url in databases.items()},
        "DRIFTLOOP_FEATURES_ONLINE_STORE_URL": online,
        "DRIFTLOOP_FEATURES_OFFLINE_STORE_URL": offline,
    }
    done = run_demo(tmp_path, env=env)
    assert done.returncode == 0, done.output
    result = done.result()
    v1, v2 = result["first_version"], result["new_version"]
    assert v2 > v1
    assert result["requests"]["failed"] == 0

    def rows(service: str, query: str) -> list[tuple[Any, ...]]:
        with psycopg.connect(databases[service]) as connection:
            return connection.execute(query).fetchall()

    def count(service: str, table: str) -> int:
        return int(rows(service, f"SELECT count(*) FROM {table}")[0][0])

    # What the loop did is in each service's own PostgreSQL database.
    assert rows("registry", "SELECT version FROM model_versions ORDER BY version")[-1][0] == v2
    champion = rows(
        "registry", "SELECT version FROM registered_model_aliases WHERE alias = 'champion'"
    )
    assert champion == [(v2,)]
    jobs = rows("trainer", "SELECT status, promoted FROM jobs ORDER BY created_at")
    assert ("succeeded", True) in jobs
    assert len([j for j in jobs if j[1]]) == 2  # v1, then the retrained v2
    assert count("monitor", "monitor_drift_results") > 0
    assert count("tracking", "runs") >= 2
    # The features the loop served and trained on are in Redis and PostgreSQL.
    keys: int = redis.Redis.from_url(online).dbsize()  # type: ignore[assignment]
    assert keys > 0
    with psycopg.connect(offline) as connection:
        tables = connection.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchall()
    assert tables, "nothing was written to the offline store"
