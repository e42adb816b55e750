"""Monitoring policies, cached for a moment: the stream asks for one on every event."""

from __future__ import annotations

import time

from driftloop_kit.declarations import ModelDeclaration
from driftloop_monitor.domain.policy import MonitorPolicy
from driftloop_monitor.service_layer.ports import MonitorStorePort

__all__ = ["Policies"]


class Policies:
    """Each model's policy (the default one when it has none), read at most every ``ttl``s.

    Args:
        store: Where policies are kept.
        ttl: Seconds a cached policy is used before it is read again.
    """

    def __init__(self, store: MonitorStorePort, *, ttl: float = 2.0) -> None:
        self.store = store
        self.ttl = ttl
        self._cached: dict[str, tuple[float, MonitorPolicy]] = {}

    async def get(self, model: str) -> MonitorPolicy:
        """The model's policy (cached for ``ttl`` seconds), or the default one."""
        cached = self._cached.get(model)
        now = time.monotonic()
        if cached is not None and now - cached[0] < self.ttl:
            return cached[1]
        policy = await self.store.get_policy(model) or MonitorPolicy()
        self._cached[model] = (now, policy)
        return policy

    async def declare(self, declaration: ModelDeclaration) -> MonitorPolicy:
        """A model's document was applied: its ``monitor`` section is the model's policy
        from now on (as ``PUT /policies/{name}`` would store it)."""
        policy = MonitorPolicy.model_validate(declaration.spec.monitor.model_dump())
        await self.store.put_policy(declaration.name, policy)
        self.forget(declaration.name)
        return policy

    def forget(self, model: str) -> None:
        """Drop a cached policy (after a change through the API)."""
        self._cached.pop(model, None)
