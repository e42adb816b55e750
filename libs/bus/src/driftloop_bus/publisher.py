"""Publishing CloudEvents to Kafka with aiokafka.

The producer batches (``linger_ms``, ``max_batch_size``) and waits for every
in-sync replica (``acks="all"``). aiokafka keeps one batch in flight per
partition, so the events of one key arrive in the order they were sent.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.structs import RecordMetadata
from prometheus_client import Counter

from driftloop_bus.topics import ensure_topics
from driftloop_events.envelope import PROTOBUF, CloudEvent, KafkaRecord, to_record
from driftloop_events.topics import TopicSpec

log = logging.getLogger(__name__)

EVENTS_PUBLISHED = Counter(
    "driftloop_events_published_total", "Events handed to the Kafka producer.", ["topic"]
)


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
        }
        self._producer: AIOKafkaProducer | None = None
        self._start_lock = asyncio.Lock()

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
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()

    async def publish(
        self, event: CloudEvent[Any], *, content_type: str | None = None, topic: str | None = None
    ) -> asyncio.Future[RecordMetadata]:
        """Queue ``event`` for sending; the returned future resolves on acknowledgement."""
        record = to_record(event, content_type=content_type or self.content_type, topic=topic)
        return await self.send_record(record)

    async def publish_and_wait(
        self, event: CloudEvent[Any], *, content_type: str | None = None, topic: str | None = None
    ) -> RecordMetadata:
        """Send ``event`` and wait until the broker acknowledged it."""
        return await (await self.publish(event, content_type=content_type, topic=topic))

    async def send_record(self, record: KafkaRecord) -> asyncio.Future[RecordMetadata]:
        """Queue an already-encoded record (the outbox relay and the DLQ use this)."""
        producer = self._producer
        if producer is None:
            raise RuntimeError("Publisher.start() has not been called")
        future: asyncio.Future[RecordMetadata] = await producer.send(
            record.topic, record.value, key=record.key, headers=record.headers
        )
        EVENTS_PUBLISHED.labels(record.topic).inc()
        return future

    async def flush(self) -> None:
        """Wait until every queued record has been sent."""
        if self._producer is not None:
            await self._producer.flush()
