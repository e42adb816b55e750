"""The shared fixtures give real, isolated services, and a missing one skips or fails."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import cast

import _pytest.outcomes
import psycopg
import pytest
import redis.asyncio as aioredis
from aiokafka.admin import AIOKafkaAdminClient

from driftloop_bus.embedded import EmbeddedBroker

from ..conftest import require_or_skip

pytestmark = pytest.mark.integration


async def test_the_session_broker_is_a_real_kafka_protocol_broker(broker: EmbeddedBroker) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap_servers)
    await admin.start()
    try:
        cluster = await admin.describe_cluster()
    finally:
        await admin.close()
    assert cluster["brokers"], cluster


def test_each_module_gets_a_fresh_empty_postgresql_database(postgres_url: str) -> None:
    with psycopg.connect(postgres_url) as conn:
        name = conn.execute("SELECT current_database()").fetchone()
        tables = conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchone()
    assert name is not None
    assert name[0].startswith("driftloop_test_")
    assert tables == (0,)


async def test_the_redis_fixture_points_at_a_live_redis(redis_url: str) -> None:
    client = aioredis.from_url(redis_url)
    try:
        # redis-py annotates ping() for its sync and async clients at once.
        assert await cast("Awaitable[bool]", client.ping()) is True
    finally:
        await client.aclose()


def test_a_missing_service_skips_unless_services_are_required(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("DRIFTLOOP_REQUIRE_SERVICES", raising=False)
    with pytest.raises(_pytest.outcomes.Skipped, match="Redis is not reachable"):
        require_or_skip("Redis", reachable=False, reason="nothing listens")
    monkeypatch.setenv("DRIFTLOOP_REQUIRE_SERVICES", "1")
    with pytest.raises(_pytest.outcomes.Failed, match="Redis is required"):
        require_or_skip("Redis", reachable=False, reason="nothing listens")
    require_or_skip("Redis", reachable=True, reason="unused")  # reachable: no outcome
