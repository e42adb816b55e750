"""Readiness check for the Kafka cluster."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiokafka import AIOKafkaClient


def broker_check(
    bootstrap_servers: str, *, timeout_ms: int = 3_000
) -> Callable[[], Awaitable[None]]:
    """A ``/readyz`` check that passes when the cluster answers a metadata request."""

    async def check() -> None:
        client = AIOKafkaClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=timeout_ms)
        try:
            await client.bootstrap()
        finally:
            await client.close()

    return check
