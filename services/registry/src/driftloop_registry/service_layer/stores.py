"""What every registry use case works with: transactions, tables, outbox, lineage log."""

from __future__ import annotations

from dataclasses import dataclass

from google.protobuf.message import Message
from sqlalchemy.ext.asyncio import AsyncSession

from driftloop_events.envelope import CloudEvent
from driftloop_registry.domain.events import alias_deleted
from driftloop_registry.domain.lineage_log import log_entry
from driftloop_registry.domain.model import StoredModel, now_ms
from driftloop_registry.service_layer.ports import (
    LineageLogPort,
    OutboxPort,
    RegistryStorePort,
    SessionsPort,
)


@dataclass(frozen=True)
class Stores:
    """The registry's state: one transaction holds a change, its events and its log rows.

    Every change other services act on (a version created or updated, an alias set or
    deleted) is staged in the outbox in the transaction of the change, so it is
    published exactly when the change is stored.
    """

    database: SessionsPort
    store: RegistryStorePort
    outbox: OutboxPort
    log: LineageLogPort

    async def announce(self, session: AsyncSession, message: Message) -> None:
        """Stage ``message`` in the outbox and add it to the lineage log, both in ``session``."""
        event = CloudEvent.new(message)
        await self.outbox.add(session, event)
        await self.log.record(session, log_entry(event))

    async def drop_aliases(
        self,
        session: AsyncSession,
        model: StoredModel,
        *,
        version: int | None = None,
        alias: str | None = None,
        user_id: str | None = None,
    ) -> None:
        """Delete a model's aliases (all, of one version, or one) and announce each."""
        dropped = await self.store.delete_aliases(session, model, version=version, alias=alias)
        now = now_ms()
        for row in dropped:
            await self.announce(
                session,
                alias_deleted(
                    model.name, alias=row.alias, version=int(row.version), now=now, user_id=user_id
                ),
            )
