"""The prediction log's journal: a serving process killed outright (``kill -9``) right
after answering loses none of those answers' records; the next process on the same
spill folder sends them, to the real embedded broker. A live process's journal is never
taken by another."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from driftloop_bus.embedded import EmbeddedBroker, free_port
from driftloop_bus.publisher import Publisher
from driftloop_bus.topics import ensure_topics
from driftloop_events.envelope import KafkaRecord
from driftloop_events.topics import TopicSpec
from driftloop_serving.adapters.prediction_log import PredictionLog

from ..bus.helpers import eventually, read_topic

pytestmark = pytest.mark.integration

#: A process that queues records as answered requests do, then is killed outright
#: before its sender could take them: the broker it names is not there.
_KILLED_AFTER_ANSWERING = textwrap.dedent(
    """
    import asyncio, os, signal, sys
    from pathlib import Path
    from driftloop_bus.publisher import Publisher
    from driftloop_events.envelope import KafkaRecord
    from driftloop_serving.adapters.prediction_log import PredictionLog

    async def main():
        spill, topic, dead, count = Path(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
        log = PredictionLog(lambda: Publisher(dead, topics=[]), spill, ack_timeout=30)
        await log.start()
        for n in range(count):
            log.record(KafkaRecord(topic=topic, key=f"r{n}".encode(), value=b"v", headers=[]))
        os.kill(os.getpid(), signal.SIGKILL)

    asyncio.run(main())
    """
)


async def test_records_answered_before_a_kill_9_are_sent_by_the_next_process(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    topic = f"test.predictions.{uuid.uuid4().hex[:8]}"
    await ensure_topics(broker.bootstrap_servers, [TopicSpec(topic, 1, 3_600_000, "test")])
    spill = tmp_path / "spill"
    dead = f"127.0.0.1:{free_port()}"
    killed = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", _KILLED_AFTER_ANSWERING, str(spill), topic, dead, "25"],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert killed.returncode == -9, killed.stderr.decode()
    assert [p.suffix for p in spill.iterdir()] == [".open"]  # its journal, nothing sent

    log = PredictionLog(lambda: Publisher(broker.bootstrap_servers, topics=[]), spill)
    await log.start()
    try:
        wanted = {f"r{n}".encode() for n in range(25)}
        found = await eventually(lambda: _keys(broker, topic, wanted), timeout=60, interval=0.5)
    finally:
        await log.stop()
    assert found == wanted
    assert list(spill.iterdir()) == []  # sent, so deleted


async def test_a_live_processs_journal_is_not_taken_by_another(tmp_path: Path) -> None:
    dead = f"127.0.0.1:{free_port()}"
    spill = tmp_path / "spill"
    first = PredictionLog(lambda: Publisher(dead, topics=[]), spill, ack_timeout=30)
    first.record(KafkaRecord(topic="predictions", key=b"k", value=b"v", headers=[]))
    (segment,) = spill.glob("*.open")

    second = PredictionLog(lambda: Publisher(dead, topics=[]), spill, ack_timeout=30)
    await second.start()
    try:
        assert segment.exists()  # still the first's, still being written
        assert second.spilled() == 0
    finally:
        await second.stop()
    await first.stop()  # the broker is away: its record is kept as a spill file
    assert first.spilled() == 1
    assert [p.suffix for p in spill.iterdir() if p.is_file()] == [".jsonl"]


async def _keys(broker: EmbeddedBroker, topic: str, wanted: set[bytes]) -> set[bytes] | None:
    records = await read_topic(broker.bootstrap_servers, topic, expected=len(wanted), timeout=2)
    keys = {r.key for r in records if r.key is not None}
    return keys if wanted <= keys else None
