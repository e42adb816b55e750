"""What the tracking service reacts to: nothing.

Tracking only publishes: ``run.created`` and ``run.finished`` on ``tracking.runs``,
staged in the outbox in the transaction that stores the change
(:mod:`driftloop_tracking.service_layer.runs`) and sent by the bus's relay. The table
is here, empty, so that every service answers "what does it consume?" in one place.
"""

from __future__ import annotations

from typing import Any

from driftloop_bus.consumer import HandlerTable

__all__ = ["HANDLERS"]

HANDLERS: HandlerTable[Any] = {}
