"""The bus helpers for faust-streaming agents (monitor, features, trainer).

A faust app made by :func:`faust_app` reads raw bytes (no faust codec), so an
agent decodes CloudEvents with the same envelope, dispatch table, retries and
dead-letter topic as a :class:`~driftloop_bus.consumer.ConsumerRunner`::

    app = faust_app("monitor", bootstrap_servers=settings.kafka_bootstrap_servers,
                    data_dir=settings.data_dir / "faust")
    dispatcher = Dispatcher(handlers={PredictionLogged: [on_prediction]},
                            dead_letters=DeadLetters(publisher, group="monitor"))

    @app.agent(app.topic("predictions"))
    async def predictions(stream):
        async for message in stream.events():
            await dispatcher.handle(from_faust(message.message))

faust commits an offset once the agent has moved past its event, so delivery is
at least once here too, and handlers use the inbox for idempotency.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import faust

from driftloop_bus.deadletter import Delivered
from driftloop_bus.security import faust_credentials


def from_faust(message: Any) -> Delivered:
    """The transport-neutral view of a faust ``Message`` (``event.message``)."""
    headers = message.headers or []
    if isinstance(headers, Mapping):
        headers = list(headers.items())
    return Delivered(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        key=message.key,
        value=message.value,
        headers=[(k, v if isinstance(v, bytes) else str(v).encode()) for k, v in headers],
    )


def faust_app(
    app_id: str,
    *,
    bootstrap_servers: str,
    data_dir: Path,
    web_enabled: bool = False,
    **options: Any,
) -> faust.App:
    """A faust app configured for the driftloop bus.

    Args:
        app_id: Also the consumer group id.
        bootstrap_servers: ``host:port[,host:port]``.
        data_dir: Where faust keeps table state on this machine.
        web_enabled: faust's own web server; the service's FastAPI app serves HTTP instead.
        options: Any other ``faust.App`` setting, overriding the defaults here.
    """
    brokers = [f"kafka://{server.strip()}" for server in bootstrap_servers.split(",")]
    settings: dict[str, Any] = {
        "broker": brokers,
        "datadir": str(data_dir),
        "key_serializer": "raw",
        "value_serializer": "raw",
        "store": "memory://",
        "web_enabled": web_enabled,
        "topic_replication_factor": 1,
        "consumer_auto_offset_reset": "earliest",
        "producer_acks": -1,
        "broker_commit_every": 100,
        "broker_commit_interval": 1.0,
        # aiokafka's own defaults, as ConsumerRunner uses. With faust's 60 s session
        # timeout every (re)join on the embedded broker takes 30 s: tansu answers a
        # JoinGroup only after half the member's session timeout.
        "broker_session_timeout": 10.0,
        "broker_heartbeat_interval": 3.0,
    }
    credentials = faust_credentials()
    if credentials is not None:
        settings["broker_credentials"] = credentials
    settings.update(options)
    return faust.App(app_id, **settings)
