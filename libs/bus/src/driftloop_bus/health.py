"""Readiness check for the Kafka cluster."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiokafka import AIOKafkaClient

from driftloop_bus.security import client_options


def broker_check(
    bootstrap_servers: str, *, timeout_ms: int = 3_000
) -> Callable[[], Awaitable[None]]:
    """A ``/readyz`` check that passes when the cluster answers a metadata request."""

    async def check() -> None:
        client = AIOKafkaClient(
            bootstrap_servers=bootstrap_servers, request_timeout_ms=timeout_ms, **client_options()
        )
        try:
            await client.bootstrap()
        finally:
            await client.close()

    return check
