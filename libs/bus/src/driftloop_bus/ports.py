"""The bus's ports: what a use case needs of the outbox and the dead-letter sender.

Use cases type their parameters with these protocols, so the real classes
(:class:`~driftloop_bus.outbox.Outbox`, :class:`~driftloop_bus.deadletter.DeadLetters`)
and the shared test fakes (``tests/fakes/common.py``) both fit, checked by mypy.
"""

from __future__ import annotations

from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from driftloop_bus.deadletter import Delivered
from driftloop_events.envelope import CloudEvent

__all__ = ["DeadLetterPort", "OutboxPort"]


class OutboxPort(Protocol):
    """Stages events in the caller's transaction; they are published after it commits."""

    async def add(self, session: AsyncSession, *events: CloudEvent[Any]) -> None:
        """Stage ``events`` in ``session``'s transaction."""


class DeadLetterPort(Protocol):
    """Stores a message that cannot be handled in its dead-letter topic."""

    async def send(self, message: Delivered, *, error: BaseException, attempts: int) -> None:
        """Store ``message`` with ``error``; returns once the broker has it."""
