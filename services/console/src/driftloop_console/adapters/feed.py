"""The live feed: the event topics read as they arrive, read-only.

One aiokafka consumer per console process, with no consumer group (it commits
nothing, and takes every partition) starting at the latest offsets; the last events
are kept in memory for a page that (re)connects, and each connected page gets every
new one through its own bounded queue (a slow page loses events, never slows the
others).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Iterator, Sequence
from typing import Any

from driftloop_bus.security import client_options
from driftloop_console.domain.events import FeedEvent, feed_event
from driftloop_events.envelope import from_record

__all__ = ["FEED_TOPICS", "EventFeed"]

logger = logging.getLogger(__name__)

#: The topics of the loop's events; predictions, labels and raw feature rows are
#: data, not events, and far too many to show.
FEED_TOPICS = (
    "tracking.runs",
    "registry.models",
    "features.events",
    "trainer.jobs",
    "trainer.models",
    "monitor.alerts",
)

_QUEUE_SIZE = 100
_RETRY_SECONDS = 2.0
_ASSIGNMENT_POLLS = 300


class EventFeed:
    """Follows :data:`FEED_TOPICS` in the background (a resource of the app).

    Args:
        bootstrap_servers: The Kafka to read.
        buffer: Recent events kept.
        topics: The topics followed.
    """

    def __init__(
        self,
        bootstrap_servers: str,
        *,
        buffer: int = 200,
        topics: Sequence[str] = FEED_TOPICS,
    ) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.topics = list(topics)
        self.recent: deque[FeedEvent] = deque(maxlen=buffer)
        self._listeners: set[asyncio.Queue[FeedEvent]] = set()
        self._task: asyncio.Task[None] | None = None
        #: The consumer has its partitions and their latest offsets.
        self.assigned = asyncio.Event()
        self.error: str | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="console-event-feed")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def ready(self) -> bool:
        """A readiness check: the feed reads the topics (the pages work without it)."""
        return self.assigned.is_set()

    async def _run(self) -> None:
        from aiokafka import AIOKafkaConsumer
        from aiokafka.errors import KafkaError

        while True:
            consumer = AIOKafkaConsumer(
                *self.topics,
                bootstrap_servers=self.bootstrap_servers,
                group_id=None,
                auto_offset_reset="latest",
                enable_auto_commit=False,
                client_id="driftloop-console",
                **client_options(),
            )
            try:
                await consumer.start()
                await self._position_at_the_end(consumer)
                self.assigned.set()
                self.error = None
                async for record in consumer:
                    self.publish(self._decode(record))
            except asyncio.CancelledError:
                raise
            except (KafkaError, OSError) as error:
                self.assigned.clear()
                self.error = f"{type(error).__name__}: {error}"
                logger.warning("the event feed lost the broker (%s); retrying", self.error)
            finally:
                with contextlib.suppress(Exception):
                    await consumer.stop()
            await asyncio.sleep(_RETRY_SECONDS)

    @staticmethod
    async def _position_at_the_end(consumer: Any) -> None:
        """Every partition at its end, known: events published from now on are shown,
        none before (latest offsets, nothing replayed)."""
        for _ in range(_ASSIGNMENT_POLLS):
            if consumer.assignment():
                break
            await asyncio.sleep(0.1)
        partitions = list(consumer.assignment())
        if partitions:
            await consumer.seek_to_end(*partitions)
            for partition in partitions:  # resolves the end offsets now, not on the first fetch
                await consumer.position(partition)

    @staticmethod
    def _decode(record: Any) -> FeedEvent:
        try:
            return feed_event(from_record(record.value, record.headers), topic=record.topic)
        except Exception as error:  # an undecodable record is shown as such, never fatal
            headers = {k: (v or b"").decode(errors="replace") for k, v in record.headers}
            return FeedEvent(
                id=headers.get("ce_id", f"{record.topic}/{record.partition}/{record.offset}"),
                type=headers.get("ce_type", "undecodable"),
                source=headers.get("ce_source", ""),
                time="",
                subject=headers.get("ce_subject", ""),
                topic=record.topic,
                model="",
                summary=f"not decoded: {error}"[:240],
            )

    def publish(self, event: FeedEvent) -> None:
        """Keep ``event`` and hand it to every listener (dropped for a full one)."""
        self.recent.append(event)
        for queue in list(self._listeners):
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(event)

    @property
    def running(self) -> bool:
        """The feed was started (and not stopped)."""
        return self._task is not None

    @contextlib.contextmanager
    def subscribe(self) -> Iterator[asyncio.Queue[FeedEvent]]:
        """A queue that receives every event from now on, while the block lasts."""
        queue: asyncio.Queue[FeedEvent] = asyncio.Queue(maxsize=_QUEUE_SIZE)
        self._listeners.add(queue)
        try:
            yield queue
        finally:
            self._listeners.discard(queue)
