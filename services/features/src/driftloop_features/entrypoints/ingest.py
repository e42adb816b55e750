"""The Kafka entrypoint: a consumer of ``features.ingest`` that hands batches to ingestion.

Feast does not consume Kafka itself; this does. Records are taken in batches
(``ingest_batch_size`` rows, or what arrived within ``ingest_batch_seconds``) and each
batch is handed to :class:`~driftloop_features.handlers.Ingestion`. Offsets are committed
after the batch is written (or its bad rows dead-lettered), so delivery is at least
once; writing a row twice writes the same value again.

Two consumers do this, chosen by ``ingest_consumer``:

- :class:`KafkaIngestConsumer` (default): aiokafka's ``getmany`` in a loop. It reads
  ~265,000 records/s on this kind of machine, so the stores set the pace.
- :class:`IngestAgent`: a faust-streaming agent (``stream.take_events``). faust's
  per-event machinery tops out near 11,000 records/s with an agent that does nothing,
  below the ingestion target once rows are decoded and written; kept for deployments
  that run their stream processing in faust.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import faust
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import OffsetAndMetadata

from driftloop_bus.streams import faust_app, from_faust
from driftloop_bus.tasks import cancel_and_wait
from driftloop_bus.topics import ensure_topics
from driftloop_events.topics import TOPICS, dlq_spec
from driftloop_features.handlers import Ingestion
from driftloop_features.settings import FeaturesSettings

__all__ = ["INGEST_TOPIC", "IngestAgent", "KafkaIngestConsumer"]

log = logging.getLogger(__name__)

INGEST_TOPIC = "features.ingest"


async def _ensure_ingest_topics(bootstrap_servers: str) -> None:
    """Create ``features.ingest`` and its DLQ, retrying until the broker answers."""
    backoff = 0.2
    specs = [TOPICS[INGEST_TOPIC], dlq_spec(INGEST_TOPIC)]
    while True:
        try:
            await ensure_topics(bootstrap_servers, specs)
            return
        except asyncio.CancelledError:
            raise
        except Exception as error:
            log.warning(
                "ingestion could not reach the broker; retrying",
                extra={"error": f"{type(error).__name__}: {error}"},
            )
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 5.0)


class KafkaIngestConsumer:
    """Consumes ``features.ingest`` with aiokafka and hands each poll's records over.

    Start-up does not wait for the broker: the consumer connects in the background and
    retries until the broker answers, as the other consumers of the bus do.

    Args:
        settings: Batch size and wait, consumer group, broker.
        ingestion: What each batch is handed to.
    """

    def __init__(self, *, settings: FeaturesSettings, ingestion: Ingestion) -> None:
        self.settings = settings
        self.ingestion = ingestion
        self._task: asyncio.Task[None] | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self.started = asyncio.Event()
        self.batches = 0

    async def start(self) -> None:
        """Connect and join the group in the background."""
        if self._task is None:
            self._task = asyncio.create_task(self._main(), name="features-ingest")

    async def wait_started(self, timeout: float = 60.0) -> None:
        """Wait until the consumer has its partitions (tests, benchmarks)."""
        await asyncio.wait_for(self.started.wait(), timeout)

    async def _main(self) -> None:
        settings = self.settings
        await _ensure_ingest_topics(settings.kafka_bootstrap_servers)
        session_ms = int(settings.ingest_session_timeout * 1000)
        consumer = AIOKafkaConsumer(
            INGEST_TOPIC,
            bootstrap_servers=settings.kafka_bootstrap_servers,
            group_id=settings.ingest_group,
            client_id=settings.ingest_group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=settings.ingest_batch_size,
            session_timeout_ms=session_ms,
            heartbeat_interval_ms=min(3000, session_ms // 3),
        )
        await consumer.start()
        self._consumer = consumer
        wait_ms = int(settings.ingest_batch_seconds * 1000)
        while True:
            polled = await consumer.getmany(
                timeout_ms=wait_ms, max_records=settings.ingest_batch_size
            )
            if consumer.assignment():
                self.started.set()
            if not polled:
                continue
            records = [record for batch in polled.values() for record in batch]
            await self.ingestion.handle_batch(records)
            self.batches += 1
            await consumer.commit(
                {tp: OffsetAndMetadata(batch[-1].offset + 1, "") for tp, batch in polled.items()}
            )

    async def stop(self) -> None:
        """Finish the batch in hand, leave the group."""
        await cancel_and_wait(self._task)
        self._task = None
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            await consumer.stop()


class IngestAgent:
    """Runs the faust app of the ingestion agent as a resource of the HTTP app.

    Start-up does not wait for the broker: the app connects in the background and
    retries until the broker answers, as the other consumers of the bus do.

    Args:
        settings: Batch size and wait, consumer group, broker.
        ingestion: What each batch is handed to.
    """

    def __init__(self, *, settings: FeaturesSettings, ingestion: Ingestion) -> None:
        self.settings = settings
        self.ingestion = ingestion
        self.app: faust.App | None = None
        self._task: asyncio.Task[None] | None = None
        self.started = asyncio.Event()
        self.batches = 0

    def _build(self) -> faust.App:
        settings = self.settings
        app = faust_app(
            settings.ingest_group,
            bootstrap_servers=settings.kafka_bootstrap_servers,
            data_dir=settings.data_dir / "faust",
            # One batch in hand is plenty; more only delays the commit.
            stream_buffer_maxsize=max(4096, settings.ingest_batch_size * 2),
            broker_max_poll_records=max(500, settings.ingest_batch_size),
            broker_session_timeout=settings.ingest_session_timeout,
            broker_heartbeat_interval=min(3.0, settings.ingest_session_timeout / 3),
        )
        topic = app.topic(INGEST_TOPIC)
        ingestion = self.ingestion

        @app.agent(topic, name="ingest")
        async def ingest(stream: Any) -> None:
            async for events in stream.take_events(
                settings.ingest_batch_size, within=settings.ingest_batch_seconds
            ):
                await ingestion.handle_batch([from_faust(event.message) for event in events])
                self.batches += 1

        return app

    async def start(self) -> None:
        """Connect and join the group in the background."""
        if self._task is None:
            self._task = asyncio.create_task(self._main(), name="features-ingest")

    async def _main(self) -> None:
        await _ensure_ingest_topics(self.settings.kafka_bootstrap_servers)
        self.app = self._build()
        await self.app.start()
        self.started.set()

    async def wait_started(self, timeout: float = 60.0) -> None:
        """Wait until the agent has joined its group (tests, benchmarks)."""
        await asyncio.wait_for(self.started.wait(), timeout)

    async def stop(self) -> None:
        """Leave the group and stop the app."""
        await cancel_and_wait(self._task)
        self._task = None
        app, self.app = self.app, None
        if app is not None:
            await app.stop()
