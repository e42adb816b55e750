"""The stream processors: predictions, labels and alias moves into the monitor.

Two engines share the handlers, the dispatch table (decoding, retries, dead letters), the
label join and the clock that closes windows by time:

- ``faust`` (:class:`FaustMonitorStream`, the default): a faust-streaming app with one
  agent per topic. Single-row predictions wait for their label in a faust table keyed
  by request id; ``predictions`` and ``labels`` share that key and their partition count,
  so a label meets its prediction in the same partition, and the table is recovered from
  its changelog after a restart.
- ``bus`` (:class:`BusMonitorStream`): the bus's consumer group (aiokafka, batches), with
  a range assignment so a member gets the same partitions of ``predictions`` and
  ``labels``. Predictions wait for their label in memory: a restart forgets them. faust
  handles each record through several tasks and queues (about 10,000 records/s at most on
  one core of the benchmark machine, doing nothing with them); this engine is for more.

Both remove waiting predictions older than the label TTL as predictions flow.
"""

from __future__ import annotations

import abc
import asyncio
import collections
import contextlib
import json
import logging
import time
from pathlib import Path
from typing import Any

from aiokafka.coordinator.assignors.range import RangePartitionAssignor

from driftloop.monitor.v1 import events_pb2 as monitor_events
from driftloop.registry.v1 import events_pb2 as registry_events
from driftloop.serving.v1 import events_pb2 as serving_events
from driftloop_bus.consumer import ConsumerRunner, Dispatcher, Handler, RetryPolicy
from driftloop_bus.deadletter import DeadLetters
from driftloop_bus.publisher import Publisher
from driftloop_bus.streams import faust_app, from_faust
from driftloop_bus.tasks import cancel_and_wait
from driftloop_bus.topics import ensure_topics
from driftloop_events.envelope import CloudEvent
from driftloop_events.topics import TOPICS, dlq_spec
from driftloop_monitor.service_layer.monitor import Monitor

log = logging.getLogger(__name__)

#: Topics the monitor consumes.
CONSUMED = ("predictions", "labels", "registry.models")


class MonitorStream(abc.ABC):
    """What both engines share: handlers, label join, expiry, the window clock, lifecycle.

    Args:
        monitor: The use cases.
        publisher: Dead letters go through it.
        bootstrap_servers: The Kafka cluster.
        group: Consumer group (and faust app id).
        label_ttl: Seconds a prediction waits for its label.
        retry: Attempts before a failing record is dead-lettered.
    """

    def __init__(
        self,
        *,
        monitor: Monitor,
        publisher: Publisher,
        bootstrap_servers: str,
        group: str,
        label_ttl: float,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.monitor = monitor
        self.publisher = publisher
        self.bootstrap_servers = bootstrap_servers
        self.group = group
        self.label_ttl = label_ttl
        self.retry = retry or RetryPolicy(attempts=3, initial_backoff=0.05, max_backoff=1.0)
        self.handlers: dict[Any, list[Handler]] = {
            serving_events.PredictionLogged: [self._on_prediction],
            monitor_events.LabelRecorded: [self._on_label],
            registry_events.AliasSet: [monitor.on_alias_set],
        }
        self._expiry: collections.deque[tuple[float, bytes]] = collections.deque()
        self.started = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._ticker: asyncio.Task[None] | None = None

    # -- where predictions wait for their label ---------------------------------------

    @abc.abstractmethod
    def _waiting(self, key: bytes) -> list[dict[str, Any]]:
        """The predictions waiting under request id ``key``."""

    @abc.abstractmethod
    def _put_waiting(self, key: bytes, entries: list[dict[str, Any]]) -> None:
        """Store the predictions waiting under ``key``."""

    @abc.abstractmethod
    def _drop_waiting(self, key: bytes) -> None:
        """Forget the predictions waiting under ``key``."""

    # -- handlers ------------------------------------------------------------------

    async def _on_prediction(self, event: CloudEvent[serving_events.PredictionLogged]) -> None:
        await self.monitor.on_prediction(event)
        entry = Monitor.joinable(event)
        if entry is None:
            return
        key = event.data.request_id.encode()
        waiting = self._waiting(key)
        # A redelivered prediction must not wait twice.
        if not any(_same(w, entry) for w in waiting):
            # Expiry runs on the clock from when the prediction was seen, so replayed
            # predictions with old event times still wait for their labels.
            expires = time.time() + self.label_ttl
            self._put_waiting(key, [*waiting, {**entry, "expires": expires}])
            self._expiry.append((expires, key))
        self._expire()

    async def _on_label(self, event: CloudEvent[monitor_events.LabelRecorded]) -> None:
        key = event.data.request_id.encode()
        joined = await self.monitor.on_label(event, self._waiting(key))
        if joined:
            self._drop_waiting(key)

    def _expire(self, limit: int = 100) -> None:
        now = time.time()
        for _ in range(limit):
            if not self._expiry or self._expiry[0][0] > now:
                return
            _, key = self._expiry.popleft()
            waiting = self._waiting(key)
            if waiting and all(w.get("expires", 0.0) <= now for w in waiting):
                self._drop_waiting(key)

    # -- lifecycle -----------------------------------------------------------------

    async def start(self) -> None:
        """Start in the background: the app serves HTTP while the broker is away."""
        await self.monitor.start()
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="monitor-stream")
            self._ticker = asyncio.create_task(self._tick(), name="monitor-ticker")

    async def _run(self) -> None:
        backoff = 0.2
        specs = [TOPICS[t] for t in CONSUMED]
        while True:
            try:
                await ensure_topics(
                    self.bootstrap_servers, [*specs, *(dlq_spec(s.name) for s in specs)]
                )
                await self.publisher.start()
                break
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.warning("monitor stream cannot reach the broker; retrying: %s", error)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
        await self._consume()

    @abc.abstractmethod
    async def _consume(self) -> None:
        """Join the group, set :attr:`started`, and consume (until cancelled or stopped)."""

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            try:
                await self.monitor.tick()
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
    """The faust-streaming engine: agents per topic, a faust table for the label join.

    Args:
        data_dir: faust's local folder.
        faust_options: Any other faust setting (tests shorten session timeouts).
    """

    def __init__(self, *, data_dir: Path, **kwargs: Any) -> None:
        base = {k: kwargs.pop(k) for k in _BASE_ARGS if k in kwargs}
        super().__init__(**base)
        faust_options = kwargs
        self.data_dir = data_dir
        options: dict[str, Any] = {
            # Every single-row prediction writes the label table's changelog: batch those
            # writes instead of one produce request each.
            "producer_linger": 0.02,
            "producer_max_batch_size": 256 * 1024,
            # faust flushes that producer before each commit: commit by time, not every
            # 100 events, or the stream waits for acknowledgements most of the time.
            "broker_commit_every": 10_000,
            **faust_options,
        }
        self.app = faust_app(
            self.group, bootstrap_servers=self.bootstrap_servers, data_dir=data_dir, **options
        )
        self.pending = self.app.Table(
            "pending-labels", default=None, partitions=TOPICS["predictions"].partitions
        )
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

    def _waiting(self, key: bytes) -> list[dict[str, Any]]:
        # The app's serializers are raw bytes: the table holds JSON encoded here.
        stored = self.pending.get(key)
        return list(json.loads(stored)) if stored else []

    def _put_waiting(self, key: bytes, entries: list[dict[str, Any]]) -> None:
        self.pending[key] = json.dumps(entries).encode()

    def _drop_waiting(self, key: bytes) -> None:
        with contextlib.suppress(KeyError):
            del self.pending[key]

    async def _consume(self) -> None:
        await asyncio.to_thread(self.data_dir.mkdir, parents=True, exist_ok=True)
        await self.app.start()
        self.started.set()

    async def _stop_consuming(self) -> None:
        await self.app.stop()


class BusMonitorStream(MonitorStream):
    """The bus engine: one consumer group over the three topics, a range assignment.

    Args:
        consumer_options: Any other ``AIOKafkaConsumer`` setting.
    """

    def __init__(self, *, consumer_options: dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._pending: dict[bytes, list[dict[str, Any]]] = {}
        self.runner = ConsumerRunner(
            bootstrap_servers=self.bootstrap_servers,
            group_id=self.group,
            handlers=self.handlers,
            publisher=self.publisher,
            topics=list(CONSUMED),
            retry=self.retry,
            max_poll_records=1000,
            consumer_options={
                # The same partition numbers of predictions and labels to one member.
                "partition_assignment_strategy": (RangePartitionAssignor,),
                **(consumer_options or {}),
            },
        )

    def _waiting(self, key: bytes) -> list[dict[str, Any]]:
        return self._pending.get(key) or []

    def _put_waiting(self, key: bytes, entries: list[dict[str, Any]]) -> None:
        self._pending[key] = entries

    def _drop_waiting(self, key: bytes) -> None:
        self._pending.pop(key, None)

    async def _consume(self) -> None:
        await self.runner.start()
        await self.runner.wait_assigned(timeout=120)
        self.started.set()

    async def _stop_consuming(self) -> None:
        await self.runner.stop()


_BASE_ARGS = ("monitor", "publisher", "bootstrap_servers", "group", "label_ttl", "retry")


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return all(a[name] == b[name] for name in ("model", "version", "time"))
