"""Fakes of the libraries' ports (outbox, dead letters, database sessions) and test names."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from driftloop_bus.deadletter import Delivered
from driftloop_events.envelope import CloudEvent


def unique(prefix: str) -> str:
    """A name no other test (or earlier run against the same database) uses."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


class FakeOutbox:
    """Collects the events the use cases stage (an :class:`~driftloop_bus.ports.OutboxPort`)."""

    def __init__(self) -> None:
        self.events: list[CloudEvent[Any]] = []

    async def add(self, session: AsyncSession, *events: CloudEvent[Any]) -> None:
        self.events.extend(events)


class FakeDeadLetters:
    """Records what would be dead-lettered (a :class:`~driftloop_bus.ports.DeadLetterPort`)."""

    def __init__(self) -> None:
        self.sent: list[tuple[int, str]] = []

    async def send(self, message: Delivered, *, error: BaseException, attempts: int) -> None:
        self.sent.append((message.offset, f"{type(error).__name__}: {error}"))


class FakeDatabase:
    """A database whose sessions are placeholders: the fakes ignore them."""

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        yield _NO_SESSION


_NO_SESSION: Any = object()
