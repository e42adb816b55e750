"""The lineage log: recording other services' events about models, and reading a chain."""

from __future__ import annotations

import logging
from typing import Any

from driftloop_events.envelope import CloudEvent
from driftloop_kit.errors import InvalidInput
from driftloop_registry.domain.lineage_log import event_view, log_entry, version_chain
from driftloop_registry.domain.model import Lineage, ModelLineage, ModelVersion
from driftloop_registry.domain.validation import validate_alias, validate_model_name
from driftloop_registry.service_layer.models import RegisteredModels
from driftloop_registry.service_layer.ports import InboxPort, LineageLogPort, SessionsPort
from driftloop_registry.service_layer.versions import ModelVersions

log = logging.getLogger(__name__)


class LineageRecording:
    """Writes the events of other services about models into the lineage log.

    Each event is claimed in the inbox in the transaction that writes its log row, so
    a redelivered event adds nothing.

    Args:
        database: The registry's database (log and inbox).
        log: The lineage log.
        inbox: The consumer's inbox.
    """

    def __init__(self, *, database: SessionsPort, log: LineageLogPort, inbox: InboxPort) -> None:
        self.database = database
        self.log = log
        self.inbox = inbox

    async def record(self, event: CloudEvent[Any]) -> None:
        """Add ``event`` to the log, unless it was recorded before.

        Raises:
            InvalidEvent: If the log cannot take it (no model name, no job id); nothing
                is claimed then, so the consumer retries and dead-letters it.
        """
        async with self.database.session() as session:
            if not await self.inbox.claim(session, event):
                log.info(
                    "duplicate event ignored",
                    extra={"event_id": event.id, "type": event.type},
                )
                return
            await self.log.record(session, log_entry(event))


class LineageQueries:
    """A model's lineage log, or one version's lineage and chain of events.

    Args:
        database: The registry's database.
        log: The lineage log.
        models: The registered models.
        versions: Their versions.
    """

    def __init__(
        self,
        *,
        database: SessionsPort,
        log: LineageLogPort,
        models: RegisteredModels,
        versions: ModelVersions,
    ) -> None:
        self.database = database
        self.log = log
        self.models = models
        self.versions = versions

    async def get(
        self, name: str, *, version: str | None = None, alias: str | None = None
    ) -> ModelLineage:
        """A model's lineage log, or one version's lineage and chain of events.

        Args:
            name: The registered model.
            version: The version whose chain is wanted.
            alias: The alias naming that version (instead of ``version``).

        Raises:
            InvalidInput: If both ``version`` and ``alias`` are given, or either is bad.
            NotFound: If the model, version or alias does not exist.
        """
        validate_model_name(name)
        if version is not None and alias is not None:
            raise InvalidInput("Give either 'version' or 'alias', not both.")
        model = await self.models.get(name)
        entity: ModelVersion | None = None
        if alias is not None:
            entity = await self.versions.by_alias(name, validate_alias(alias))
        elif version is not None:
            entity = await self.versions.get(name, version)
        async with self.database.session() as session:
            entries = await self.log.model_log(session, name)
        result = ModelLineage(name=name, aliases=model.aliases)
        if entity is None:
            result.events = [event_view(entry) for entry in entries]
            return result
        lineage = entity.lineage or Lineage()
        chain = version_chain(
            entries,
            int(entity.version),
            training_job_id=lineage.training_job_id,
            trigger_event_id=lineage.triggering_event.id if lineage.triggering_event else "",
        )
        result.version = entity.version
        result.alias = alias
        result.lineage = lineage
        result.events = [event_view(entry, role) for entry, role in chain]
        return result
