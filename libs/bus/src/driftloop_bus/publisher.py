"""Publishing CloudEvents to Kafka with aiokafka.

Records are appended straight into one aiokafka ``BatchBuilder`` per partition and
each batch is handed to the producer when it is full or ``linger_ms`` after its
first record: that skips the per-message coroutine of ``AIOKafkaProducer.send``,
which costs as much as encoding the event. Partitions are chosen with aiokafka's
default (Java-compatible murmur2) partitioner, so a key lands where any Kafka
client would put it. Batches of one partition are handed over in order and
aiokafka keeps one batch in flight per partition, so the events of one key
arrive in the order they were published. Every batch waits for all in-sync
replicas (``acks="all"``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.producer.message_accumulator import BatchBuilder
from aiokafka.structs import RecordMetadata, TopicPartition
from prometheus_client import Counter

from driftloop_bus.security import client_options
from driftloop_bus.topics import ensure_topics
from driftloop_events.envelope import PROTOBUF, CloudEvent, KafkaRecord, to_record
from driftloop_events.topics import TopicSpec

_PARTITIONER = DefaultPartitioner()
log = logging.getLogger(__name__)

EVENTS_PUBLISHED = Counter(
    "driftloop_events_published_total", "Events acknowledged by the broker.", ["topic"]
)


#: Sealed batches waiting for the broker before ``send_record`` makes its caller wait.
_MAX_BATCHES_IN_FLIGHT = 64


class Publisher:
    """Publishes :class:`CloudEvent` s (or ready-made records) to Kafka.

    Args:
        bootstrap_servers: ``host:port[,host:port]``.
        client_id: Shows up in broker logs and metrics.
        topics: Topics created at start-up when missing.
        content_type: Default wire format, ``application/protobuf`` or ``application/json``.
        linger_ms: How long the producer waits to fill a batch.
        enable_idempotence: Exactly-once per partition on Apache Kafka; the embedded
            broker does not support it, so it is off by default.
        request_timeout_ms: How long a send may wait for the broker.
    """

    def __init__(
        self,
        bootstrap_servers: str,
        *,
        client_id: str = "driftloop",
        topics: Iterable[TopicSpec] = (),
        content_type: str = PROTOBUF,
        linger_ms: int = 5,
        max_batch_size: int = 256 * 1024,
        enable_idempotence: bool = False,
        request_timeout_ms: int = 15_000,
    ) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.content_type = content_type
        self._topics = list(topics)
        self._producer_kwargs: dict[str, Any] = {
            "bootstrap_servers": bootstrap_servers,
            "client_id": client_id,
            "acks": "all",
            "linger_ms": linger_ms,
            "max_batch_size": max_batch_size,
            "enable_idempotence": enable_idempotence,
            "request_timeout_ms": request_timeout_ms,
            **client_options(),
        }
        self._producer: AIOKafkaProducer | None = None
        self._start_lock = asyncio.Lock()
        self._published: dict[str, Any] = {}  # counter child per topic: .labels() is slow
        self._linger = linger_ms / 1000
        self._buffers: dict[tuple[str, int], _Buffer] = {}
        self._partitions: dict[str, list[int]] = {}
        self._partition_of: dict[tuple[str, bytes], int] = {}
        self._sending: set[asyncio.Task[None]] = set()
        self._send_locks: dict[tuple[str, int], asyncio.Lock] = {}

    @property
    def started(self) -> bool:
        """Whether :meth:`start` succeeded and :meth:`stop` has not run since."""
        return self._producer is not None

    async def start(self) -> None:
        """Connect, creating the declared topics first. Raises if the broker is absent.

        Safe to call from several tasks at once (the relay and a consumer's
        dead-letter path share one publisher); only the first connects.
        """
        async with self._start_lock:
            if self._producer is not None:
                return
            if self._topics:
                await ensure_topics(self.bootstrap_servers, self._topics)
            producer = AIOKafkaProducer(**self._producer_kwargs)
            try:
                await producer.start()
            except BaseException:
                await producer.stop()
                raise
            self._producer = producer

    async def stop(self) -> None:
        """Flush what is pending and disconnect."""
        if self._producer is not None:
            with contextlib.suppress(Exception):
                await self.flush()
        producer, self._producer = self._producer, None
        self._partitions.clear()
        self._partition_of.clear()
        if producer is not None:
            await producer.stop()

    async def publish(
        self, event: CloudEvent[Any], *, content_type: str | None = None, topic: str | None = None
    ) -> asyncio.Future[RecordMetadata]:
        """Queue ``event`` for sending; the returned future resolves on acknowledgement."""
        record = to_record(event, content_type=content_type or self.content_type, topic=topic)
        return self._append(*record) or await self._enqueue(*record)

    async def publish_and_wait(
        self, event: CloudEvent[Any], *, content_type: str | None = None, topic: str | None = None
    ) -> RecordMetadata:
        """Send ``event`` and wait until the broker acknowledged it."""
        return await (await self.publish(event, content_type=content_type, topic=topic))

    async def send_record(self, record: KafkaRecord) -> asyncio.Future[RecordMetadata]:
        """Queue an already-encoded record (the outbox relay and the DLQ use this)."""
        return self._append(*record) or await self._enqueue(*record)

    def _append(
        self, topic: str, key: bytes, value: bytes, headers: list[tuple[str, bytes]]
    ) -> asyncio.Future[RecordMetadata] | None:
        """The common case without a coroutine: the partition is known and its batch has room.

        Returns None when :meth:`_enqueue` must do it (first record of a key or of a
        batch, a full batch, backpressure, not started).
        """
        partition = self._partition_of.get((topic, key))
        if partition is None or len(self._sending) >= _MAX_BATCHES_IN_FLIGHT:
            return None
        buffer = self._buffers.get((topic, partition))
        if (
            buffer is None
            or buffer.builder.append(timestamp=None, key=key, value=value, headers=headers) is None
        ):
            return None
        waiter: asyncio.Future[RecordMetadata] = buffer.loop.create_future()
        buffer.waiters.append(waiter)
        return waiter

    async def _enqueue(
        self, topic: str, key: bytes, value: bytes, headers: list[tuple[str, bytes]]
    ) -> asyncio.Future[RecordMetadata]:
        producer = self._producer
        if producer is None:
            raise RuntimeError("Publisher.start() has not been called")
        while len(self._sending) >= _MAX_BATCHES_IN_FLIGHT:
            # Backpressure: a producer faster than the broker waits here, not in memory.
            await asyncio.wait(self._sending, return_when=asyncio.FIRST_COMPLETED)
        partition = self._partition_of.get((topic, key))
        if partition is None:
            partition = await self._partition(producer, topic, key)
        slot = (topic, partition)
        buffer = self._buffers.get(slot)
        if buffer is None:
            buffer = self._buffers[slot] = self._new_buffer(producer, slot)
        elif (
            buffer.builder.append(timestamp=None, key=key, value=value, headers=headers) is not None
        ):
            return buffer.add_waiter()
        else:  # full: hand it over, start the next one
            self._seal(slot)
            buffer = self._buffers[slot] = self._new_buffer(producer, slot)
        if buffer.builder.append(timestamp=None, key=key, value=value, headers=headers) is None:
            raise ValueError(
                f"record of {len(value)} bytes does not fit in a batch (max_batch_size)"
            )
        return buffer.add_waiter()

    async def flush(self) -> None:
        """Hand over every open batch and wait until all were acknowledged (or failed)."""
        for slot in list(self._buffers):
            self._seal(slot)
        if self._sending:
            await asyncio.gather(*self._sending, return_exceptions=True)

    # -- batching ---------------------------------------------------------------------

    async def _partition(self, producer: AIOKafkaProducer, topic: str, key: bytes) -> int:
        partitions = self._partitions.get(topic)
        if partitions is None:
            partitions = sorted(await producer.partitions_for(topic))
            self._partitions[topic] = partitions
        # The partitioner AIOKafkaProducer.send uses by default (murmur2, like the Java
        # client), through aiokafka's public class rather than the producer's attribute.
        partition: int = _PARTITIONER(key, partitions, partitions)
        if len(self._partition_of) > 100_000:  # keys like model names repeat; request ids do not
            self._partition_of.clear()
        self._partition_of[(topic, key)] = partition
        return partition

    def _new_buffer(self, producer: AIOKafkaProducer, slot: tuple[str, int]) -> _Buffer:
        buffer = _Buffer(producer.create_batch())
        buffer.timer = buffer.loop.call_later(self._linger, self._seal, slot)
        return buffer

    def _seal(self, slot: tuple[str, int]) -> None:
        buffer = self._buffers.pop(slot, None)
        if buffer is None:
            return
        if buffer.timer is not None:
            buffer.timer.cancel()
        task = asyncio.create_task(self._send(slot, buffer))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send(self, slot: tuple[str, int], buffer: _Buffer) -> None:
        topic, partition = slot
        producer = self._producer
        try:
            if producer is None:
                raise RuntimeError("publisher stopped before the batch was sent")
            # Tasks start in the order batches were sealed and the lock is FIFO, so the
            # batches of a partition reach the producer in order.
            lock = self._send_locks.setdefault(slot, asyncio.Lock())
            async with lock:
                delivery = await producer.send_batch(buffer.builder, topic, partition=partition)
            metadata = await delivery
        except BaseException as error:
            for waiter in buffer.waiters:
                if not waiter.done():
                    waiter.set_exception(error)
            if not isinstance(error, Exception):
                raise
            return
        counter = self._published.get(topic)
        if counter is None:
            counter = self._published[topic] = EVENTS_PUBLISHED.labels(topic)
        counter.inc(len(buffer.waiters))
        tp = TopicPartition(topic, partition)
        for index, waiter in enumerate(buffer.waiters):
            if not waiter.done():
                waiter.set_result(
                    RecordMetadata(
                        topic=topic,
                        partition=partition,
                        topic_partition=tp,
                        offset=metadata.offset + index,
                        timestamp=metadata.timestamp,
                        timestamp_type=metadata.timestamp_type,
                        log_start_offset=metadata.log_start_offset,
                    )
                )


class _Buffer:
    """An open batch for one partition and the futures of the records in it."""

    __slots__ = ("builder", "loop", "timer", "waiters")

    def __init__(self, builder: BatchBuilder) -> None:
        self.builder = builder
        self.loop = asyncio.get_running_loop()
        self.waiters: list[asyncio.Future[RecordMetadata]] = []
        self.timer: asyncio.TimerHandle | None = None

    def add_waiter(self) -> asyncio.Future[RecordMetadata]:
        waiter: asyncio.Future[RecordMetadata] = self.loop.create_future()
        self.waiters.append(waiter)
        return waiter
