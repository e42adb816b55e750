"""The Kafka entrypoint: a faust-streaming agent on ``features.ingest``.

Feast does not consume Kafka itself; this agent does. It takes the topic's records
in batches (``ingest_batch_size`` rows, or what arrived within
``ingest_batch_seconds``) and hands each batch to :class:`~driftloop_features.handlers.Ingestion`.
faust commits an offset once the agent has moved past the batch, so delivery is at
least once; pushing a row twice writes the same value again.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import faust

from driftloop_bus.streams import faust_app, from_faust
from driftloop_bus.tasks import cancel_and_wait
from driftloop_bus.topics import ensure_topics
from driftloop_events.topics import TOPICS, dlq_spec
from driftloop_features.handlers import Ingestion
from driftloop_features.settings import FeaturesSettings

__all__ = ["INGEST_TOPIC", "IngestAgent"]

log = logging.getLogger(__name__)

INGEST_TOPIC = "features.ingest"


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
        backoff = 0.2
        specs = [TOPICS[INGEST_TOPIC], dlq_spec(INGEST_TOPIC)]
        while True:
            try:
                await ensure_topics(self.settings.kafka_bootstrap_servers, specs)
                break
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.warning(
                    "ingestion agent could not reach the broker; retrying",
                    extra={"error": f"{type(error).__name__}: {error}"},
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
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
