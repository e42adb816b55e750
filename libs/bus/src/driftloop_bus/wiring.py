"""What every service that publishes events needs: a publisher, an outbox and its relay.

A service builds one :class:`ServiceBus` in its ``bootstrap()`` and passes
``bus.resources`` and ``bus.checks`` to ``create_service_app``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from driftloop_bus.consumer import ConsumerRunner, EventKey, Handler
from driftloop_bus.health import broker_check
from driftloop_bus.outbox import Outbox, OutboxRelay
from driftloop_bus.publisher import Publisher
from driftloop_bus.security import configure
from driftloop_events.topics import TopicSpec, all_topics
from driftloop_kit.app import Resource
from driftloop_kit.db import Database
from driftloop_kit.settings import ServiceSettings


@dataclass
class ServiceBus:
    """The Kafka side of one service.

    Attributes:
        publisher: Shared by the relay and the dead-letter path of consumers.
        outbox: Handlers add events to it inside their transaction.
        relay: Publishes the outbox; a resource of the app.
        resources: To start with the app (the relay, then any consumers added).
    """

    publisher: Publisher
    outbox: Outbox
    relay: OutboxRelay
    resources: list[Resource] = field(default_factory=list)

    def consumer(
        self, *, group_id: str, handlers: Mapping[EventKey, Sequence[Handler]]
    ) -> ConsumerRunner:
        """A consumer of the handlers' topics in ``group_id``, dead-lettering through the
        bus's publisher (add it to the app's resources after :attr:`resources`)."""
        return ConsumerRunner(
            bootstrap_servers=self.publisher.bootstrap_servers,
            group_id=group_id,
            handlers=handlers,
            publisher=self.publisher,
        )

    @property
    def checks(self) -> dict[str, Callable[[], Awaitable[None]]]:
        """Readiness: the broker answers."""
        return {"broker": broker_check(self.publisher.bootstrap_servers)}


def service_bus(
    *,
    service: str,
    bootstrap_servers: str,
    database: Database,
    topics: Iterable[TopicSpec] | None = None,
) -> ServiceBus:
    """Build the publisher, outbox and relay of ``service``.

    Args:
        service: The service's name (client id, metrics label).
        bootstrap_servers: ``host:port[,host:port]``.
        database: The service's database, which holds its outbox table.
        topics: Created at start-up when missing; by default every declared topic.
    """
    publisher = Publisher(
        bootstrap_servers,
        client_id=f"driftloop-{service}",
        topics=list(topics) if topics is not None else all_topics(),
    )
    outbox = Outbox()
    relay = OutboxRelay(database=database, publisher=publisher, outbox=outbox, service=service)
    # The publisher connects lazily (the relay retries until the broker is there) and
    # is closed last, after everything that publishes through it has stopped.
    return ServiceBus(
        publisher=publisher, outbox=outbox, relay=relay, resources=[_Closing(publisher), relay]
    )


def database_and_bus(settings: ServiceSettings) -> tuple[Database, ServiceBus]:
    """A service's database (not yet connected) and its bus, whose outbox lives in it."""
    configure(settings)  # every Kafka client of the process: TLS and SASL as set
    database = Database(settings.database_url)
    bus = service_bus(
        service=settings.service_name,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        database=database,
    )
    return database, bus


@dataclass
class _Closing:
    """A resource that only stops its publisher (which connects on first use)."""

    publisher: Publisher

    async def start(self) -> None:
        """Nothing: the relay connects the publisher when the broker is reachable."""

    async def stop(self) -> None:
        """Flush and disconnect."""
        await self.publisher.stop()
