"""The faust-streaming app: predictions, labels and alias moves into the monitor.

Three agents share one :class:`~driftloop_bus.consumer.Dispatcher` (decoding, retries,
dead letters). Single-row predictions wait for their label in a faust table keyed by
request id; ``predictions`` and ``labels`` share that key and their partition count, so a
label meets its prediction in the same partition, and the table is recovered from its
changelog after a restart. Entries older than the label TTL are removed as predictions
flow (faust only lets an agent write to a table).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import time
from pathlib import Path
from typing import Any

from driftloop.monitor.v1 import events_pb2 as monitor_events
from driftloop.registry.v1 import events_pb2 as registry_events
from driftloop.serving.v1 import events_pb2 as serving_events
from driftloop_bus.consumer import Dispatcher, RetryPolicy
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


class MonitorStream:
    """Runs the faust app in the service's event loop, as a resource of the HTTP app.

    Args:
        monitor: The use cases.
        publisher: Dead letters go through it.
        bootstrap_servers: The Kafka cluster.
        group: Consumer group and faust app id.
        data_dir: faust's local folder.
        label_ttl: Seconds a prediction waits for its label.
        faust_options: Any other faust setting (tests shorten session timeouts).
    """

    def __init__(
        self,
        *,
        monitor: Monitor,
        publisher: Publisher,
        bootstrap_servers: str,
        group: str,
        data_dir: Path,
        label_ttl: float,
        retry: RetryPolicy | None = None,
        **faust_options: Any,
    ) -> None:
        self.monitor = monitor
        self.publisher = publisher
        self.bootstrap_servers = bootstrap_servers
        self.label_ttl = label_ttl
        self.data_dir = data_dir
        self.app = faust_app(
            group, bootstrap_servers=bootstrap_servers, data_dir=data_dir, **faust_options
        )
        partitions = TOPICS["predictions"].partitions
        self.pending = self.app.Table(
            "pending-labels",
            default=None,
            partitions=partitions,
        )
        self._expiry: collections.deque[tuple[float, bytes]] = collections.deque()
        self.dispatcher = Dispatcher(
            handlers={
                serving_events.PredictionLogged: [self._on_prediction],
                monitor_events.LabelRecorded: [self._on_label],
                registry_events.AliasSet: [monitor.on_alias_set],
            },
            dead_letters=DeadLetters(publisher, group=group),
            retry=retry or RetryPolicy(attempts=3, initial_backoff=0.05, max_backoff=1.0),
        )
        self.started = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._ticker: asyncio.Task[None] | None = None
        for topic in CONSUMED:
            self._agent(topic)

    def _agent(self, topic: str) -> None:
        dispatcher = self.dispatcher

        async def consume(stream: Any) -> None:
            async for event in stream.events():
                await dispatcher.handle(from_faust(event.message))

        consume.__name__ = consume.__qualname__ = f"consume_{topic.replace('.', '_')}"
        self.app.agent(self.app.topic(topic), name=f"monitor-{topic}")(consume)

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
            self.pending[key] = json.dumps([*waiting, entry]).encode()
            self._expiry.append((time.time() + self.label_ttl, key))
        self._expire()

    async def _on_label(self, event: CloudEvent[monitor_events.LabelRecorded]) -> None:
        key = event.data.request_id.encode()
        waiting = self._waiting(key)
        joined = await self.monitor.on_label(event, waiting)
        if joined:
            del self.pending[key]

    def _waiting(self, key: bytes) -> list[dict[str, Any]]:
        # The app's serializers are raw bytes: the table holds JSON it encodes itself.
        stored = self.pending.get(key)
        return list(json.loads(stored)) if stored else []

    def _expire(self, limit: int = 100) -> None:
        now = time.time()
        for _ in range(limit):
            if not self._expiry or self._expiry[0][0] > now:
                return
            _, key = self._expiry.popleft()
            waiting = self._waiting(key)
            if waiting and all(w["time"] + self.label_ttl <= now for w in waiting):
                del self.pending[key]

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
        await asyncio.to_thread(self.data_dir.mkdir, parents=True, exist_ok=True)
        await self.app.start()
        self.started.set()

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            try:
                await self.monitor.tick()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("closing windows by time failed")

    async def stop(self) -> None:
        """Stop consuming; the worker finishes the windows already queued."""
        await cancel_and_wait(self._ticker)
        await cancel_and_wait(self._task)
        self._task = self._ticker = None
        if self.started.is_set():
            with contextlib.suppress(Exception):
                await self.app.stop()
        self.started.clear()
        with contextlib.suppress(TimeoutError):
            await self.monitor.drain(timeout=30)
        await self.monitor.stop()

    async def ready(self) -> None:
        """Readiness: the faust app has joined its group."""
        if not self.started.is_set():
            raise RuntimeError("the stream processor has not joined its consumer group yet")

    async def wait_started(self, timeout: float = 60.0) -> None:
        """Wait until the app has its partitions (tests); raises if starting failed."""
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


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return bool(
        a["model"] == b["model"] and a["version"] == b["version"] and a["time"] == b["time"]
    )
