"""The Kafka entrypoint: engines that read ``features.ingest`` in batches.

Feast does not consume Kafka itself; this does. Records are read in batches
(``ingest_batch_size`` rows, or what arrived within ``ingest_batch_seconds``); each
record goes through the bus ``Dispatcher`` with the service's ``HANDLERS``
(``entrypoints/consumers.py``), which collect its row, and each batch's rows are then
written by :class:`~driftloop_features.service_layer.ingestion.Ingestion`. Offsets are
committed after the batch is written (or its bad rows dead-lettered), so delivery is
at least once; writing a row twice writes the same value again.

Two engines do this, chosen by the shared ``stream_engine`` setting:

- :class:`BusIngest` (``bus``): the bus ``ConsumerRunner``, reading aiokafka
  ``getmany`` batches; the stores set the pace.
- :class:`FaustIngest` (``faust``): a faust-streaming agent (``stream.take_events``),
  for deployments that run their stream processing in faust; faust's per-event
  machinery makes it the slower of the two.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from typing import Any

import faust
from google.protobuf.message import DecodeError

from driftloop.features.v1 import events_pb2 as features
from driftloop_bus.consumer import ConsumerRunner, Dispatcher, bind, delivered
from driftloop_bus.deadletter import Delivered
from driftloop_bus.streams import faust_app, from_faust
from driftloop_bus.tasks import cancel_and_wait
from driftloop_bus.topics import ensure_topics
from driftloop_events.catalog import spec_for
from driftloop_events.envelope import protobuf_spec
from driftloop_events.topics import TOPICS, dlq_spec
from driftloop_features.entrypoints.consumers import FETCH_MAX_WAIT_MS, HANDLERS
from driftloop_features.service_layer.bootstrap import FeaturesContainer
from driftloop_features.service_layer.ingestion import (
    YIELD_EVERY,
    Ingestion,
    IngestReport,
    Received,
    RowBatch,
)
from driftloop_kit.retry import RECONNECT, logged

__all__ = ["INGEST_TOPIC", "BusIngest", "FaustIngest", "IngestBatches", "ingest_engine"]

log = logging.getLogger(__name__)

INGEST_TOPIC = "features.ingest"

_ROW_SPEC = spec_for(features.FeatureRow)
_ROW_FROM_BYTES = features.FeatureRow.FromString


class IngestBatches:
    """Decodes and dispatches the records of a batch, then has its rows ingested.

    The per-batch extension of the bus ``Dispatcher``. A protobuf ``FeatureRow`` whose
    CloudEvents headers the envelope accepts as they are
    (:func:`~driftloop_events.envelope.protobuf_spec`) skips the rest of the envelope
    and the handler table: its payload is parsed and its row kept, which is all that
    ``on_feature_row`` does (a ``CloudEvent`` per row cost more than the row's
    validation). Any other record is decoded by
    :meth:`Dispatcher.decode` (which dead-letters one that does not decode) and its
    event handed to the Dispatcher's handlers (``HANDLERS``, which only collect rows);
    events of other types are ignored. The retrying and dead-lettering that matter
    happen once per batch, in :class:`Ingestion`, around the writes. The Dispatcher's
    per-event :meth:`~Dispatcher.handle` (a retry and a timer around every event) is
    not used: at ingestion rates it cost more than decoding the row.

    Args:
        rows: Where ``HANDLERS`` collect the rows (their bound dependency).
        ingestion: Writes each batch's rows.
        dispatcher: Decodes, dead-letters, and holds ``HANDLERS`` bound to ``rows``.
    """

    def __init__(self, *, rows: RowBatch, ingestion: Ingestion, dispatcher: Dispatcher) -> None:
        self.rows = rows
        self.ingestion = ingestion
        self.dispatcher = dispatcher
        #: Batches ingested so far.
        self.count = 0

    @classmethod
    def of(
        cls, container: FeaturesContainer, dispatcher: Dispatcher | None = None
    ) -> IngestBatches:
        """The batches of the service; by default dispatched on the container's dead letters."""
        return cls(
            rows=container.rows,
            ingestion=container.ingestion,
            dispatcher=dispatcher
            or Dispatcher(
                handlers=bind(HANDLERS, container.rows), dead_letters=container.dead_letters
            ),
        )

    async def ingest(self, records: Iterable[Delivered]) -> IngestReport:
        """Dispatch ``records`` (their rows are collected) and write the rows collected."""
        return await self.write(await self.collect(records))

    async def write(self, received: list[Received]) -> IngestReport:
        """Write the rows of one batch (validated, pushed, dead-lettered, watermarked)."""
        report = await self.ingestion.ingest(received)
        self.count += 1
        return report

    async def collect(self, records: Iterable[Delivered]) -> list[Received]:
        """Decode ``records`` and dispatch their events; the rows collected."""
        rows, dispatcher, table = self.rows, self.dispatcher, self.dispatcher.table
        rows.take()  # rows of a batch cut short (stopped): uncommitted, so read again
        for index, record in enumerate(records):
            if index and not index % YIELD_EVERY:
                await asyncio.sleep(0)  # let online reads in between
            value = record.value
            if value is not None and protobuf_spec(record.headers) is _ROW_SPEC:
                # The envelope's checks passed: the payload alone is left to decode.
                try:
                    rows.add_row(record, _ROW_FROM_BYTES(value))
                    continue
                except DecodeError:
                    pass  # the Dispatcher dead-letters it, with why
            event = await dispatcher.decode(record)
            if event is None:
                continue  # dead-lettered by the Dispatcher
            rows.arrived(record)
            for handler in table.get(event.type, ()):  # another type on the topic: none
                await handler(event)
        return rows.take()


class BusIngest(ConsumerRunner):
    """The bus's consumer runner, reading and committing a batch at a time.

    ``ConsumerRunner`` connects (creating ``features.ingest`` and its DLQ, retrying
    until the broker answers), joins the group and commits on a rebalance; this
    subclass replaces its per-message loop with one that writes each polled batch
    before committing its offsets.

    Args:
        container: The service's dependencies.
    """

    def __init__(self, container: FeaturesContainer) -> None:
        settings = container.settings
        session_ms = int(settings.ingest_session_timeout * 1000)
        super().__init__(
            bootstrap_servers=settings.kafka_bootstrap_servers,
            group_id=settings.ingest_group,
            handlers=bind(HANDLERS, container.rows),
            publisher=container.bus.publisher,
            max_poll_records=settings.ingest_batch_size,
            consumer_options={
                "session_timeout_ms": session_ms,
                "heartbeat_interval_ms": min(3000, session_ms // 3),
                # As the label consumer: a backlog is not read in half-second pauses
                # while the broker holds the fetch of partitions already at their end.
                "fetch_max_wait_ms": FETCH_MAX_WAIT_MS,
            },
        )
        self.batch_size = settings.ingest_batch_size
        self.wait_ms = int(settings.ingest_batch_seconds * 1000)
        self.batches = IngestBatches.of(container, self.dispatcher)
        #: The batch being written, and the offsets to commit once it is.
        self._in_flight: tuple[asyncio.Task[IngestReport], dict[Any, int]] | None = None
        self._failed: Exception | None = None

    @property
    def started(self) -> asyncio.Event:
        """Set once the group has given this consumer its partitions."""
        return self._assigned

    async def wait_started(self, timeout: float = 60.0) -> None:
        """Wait until the consumer has its partitions (tests, benchmarks)."""
        await self.wait_assigned(timeout)

    async def _run(self) -> None:
        consumer = self._consumer
        if consumer is None:
            raise RuntimeError("consumer is not connected")
        try:
            while True:
                polled = await consumer.getmany(
                    timeout_ms=self.wait_ms, max_records=self.batch_size
                )
                if consumer.assignment():
                    self._assigned.set()
                if not polled:
                    await self._commit(consumer)  # the batch in flight, if any
                    continue
                # Batch N+1 is decoded while batch N is written (its store round trips
                # and SQLite's statements leave the loop free); N's offsets are
                # committed once it is written, before N+1 is written.
                received = await self.batches.collect(
                    delivered(record) for records in polled.values() for record in records
                )
                await self._commit(consumer)
                offsets = {tp: records[-1].offset + 1 for tp, records in polled.items()}
                self._in_flight = (asyncio.create_task(self.batches.write(received)), offsets)
        finally:
            # Stopped: the batch in flight is not committed, so it is read again.
            in_flight, self._in_flight = self._in_flight, None
            if in_flight is not None:
                in_flight[0].cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await in_flight[0]

    async def _commit(self, consumer: Any) -> None:
        """Wait for the batch in flight to be written, then commit what was written.

        Also called on a rebalance, before the partitions move: a batch is never
        committed before it is written, and one that failed stops the consumer (its
        offsets are not committed; the next member reads it again).
        """
        in_flight, self._in_flight = self._in_flight, None
        if in_flight is not None:
            task, offsets = in_flight
            try:
                await asyncio.shield(task)
            except asyncio.CancelledError:
                self._in_flight = in_flight  # stopping: _run's exit cancels it
                raise
            except Exception as error:
                self._failed = error
                raise
            self._pending.update(offsets)
        if self._failed is not None:
            raise self._failed
        await super()._commit(consumer)


class FaustIngest:
    """A faust-streaming agent reading ``features.ingest``, as a resource of the HTTP app.

    Start-up does not wait for the broker: the app connects in the background and
    retries until the broker answers, as the other consumers of the bus do.

    Args:
        container: The service's dependencies.
    """

    def __init__(self, container: FeaturesContainer) -> None:
        self.settings = container.settings
        self.batches = IngestBatches.of(container)
        self.app: faust.App | None = None
        self._task: asyncio.Task[None] | None = None
        self.started = asyncio.Event()

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
        batches = self.batches

        @app.agent(app.topic(INGEST_TOPIC), name="ingest")
        async def ingest(stream: Any) -> None:
            async for events in stream.take_events(
                settings.ingest_batch_size, within=settings.ingest_batch_seconds
            ):
                await batches.ingest(from_faust(event.message) for event in events)

        return app

    async def start(self) -> None:
        """Connect and join the group in the background."""
        if self._task is None:
            self._task = asyncio.create_task(self._main(), name="features-ingest")

    async def _main(self) -> None:
        specs = [TOPICS[INGEST_TOPIC], dlq_spec(INGEST_TOPIC)]
        await RECONNECT.call(
            lambda: ensure_topics(self.settings.kafka_bootstrap_servers, specs),
            on_retry=logged(log, "ingestion could not reach the broker; retrying"),
        )
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


def ingest_engine(container: FeaturesContainer) -> BusIngest | FaustIngest | None:
    """The engine ``stream_engine`` names, or None when ingestion is disabled."""
    settings = container.settings
    if not settings.ingest_enabled:
        return None
    return FaustIngest(container) if settings.stream_engine == "faust" else BusIngest(container)
