"""Small helpers for the bus tests: a demo state table and a raw DLQ reader."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka import AIOKafkaConsumer
from prometheus_client import REGISTRY
from sqlalchemy import Column, Integer, MetaData, String, Table, func, select

from driftloop_bus import tables
from driftloop_events.envelope import KafkaRecord
from driftloop_kit.db import Database

#: A stand-in for a service's own state: one row per change, one per effect.
state_metadata = MetaData()
changes = Table(
    "changes",
    state_metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(100), nullable=False),
)
effects = Table(
    "effects",
    state_metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("event_id", String(100), nullable=False),
    Column("detail", String(200), nullable=False),
)
deliveries = Table(
    "deliveries",
    state_metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("event_id", String(100), nullable=False),
)


async def create_tables(database: Database) -> None:
    """Create the bus tables and the demo state tables (fresh per test)."""
    async with database.engine.begin() as conn:
        for metadata in (tables.metadata, state_metadata):
            await conn.run_sync(metadata.drop_all)
            await conn.run_sync(metadata.create_all)


async def eventually(
    probe: Callable[[], Awaitable[Any]], *, timeout: float = 30.0, interval: float = 0.1
) -> Any:
    """Poll ``probe`` until it returns something truthy (bounded), and return that."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = await probe()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s (last value: {last!r})")


async def read_topic(
    bootstrap_servers: str, topic: str, *, expected: int, timeout: float = 30.0
) -> list[Any]:
    """Read ``expected`` records of ``topic`` from the beginning, without a group."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap_servers, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    records: list[Any] = []
    try:
        deadline = time.monotonic() + timeout
        while len(records) < expected and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for partition_records in batch.values():
                records.extend(partition_records)
    finally:
        await consumer.stop()
    return records


async def count_rows(database: Database, table: Table) -> int:
    """How many rows ``table`` holds."""
    async with database.session() as session:
        return int((await session.execute(select(func.count()).select_from(table))).scalar_one())


def undecodable_alias_set(topic: str, key: bytes) -> KafkaRecord:
    """A record whose CloudEvents headers are fine but whose value is not an AliasSet."""
    return KafkaRecord(
        topic=topic,
        key=key,
        value=b"\xff\x00 not protobuf",
        headers=[
            ("ce_specversion", b"1.0"),
            ("ce_id", b"bad-1"),
            ("ce_source", b"/test"),
            ("ce_type", b"driftloop.registry.alias.set"),
            ("ce_time", b"2026-11-22T10:00:00Z"),
            ("content-type", b"application/protobuf"),
        ],
    )


def relay_failures(service: str) -> float:
    """Failed outbox relay passes of ``service`` in this process."""
    value = REGISTRY.get_sample_value("driftloop_outbox_publish_errors_total", {"service": service})
    return value or 0.0


async def relay_failed_since(service: str, before: float) -> bool:
    """Whether ``service``'s relay has failed a pass since it had ``before`` failures."""
    return relay_failures(service) > before
