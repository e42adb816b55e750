"""The stream engines: records of ``predictions``, ``labels``, ``registry.models`` and
``trainer.models`` into the monitor's :data:`~driftloop_monitor.entrypoints.consumers.HANDLERS`.

Both engines dispatch through the bus ``Dispatcher`` (decoding, retries, dead letters),
start the use cases' worker, and run the clock that closes windows by time; the
``stream_engine`` setting picks one:

- ``faust`` (:class:`FaustMonitorStream`, the default): a faust-streaming app with one
  agent per topic; predictions wait for their label in the app's faust table
  (:class:`~driftloop_monitor.adapters.waiting.TableWaiting`), recovered from its
  changelog after a restart.
- ``bus`` (:class:`BusMonitorStream`): the bus's consumer group (aiokafka, batches), with
  a range assignment so a member gets the same partitions of ``predictions`` and
  ``labels``; predictions wait for their label in memory. faust handles each record
  through several tasks and queues; this engine is for more events per second (figures
  in ``bench/README.md``).
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
from pathlib import Path
from typing import Any

from aiokafka.coordinator.assignors.range import RangePartitionAssignor

from driftloop_bus.consumer import ConsumerRunner, Dispatcher, bind
from driftloop_bus.deadletter import DeadLetters
from driftloop_bus.publisher import Publisher
from driftloop_bus.streams import faust_app, from_faust
from driftloop_bus.tasks import cancel_and_wait
from driftloop_bus.topics import ensure_topics
from driftloop_events.topics import TOPICS, dlq_spec
from driftloop_kit.retry import HANDLER, RECONNECT, Backoff, logged
from driftloop_monitor.adapters.waiting import TableWaiting
from driftloop_monitor.entrypoints.consumers import HANDLERS
from driftloop_monitor.service_layer.bootstrap import MonitorContainer
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

    Args:
        monitor: The use cases (the handlers' dependency).
        publisher: Dead letters go through it.
        bootstrap_servers: The Kafka cluster.
        group: Consumer group (and faust app id).
        retry: Attempts before a failing record is dead-lettered.
    """

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
        self.started = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._ticker: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start in the background: the app serves HTTP while the broker is away."""
        await self.monitor.start()
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="monitor-stream")
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
    """The bus engine: one consumer group over the three topics, a range assignment.

    Args:
        consumer_options: Any other ``AIOKafkaConsumer`` setting.
    """

    def __init__(self, *, consumer_options: dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
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

    async def _consume(self) -> None:
        await self.runner.start()
        await self.runner.wait_assigned(timeout=120)
        self.started.set()

    async def _stop_consuming(self) -> None:
        await self.runner.stop()


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
    return BusMonitorStream(**common, consumer_options=options or None)
