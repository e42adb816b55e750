"""A consumer-group runner: decode, dispatch to handlers, retry, dead-letter, commit.

Delivery is at least once. An offset is committed only after every handler of
the message has succeeded, or after the message has been stored in the
dead-letter topic; a process that dies in between sees the message again, and
handlers stay idempotent with the :mod:`~driftloop_bus.inbox`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.structs import ConsumerRecord, OffsetAndMetadata
from google.protobuf.message import Message
from prometheus_client import Counter, Gauge, Histogram

from driftloop_bus.deadletter import DeadLetters, Delivered
from driftloop_bus.publisher import Publisher
from driftloop_bus.security import client_options
from driftloop_bus.tasks import cancel_and_wait
from driftloop_bus.topics import ensure_topics
from driftloop_events.catalog import spec_for
from driftloop_events.envelope import CloudEvent, EnvelopeError, from_record
from driftloop_events.topics import TOPICS, TopicSpec, dlq_spec
from driftloop_kit.errors import InvalidInput
from driftloop_kit.retry import HANDLER, RECONNECT, Backoff, GaveUp, is_outage, logged
from driftloop_kit.tracing import consuming

log = logging.getLogger(__name__)

Handler = Callable[[CloudEvent[Any]], Awaitable[None]]
"""Handles one event; raises to ask for a retry."""

EventKey = str | type[Message]
"""A ce_type (``"driftloop.registry.alias.set"``) or the protobuf class of the event."""

D = TypeVar("D")

BatchHandler = Callable[[list[CloudEvent[Any]]], Awaitable[list[int]]]
"""Handles the events of one batch at once, in order; returns the indices of those it
leaves to their one-by-one handlers (events it finds malformed, say). It raises only
before it has changed anything: every event then runs one by one."""

HandlerTable = Mapping[EventKey, Sequence[Callable[[D, CloudEvent[Any]], Awaitable[None]]]]
"""A service's ``HANDLERS``: event type -> functions of (dependencies, event).

Written once per service, in ``entrypoints/consumers.py``, as cosmicpython's
``EVENT_HANDLERS``; :func:`bind` gives the handlers their dependencies at bootstrap.
"""


def bind(table: HandlerTable[D], deps: D) -> dict[EventKey, list[Handler]]:
    """The dispatch table of ``table`` with ``deps`` as every handler's first argument."""
    return {key: [functools.partial(h, deps) for h in handlers] for key, handlers in table.items()}


EVENTS_HANDLED = Counter(
    "driftloop_events_handled_total",
    "Events consumed, by outcome (handled, ignored, dead_lettered).",
    ["group", "topic", "outcome"],
)
HANDLE_SECONDS = Histogram(
    "driftloop_event_handle_seconds", "Time spent in handlers per event.", ["group", "topic"]
)
CONSUMER_LAG = Gauge(
    "driftloop_consumer_lag",
    "Records on a partition not yet handled by this consumer group (high water - next offset).",
    ["group", "topic", "partition"],
)


def _dispatch_table(handlers: Mapping[EventKey, Sequence[Handler]]) -> dict[str, list[Handler]]:
    table: dict[str, list[Handler]] = {}
    for key, funcs in handlers.items():
        ce_type = key if isinstance(key, str) else spec_for(key).type
        spec_for(ce_type)  # an unknown type is a programming error: fail at start-up
        table.setdefault(ce_type, []).extend(funcs)
    return table


def delivered(record: ConsumerRecord[bytes, bytes]) -> Delivered:
    """The transport-neutral view of an aiokafka record."""
    return Delivered(
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        key=record.key,
        value=record.value,
        headers=list(record.headers),
    )


def _worth_retrying(error: BaseException) -> bool:
    return not isinstance(error, InvalidInput)


class Dispatcher:
    """Decodes messages and runs their handlers with retries, dead-lettering failures.

    Shared by :class:`ConsumerRunner` and faust-streaming agents, which call
    :meth:`handle` (or :meth:`decode`) for each message of their stream.

    Args:
        handlers: The explicit dispatch table ``{event type: [handler, ...]}``.
        dead_letters: Where messages go that cannot be handled.
        retry: Attempts and backoff for a handler that raises.
    """

    def __init__(
        self,
        *,
        handlers: Mapping[EventKey, Sequence[Handler]],
        dead_letters: DeadLetters,
        retry: Backoff = HANDLER,
    ) -> None:
        self.table = _dispatch_table(handlers)
        self.dead_letters = dead_letters
        self.group_id = dead_letters.group
        self.retry = retry
        self._children: dict[str, tuple[Any, Any]] = {}

    @property
    def topics(self) -> list[str]:
        """The topics that carry the handled event types."""
        return sorted({spec_for(t).topic for t in self.table})

    async def decode(self, message: Delivered) -> CloudEvent[Any] | None:
        """The event in ``message``, or None after dead-lettering an undecodable one."""
        try:
            return from_record(message.value, message.headers)
        except EnvelopeError as error:
            await self._dead_letter(message, error, attempts=0)
            return None

    async def handle(self, message: Delivered) -> None:
        """Decode ``message`` and run its handlers; dead-letter it when that fails."""
        event = await self.decode(message)
        if event is None:
            return
        handlers = self.table.get(event.type)
        if not handlers:
            EVENTS_HANDLED.labels(self.group_id, message.topic, "ignored").inc()
            return

        async def run_handlers() -> None:
            for handler in handlers:
                await handler(event)

        with (
            self._metrics(message.topic)[0].time(),
            consuming(
                event.type,
                event.traceparent,
                event.tracestate,
                topic=message.topic,
                event_id=event.id,
            ),
        ):
            try:
                await self.retry.call(
                    run_handlers,
                    # An event its handler finds wrong is wrong on the next try too.
                    retry_if=_worth_retrying,
                    on_retry=logged(
                        log, "handler failed; retrying", event_id=event.id, type=event.type
                    ),
                )
            except GaveUp as failure:
                error, attempts = failure.last, failure.attempts
                if is_outage(error):
                    # A database or a service away is no fault of the event: it waits
                    # (its partition with it) until they are back, never dead-lettered
                    # for it, as a consumer waits for its broker.
                    try:
                        await RECONNECT.call(
                            run_handlers,
                            retry_if=is_outage,
                            on_retry=logged(
                                log,
                                "a dependency of the handler is away; the event waits",
                                event_id=event.id,
                                type=event.type,
                            ),
                        )
                    except GaveUp as still:
                        error, attempts = still.last, attempts + still.attempts
                    else:
                        self._metrics(message.topic)[1].inc()
                        return
                await self._dead_letter(message, error, attempts=attempts)
            else:
                self._metrics(message.topic)[1].inc()

    async def handle_many(self, messages: Sequence[Delivered], batch: BatchHandler) -> None:
        """Decode ``messages`` (one topic's, in order) and hand their events to ``batch``
        at once: the per-record work (retry wrapping, a timer, a span) paid once per batch,
        for a service's busiest topic. Undecodable messages are dead-lettered as by
        :meth:`decode`; the events ``batch`` leaves, and every event when it raises, go
        through :meth:`handle` (its retries, dead letters and spans). The batch is timed
        as one observation of ``driftloop_event_handle_seconds``; events the batch
        handled carry their trace context on in what the handler keeps (no consumer span
        each)."""
        if not messages:
            return
        kept: list[Delivered] = []
        events: list[CloudEvent[Any]] = []
        for message in messages:
            event = await self.decode(message)
            if event is not None:
                kept.append(message)
                events.append(event)
        timer, handled = self._metrics(messages[0].topic)
        try:
            with timer.time():
                left = await batch(events)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.warning("batch handler failed; its events are handled one by one", exc_info=True)
            left = list(range(len(events)))
        handled.inc(len(events) - len(left))
        for index in left:
            await self.handle(kept[index])

    def _metrics(self, topic: str) -> tuple[Any, Any]:
        # The children of one topic, looked up once: .labels() on every message is
        # measurable at tens of thousands of messages per second.
        found = self._children.get(topic)
        if found is None:
            found = self._children[topic] = (
                HANDLE_SECONDS.labels(self.group_id, topic),
                EVENTS_HANDLED.labels(self.group_id, topic, "handled"),
            )
        return found

    async def _dead_letter(
        self, message: Delivered, error: BaseException, *, attempts: int
    ) -> None:
        await self.dead_letters.send(message, error=error, attempts=attempts)
        EVENTS_HANDLED.labels(self.group_id, message.topic, "dead_lettered").inc()


class ConsumerRunner:
    """Runs handlers for the events of a consumer group, one message at a time per batch.

    Args:
        bootstrap_servers: ``host:port[,host:port]``.
        group_id: The consumer group; replicas of a service share it.
        handlers: The explicit dispatch table ``{event type: [handler, ...]}``.
        publisher: Used for dead letters (usually the service's own publisher).
        topics: Topics to subscribe to; by default the topics of the handled event types.
        retry: Attempts and backoff for a handler that raises.
        auto_offset_reset: Where a new group starts: ``earliest`` so nothing is missed.
        max_poll_records: Most records handled between two commits.
        client_id: Shows up in broker logs; defaults to the group id.
        consumer_options: Any other ``AIOKafkaConsumer`` setting (e.g. ``session_timeout_ms``).
    """

    def __init__(
        self,
        *,
        bootstrap_servers: str,
        group_id: str,
        handlers: Mapping[EventKey, Sequence[Handler]],
        publisher: Publisher,
        topics: Sequence[str] | None = None,
        retry: Backoff = HANDLER,
        auto_offset_reset: str = "earliest",
        max_poll_records: int = 200,
        client_id: str | None = None,
        consumer_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.group_id = group_id
        self.dispatcher = Dispatcher(
            handlers=handlers, dead_letters=DeadLetters(publisher, group=group_id), retry=retry
        )
        self.publisher = publisher
        self.topics = list(topics) if topics else self.dispatcher.topics
        self._consumer_kwargs: dict[str, Any] = {
            "bootstrap_servers": bootstrap_servers,
            "group_id": group_id,
            "client_id": client_id or group_id,
            "enable_auto_commit": False,
            "auto_offset_reset": auto_offset_reset,
            "max_poll_records": max_poll_records,
            **client_options(),
            **(consumer_options or {}),
        }
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._pending: dict[TopicPartition, int] = {}
        # Next offset to handle per partition (for the lag), kept across commits.
        self._next: dict[TopicPartition, int] = {}
        self._assigned = asyncio.Event()
        # The end offsets of the first assignment, until this consumer has read up to them.
        self._catch_up_to: dict[TopicPartition, int] | None = None
        self._caught_up = asyncio.Event()

    @property
    def caught_up(self) -> bool:
        """Whether this consumer has handled every record its partitions held when it was
        first given them (a readiness check: a consumer of compacted state, as model
        documents, is not ready before it has read that state)."""
        return self._caught_up.is_set()

    # -- lifecycle -----------------------------------------------------------------

    async def start(self) -> None:
        """Start consuming in the background; connecting waits for the broker, not the caller."""
        if self._task is None:
            self._task = asyncio.create_task(self._main(), name=f"consumer:{self.group_id}")

    async def _connect(self) -> AIOKafkaConsumer:
        """Create missing topics (and their DLQs), connect the DLQ publisher, join the group."""
        specs = [TOPICS.get(name) or TopicSpec(name, 1, 7 * 86_400_000, "") for name in self.topics]
        await ensure_topics(self.bootstrap_servers, [*specs, *(dlq_spec(s.name) for s in specs)])
        await self.publisher.start()
        consumer = AIOKafkaConsumer(**self._consumer_kwargs)
        consumer.subscribe(self.topics, listener=_CommitOnRevoke(self))
        try:
            await consumer.start()
        except BaseException:
            await consumer.stop()
            raise
        return consumer

    async def _main(self) -> None:
        self._consumer = await RECONNECT.call(
            self._connect,
            on_retry=logged(log, "consumer could not connect; retrying", group=self.group_id),
        )
        await self._run()

    async def stop(self) -> None:
        """Finish the message in hand, commit, leave the group."""
        task, self._task = self._task, None
        await cancel_and_wait(task)
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            with contextlib.suppress(Exception):
                await self._commit(consumer)
            await consumer.stop()

    async def wait_assigned(self, timeout: float = 30.0) -> None:
        """Wait until the group has given this consumer its partitions (tests, start-up)."""
        await asyncio.wait_for(self._assigned.wait(), timeout)

    # -- the loop ------------------------------------------------------------------

    async def _run(self) -> None:
        consumer = self._consumer
        if consumer is None:
            raise RuntimeError("consumer is not connected")
        while True:
            batches = await consumer.getmany(timeout_ms=500)
            if consumer.assignment():
                self._assigned.set()
            for tp, records in batches.items():
                for record in records:
                    await self.dispatcher.handle(delivered(record))
                    self._pending[tp] = record.offset + 1
                    self._next[tp] = record.offset + 1
            self._report_lag(consumer)
            if self._pending:
                await self._commit(consumer)
            if not self._caught_up.is_set() and consumer.assignment():
                await self._check_caught_up(consumer)

    async def _check_caught_up(self, consumer: AIOKafkaConsumer) -> None:
        assignment = consumer.assignment()
        if self._catch_up_to is None:
            self._catch_up_to = await consumer.end_offsets(list(assignment))
        for tp, end in self._catch_up_to.items():
            if tp in assignment and await consumer.position(tp) < end:
                return
        self._caught_up.set()

    def _report_lag(self, consumer: AIOKafkaConsumer) -> None:
        """Set the lag of each assigned partition whose high water the last fetch told."""
        for tp in consumer.assignment():
            highwater = consumer.highwater(tp)
            position = self._next.get(tp)
            if highwater is None or position is None:
                continue
            CONSUMER_LAG.labels(self.group_id, tp.topic, str(tp.partition)).set(
                max(highwater - position, 0)
            )

    async def _commit(self, consumer: AIOKafkaConsumer) -> None:
        if not self._pending:
            return
        offsets = {tp: OffsetAndMetadata(offset, "") for tp, offset in self._pending.items()}
        self._pending = {}
        await consumer.commit(offsets)


class _CommitOnRevoke(ConsumerRebalanceListener):  # type: ignore[misc]
    """Commits what was handled before partitions move to another member."""

    def __init__(self, runner: ConsumerRunner) -> None:
        self.runner = runner

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        consumer = self.runner._consumer
        if consumer is not None and self.runner._pending:
            with contextlib.suppress(Exception):
                await self.runner._commit(consumer)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        if assigned:
            self.runner._assigned.set()
