"""The stream engines: records of ``predictions``, ``labels``, ``registry.models`` and
``trainer.models`` into the monitor's :data:`~driftloop_monitor.entrypoints.consumers.HANDLERS`.

Both engines dispatch through the bus ``Dispatcher`` (decoding, retries, dead letters),
start the use cases' worker, and run the clock that closes windows by time; the
``stream_engine`` setting picks one:

- ``bus`` (:class:`BusMonitorStream`, the default): an aiokafka consumer group in
  batches, with a range assignment so a member gets the same partitions of
  ``predictions`` and ``labels``; open windows' rows and predictions waiting for their
  label are stored in the monitor's database per batch, before the batch's offsets
  commit, and loaded by the partition's next owner after a restart or a rebalance.
- ``faust`` (:class:`FaustMonitorStream`): a faust-streaming app with one agent per
  topic; predictions wait for their label in the app's faust table
  (:class:`~driftloop_monitor.adapters.waiting.TableWaiting`), recovered from its
  changelog after a restart, but open windows live in memory (a restart loses their
  rows). Kept for deployments that run their stream processing in faust; about a third
  of the durable engine's rate (``bench/README.md``).
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import functools
import logging
import time
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.structs import OffsetAndMetadata

from driftloop_bus.consumer import Dispatcher, bind, delivered
from driftloop_bus.deadletter import DeadLetters
from driftloop_bus.publisher import Publisher
from driftloop_bus.security import client_options
from driftloop_bus.streams import faust_app, from_faust
from driftloop_bus.tasks import cancel_and_wait
from driftloop_bus.topics import ensure_topics
from driftloop_events.topics import TOPICS, dlq_spec
from driftloop_kit.retry import HANDLER, RECONNECT, Backoff, logged
from driftloop_monitor.adapters.store import MonitorStore
from driftloop_monitor.adapters.waiting import TableWaiting
from driftloop_monitor.entrypoints.consumers import BATCHED, HANDLERS
from driftloop_monitor.service_layer.bootstrap import MonitorContainer
from driftloop_monitor.service_layer.journal import StateJournal
from driftloop_monitor.service_layer.monitor import Monitor

__all__ = ["BusMonitorStream", "FaustMonitorStream", "MonitorStream", "monitor_stream"]

log = logging.getLogger(__name__)

#: Attempts before a failing record is dead-lettered.
RECORD_RETRY = HANDLER.with_(initial=0.05, maximum=1.0)

#: Until the broker answers at start-up.
BROKER_RETRY = RECONNECT.with_(initial=0.2)

#: Topics the monitor consumes.
CONSUMED = ("predictions", "labels", "registry.models", "trainer.models")


class MonitorStream(abc.ABC):
    """What both engines share: the handlers, the window clock, the lifecycle.

    The clock closes windows by time every second, in its own task unless the engine
    ``ticks_itself`` between its batches.

    Args:
        monitor: The use cases (the handlers' dependency).
        publisher: Dead letters go through it.
        bootstrap_servers: The Kafka cluster.
        group: Consumer group (and faust app id).
        retry: Attempts before a failing record is dead-lettered.
    """

    ticks_itself = False

    def __init__(
        self,
        *,
        monitor: Monitor,
        publisher: Publisher,
        bootstrap_servers: str,
        group: str,
        retry: Backoff = RECORD_RETRY,
    ) -> None:
        self.monitor = monitor
        self.publisher = publisher
        self.bootstrap_servers = bootstrap_servers
        self.group = group
        self.retry = retry
        self.handlers = bind(HANDLERS, monitor)
        self.ticks_itself = type(self).ticks_itself
        self.started = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._ticker: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start in the background: the app serves HTTP while the broker is away."""
        await self.monitor.start()
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="monitor-stream")
            if not self.ticks_itself:
                self._ticker = asyncio.create_task(self._tick(), name="monitor-ticker")

    async def _run(self) -> None:
        specs = [TOPICS[t] for t in CONSUMED]

        async def connect() -> None:
            await ensure_topics(
                self.bootstrap_servers, [*specs, *(dlq_spec(s.name) for s in specs)]
            )
            await self.publisher.start()

        await BROKER_RETRY.call(
            connect, on_retry=logged(log, "monitor stream cannot reach the broker; retrying")
        )
        await self._consume()

    @abc.abstractmethod
    async def _consume(self) -> None:
        """Join the group, set :attr:`started`, and consume (until cancelled or stopped)."""

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            try:
                await self.monitor.windows.tick()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("closing windows by time failed")

    @abc.abstractmethod
    async def _stop_consuming(self) -> None:
        """Leave the group (after the background task is cancelled)."""

    async def stop(self) -> None:
        """Stop consuming; the worker finishes the windows already queued."""
        await cancel_and_wait(self._ticker)
        await cancel_and_wait(self._task)
        self._task = self._ticker = None
        with contextlib.suppress(Exception):
            await self._stop_consuming()
        self.started.clear()
        with contextlib.suppress(TimeoutError):
            await self.monitor.drain(timeout=30)
        await self.monitor.stop()

    async def ready(self) -> None:
        """Readiness: the consumer has joined its group."""
        if not self.started.is_set():
            raise RuntimeError("the stream processor has not joined its consumer group yet")

    async def wait_started(self, timeout: float = 60.0) -> None:
        """Wait until the consumer has its partitions (tests); raises if starting failed."""
        started = asyncio.ensure_future(self.started.wait())
        waiting: set[asyncio.Future[Any]] = {started}
        if self._task is not None:
            waiting.add(self._task)
        done, _ = await asyncio.wait(waiting, timeout=timeout, return_when="FIRST_COMPLETED")
        started.cancel()
        if self._task is not None and self._task in done:
            self._task.result()  # raises what went wrong
        if not self.started.is_set():
            raise TimeoutError(f"the stream processor did not start in {timeout}s")


class FaustMonitorStream(MonitorStream):
    """The faust-streaming engine: one agent per topic, the label join's table in its app.

    Args:
        waiting: The label join's storage; its table is created in this engine's app.
        data_dir: faust's local folder.
        faust_options: Any other faust setting (tests shorten session timeouts).
    """

    def __init__(
        self,
        *,
        waiting: TableWaiting,
        data_dir: Path,
        faust_options: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.data_dir = data_dir
        options: dict[str, Any] = {
            # Every single-row prediction writes the label table's changelog: batch those
            # writes instead of one produce request each.
            "producer_linger": 0.02,
            "producer_max_batch_size": 256 * 1024,
            # faust flushes that producer before each commit: commit by time, not every
            # 100 events, or the stream waits for acknowledgements most of the time.
            "broker_commit_every": 10_000,
            **(faust_options or {}),
        }
        self.app = faust_app(
            self.group, bootstrap_servers=self.bootstrap_servers, data_dir=data_dir, **options
        )
        waiting.attach(self.app)
        self.dispatcher = Dispatcher(
            handlers=self.handlers,
            dead_letters=DeadLetters(self.publisher, group=self.group),
            retry=self.retry,
        )
        for topic in CONSUMED:
            self._agent(topic)

    def _agent(self, topic: str) -> None:
        dispatcher = self.dispatcher

        async def consume(stream: Any) -> None:
            async for event in stream.events():
                await dispatcher.handle(from_faust(event.message))

        consume.__name__ = consume.__qualname__ = f"consume_{topic.replace('.', '_')}"
        self.app.agent(self.app.topic(topic), name=f"monitor-{topic}")(consume)

    async def _consume(self) -> None:
        await asyncio.to_thread(self.data_dir.mkdir, parents=True, exist_ok=True)
        await self.app.start()
        self.started.set()

    async def _stop_consuming(self) -> None:
        await self.app.stop()


class BusMonitorStream(MonitorStream):
    """The durable engine (the default): one consumer group over the four topics, batches.

    Each batch from ``getmany`` is handled record by record in memory; then the state it
    changed (rows of open windows, predictions waiting for their label, joins) and its next
    offsets are written in one transaction (:meth:`MonitorStore.store_batch`); then the
    offsets are committed to Kafka, and only then do the windows the batch closed go to the
    worker, whose decision deletes their rows. A replica killed at any point leaves a
    state and an offset that agree: the next owner of its partitions loads that state and
    consumes from that offset, so no row is counted twice and no window is lost; a window
    decided already is recognised by its id (derived from its first prediction) and not
    decided again.

    Records are keyed by model name (``predictions``, and ``labels`` that name their
    model) and a range assignment gives one member the same partitions of both topics:
    every window and label join of a model has one owner. On a rebalance the old owner
    stores its batch, lets the worker decide what is queued and commits (revoke); the new
    owner loads the partitions' state from the database (assign).

    Args:
        store: The monitor's tables (the stream state among them).
        journal: The use cases' notes of what a batch changed.
        consumer_options: Any other ``AIOKafkaConsumer`` setting.
    """

    ticks_itself = True

    def __init__(
        self,
        *,
        store: MonitorStore,
        journal: StateJournal,
        consumer_options: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.store = store
        self.journal = journal
        self.dispatcher = Dispatcher(
            handlers=self.handlers,
            dead_letters=DeadLetters(self.publisher, group=self.group),
            retry=self.retry,
        )
        #: Topics whose batches go to one handler at once (``BATCHED``), bound as ``bind``
        #: binds the one-by-one handlers.
        self.batched = {
            topic: functools.partial(handler, self.monitor) for topic, handler in BATCHED.items()
        }
        self.consumer_options: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap_servers,
            "group_id": self.group,
            "client_id": self.group,
            "enable_auto_commit": False,
            "auto_offset_reset": "earliest",
            "max_poll_records": 1000,
            # The same partition numbers of predictions and labels to one member.
            "partition_assignment_strategy": (RangePartitionAssignor,),
            **client_options(),
            **(consumer_options or {}),
        }
        self._consumer: AIOKafkaConsumer | None = None
        # Held while a batch is handled and stored, and by the rebalance callbacks.
        self._lock = asyncio.Lock()
        self._uncommitted: dict[TopicPartition, int] = {}
        self._next_tick = 0.0
        self._next_expiry = 0.0
        self.partitions: set[int] = set()
        #: Partitions started at a stored offset the log's end has not been compared with.
        self._unverified: dict[TopicPartition, int] = {}

    async def _consume(self) -> None:
        consumer = AIOKafkaConsumer(**self.consumer_options)
        consumer.subscribe(list(CONSUMED), listener=_Handover(self))
        self._consumer = consumer  # before the first assignment, which seeks with it
        try:
            await consumer.start()
        except BaseException:
            self._consumer = None
            await consumer.stop()
            raise
        while True:
            batches = await consumer.getmany(timeout_ms=500)
            if consumer.assignment():
                self.started.set()
            async with self._lock:
                if self._unverified:
                    await self._restart_recreated_logs(consumer)
                await self._handle(batches)
                await self._store_and_commit(consumer)
                await self._tick_if_due()

    async def _restart_recreated_logs(self, consumer: AIOKafkaConsumer) -> None:
        """Read a partition from its log's start when the offset stored for it is past the
        log's end: the topic was recreated (a broker that lost its log numbers records from
        0 again). Apache Kafka answers such a fetch "offset out of range" and the consumer's
        reset rule applies; a broker that answers it with no records (the embedded one)
        would have the monitor wait there until the new log caught up with the old one.
        The end is the high watermark of the first fetch after the assignment: the
        embedded broker's ListOffsets counts batches, not records."""
        for tp, stored in list(self._unverified.items()):
            end = consumer.highwater(tp)
            if end is None:
                continue  # not fetched yet
            del self._unverified[tp]
            if stored > end:
                log.warning(
                    "monitor's stored offset is past the log's end: reading from its start",
                    extra={"partition": f"{tp.topic}-{tp.partition}", "stored": stored, "end": end},
                )
                await consumer.seek_to_beginning(tp)

    async def _handle(self, batches: dict[TopicPartition, list[Any]]) -> None:
        # Predictions before labels: a label fetched with its prediction finds it waiting.
        for tp, records in sorted(batches.items(), key=lambda item: item[0].topic != "predictions"):
            batched = self.batched.get(tp.topic)
            if batched is not None and records:
                self.journal.partition = tp.partition
                await self.dispatcher.handle_many(
                    [delivered(record) for record in records], batched
                )
                self._uncommitted[tp] = records[-1].offset + 1
                continue
            for record in records:
                self.journal.partition = record.partition
                await self.dispatcher.handle(delivered(record))
                self._uncommitted[tp] = record.offset + 1

    async def _store_and_commit(self, consumer: AIOKafkaConsumer) -> None:
        """The batch's state and offsets in one transaction, then Kafka's commit, then its
        closed windows to the worker."""
        changes = self.journal.take()
        offsets = {(tp.topic, tp.partition): o for tp, o in self._uncommitted.items()}
        if changes or offsets:
            # The database away (a restart, a failover) holds the batch here, its state in
            # hand, until it is back: nothing after it is consumed, nothing is lost, and
            # what was stored of it is left as it is when it is written again.
            await RECONNECT.call(
                lambda: self.store.store_batch(
                    windows=list(changes.windows.values()),
                    pending=changes.pending,
                    joined=changes.joined,
                    group=self.group,
                    offsets=offsets,
                ),
                on_retry=logged(log, "monitor cannot store a consumed batch; retrying"),
            )
        if self._uncommitted:
            commit = {tp: OffsetAndMetadata(o, "") for tp, o in self._uncommitted.items()}
            self._uncommitted = {}
            with contextlib.suppress(Exception):  # the stored offsets are the ones that count
                await consumer.commit(commit)
        await self.journal.release()

    async def _tick_if_due(self) -> None:
        now = time.monotonic()
        try:
            if now >= self._next_tick:
                self._next_tick = now + 1.0
                await self.monitor.windows.tick()
                await self.journal.release()
            if now >= self._next_expiry:
                self._next_expiry = now + 60.0
                await self.store.expire_pending(time.time())
        except Exception:  # the next tick tries again; consuming goes on
            log.exception("closing windows by time or expiring waiting predictions failed")

    async def revoked(self) -> None:
        """Partitions leave: store what was handled, decide what is queued, forget."""
        async with self._lock:
            if self._consumer is not None:
                await self._store_and_commit(self._consumer)
            with contextlib.suppress(TimeoutError):
                await self.monitor.drain(timeout=60)
            self.monitor.reset()
            self.partitions = set()
            self._unverified = {}

    async def assigned(self, assigned: list[TopicPartition]) -> None:
        """Partitions arrive: load their state, start at their stored offsets."""
        async with self._lock:
            self.monitor.reset()
            partitions = {tp.partition for tp in assigned if tp.topic == "predictions"}
            chunks, pending, offsets = await self.store.stream_state(
                group=self.group, partitions=sorted(partitions)
            )
            await self.monitor.restore(chunks=chunks, pending=pending)
            self.partitions = partitions
            consumer = self._consumer
            self._unverified = {}
            for tp in assigned:
                stored = offsets.get((tp.topic, tp.partition))
                if consumer is not None and stored is not None:
                    consumer.seek(tp, stored)
                    self._unverified[tp] = stored
            log.info(
                "monitor partitions assigned",
                extra={
                    "partitions": sorted(self.partitions),
                    "rows": sum(len(c.rows) for c in chunks),
                },
            )

    async def _stop_consuming(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is None:
            return
        # The task was cancelled, maybe inside a batch: that batch is consumed again.
        self.journal.discard()
        self._uncommitted = {}
        with contextlib.suppress(TimeoutError):
            await self.monitor.drain(timeout=30)
        await consumer.stop()


class _Handover(ConsumerRebalanceListener):  # type: ignore[misc]
    """Hands windows and label joins over when partitions move between replicas."""

    def __init__(self, stream: BusMonitorStream) -> None:
        self.stream = stream

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        try:
            await self.stream.revoked()
        except Exception:
            log.exception("storing the monitor's state on a rebalance failed")

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        await self.stream.assigned(assigned)


def monitor_stream(container: MonitorContainer, **options: Any) -> MonitorStream:
    """The engine ``stream_engine`` names, over the container's use cases.

    Args:
        container: The service's dependencies.
        options: faust settings (``faust``) or aiokafka consumer settings (``bus``).
    """
    settings = container.settings
    common: dict[str, Any] = {
        "monitor": container.monitor,
        "publisher": container.bus.publisher,
        "bootstrap_servers": settings.kafka_bootstrap_servers,
        "group": settings.consumer_group,
    }
    if isinstance(container.waiting, TableWaiting):
        return FaustMonitorStream(
            **common,
            waiting=container.waiting,
            data_dir=settings.data_dir / "faust",
            faust_options=options,
        )
    if container.monitor.journal is None:
        raise RuntimeError("the durable engine needs the use cases wired with a journal")
    return BusMonitorStream(
        **common,
        store=container.store,
        journal=container.monitor.journal,
        consumer_options=options or None,
    )
