"""The publisher's own batching puts a key where ``AIOKafkaProducer.send`` would."""

from __future__ import annotations

import pytest
from aiokafka import AIOKafkaProducer

from driftloop_bus.publisher import _PARTITIONER

pytestmark = pytest.mark.unit


async def test_a_key_lands_in_the_partition_aiokafka_send_would_choose() -> None:
    # Not started: building the producer opens no connection.
    producer = AIOKafkaProducer(bootstrap_servers="127.0.0.1:1")
    partitions = list(range(12))
    keys = [f"model-{i}".encode() for i in range(500)] + [b"", b"\x00\xff" * 40]
    chosen = [_PARTITIONER(key, partitions, partitions) for key in keys]
    assert chosen == [producer._partitioner(key, partitions, partitions) for key in keys]
    assert len(set(chosen)) == 12, "murmur2 spreads 500 keys over every partition"
