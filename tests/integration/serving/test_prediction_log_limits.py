"""The prediction log under oversized records, against the real embedded broker: an
oversized record is refused and counted, an unsendable spill file is quarantined, the
memory bound holds, and the records around them still arrive."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from driftloop_bus.embedded import EmbeddedBroker, free_port
from driftloop_bus.publisher import Publisher
from driftloop_bus.topics import ensure_topics
from driftloop_events.envelope import KafkaRecord
from driftloop_events.topics import TopicSpec
from driftloop_serving.adapters.prediction_log import PredictionLog, _dump

from ..bus.helpers import eventually, read_topic

pytestmark = pytest.mark.integration


def counted(outcome: str) -> float:
    found = REGISTRY.get_sample_value("driftloop_prediction_records_total", {"outcome": outcome})
    return found or 0.0


def record(topic: str, n: int, size: int = 10) -> KafkaRecord:
    return KafkaRecord(topic=topic, key=f"r{n}".encode(), value=b"x" * size, headers=[])


async def test_an_oversized_record_is_refused_and_an_unsendable_spill_file_quarantined(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    topic = f"test.predictions.{uuid.uuid4().hex[:8]}"
    await ensure_topics(broker.bootstrap_servers, [TopicSpec(topic, 1, 3_600_000, "test")])
    spill = tmp_path / "spill"
    spill.mkdir()
    # A spill file that can never be sent (damaged on disk: it does not parse).
    (spill / "00000000000000000001-000001.jsonl").write_text('{"t": "predictions", "k": \n')
    (spill / "00000000000000000002-000001.jsonl").write_text(_dump([record(topic, 1)]))
    refused, quarantined = counted("refused"), counted("quarantined")

    log = PredictionLog(
        lambda: Publisher(broker.bootstrap_servers, topics=[]),
        spill,
        max_record_bytes=500_000,
    )
    await log.start()
    try:
        log.record(record(topic, 2, size=600_000))  # over max_record_bytes: refused
        for n in (3, 4):
            log.record(record(topic, n))
        found = await eventually(
            lambda: _keys(broker, topic, {b"r1", b"r3", b"r4"}), timeout=60, interval=0.5
        )
    finally:
        await log.stop()

    assert found == {b"r1", b"r3", b"r4"}  # the good spill file and the later records
    assert counted("refused") == refused + 1
    assert counted("quarantined") == quarantined + 1
    assert [p.name for p in (spill / "quarantine").iterdir()] == [
        "00000000000000000001-000001.jsonl"
    ]
    assert log.spilled() == 0


async def test_the_memory_buffer_bound_holds_while_the_broker_is_away(tmp_path: Path) -> None:
    dead = f"127.0.0.1:{free_port()}"
    log = PredictionLog(
        lambda: Publisher(dead, topics=[]), tmp_path / "spill", max_buffer=100, ack_timeout=0.5
    )
    await log.start()
    try:
        for n in range(450):
            log.record(record("predictions", n))
            assert log.pending <= 100
    finally:
        await log.stop()
    assert log.spilled() >= 4  # the rest waits on disk, nothing was dropped


async def _keys(broker: EmbeddedBroker, topic: str, wanted: set[bytes]) -> set[bytes] | None:
    records = await read_topic(broker.bootstrap_servers, topic, expected=len(wanted), timeout=2)
    keys = {r.key for r in records if r.key is not None}
    return keys if wanted <= keys else None
