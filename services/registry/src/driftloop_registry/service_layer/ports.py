"""What the registry's use cases need of the world, as protocols.

The real classes (``adapters/``: :class:`~driftloop_registry.adapters.store.RegistryStore`,
:class:`~driftloop_registry.adapters.tracking.TrackingClient`,
:class:`~driftloop_registry.adapters.model_files.ModelFiles`,
:class:`~driftloop_registry.adapters.lineage_log.LineageLog`,
:class:`~driftloop_registry.adapters.inbox.Inbox`, :class:`~driftloop_kit.db.Database`,
the bus's outbox) and the test fakes (``tests/fakes/registry.py``,
``tests/fakes/common.py``) both fit them, checked by mypy.

Store and log methods work in the session they are given: a use case opens one
transaction for a change, its outbox events and its lineage log rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from driftloop_bus.ports import OutboxPort
from driftloop_events.envelope import CloudEvent
from driftloop_kit.artifacts import ArtifactReader
from driftloop_registry.domain.lineage_log import LogEntry
from driftloop_registry.domain.model import (
    Alias,
    ModelFile,
    ModelVersion,
    RegisteredModel,
    Stage,
    StoredModel,
    StoredVersion,
    Tag,
)
from driftloop_registry.domain.search import Search

__all__ = [
    "InboxPort",
    "LineageLogPort",
    "ModelFilesPort",
    "OutboxPort",
    "RegistryStorePort",
    "SessionsPort",
    "TrackingPort",
]


class SessionsPort(Protocol):
    """Opens database transactions."""

    def session(self) -> AbstractAsyncContextManager[AsyncSession]:
        """A session in one transaction: committed on success, rolled back on error."""


class RegistryStorePort(Protocol):
    """Registered models, versions, tags, aliases and file records."""

    async def model(self, session: AsyncSession, name: str) -> StoredModel:
        """A registered model's id by name; raises ``NotFound``."""

    async def version(
        self, session: AsyncSession, model: StoredModel, number: int
    ) -> StoredVersion:
        """A version with its tags, aliases and lineage (not its files); raises ``NotFound``."""

    async def registered_model(self, session: AsyncSession, name: str) -> RegisteredModel:
        """A registered model with tags, aliases and latest versions; raises ``NotFound``."""

    async def registered_models(
        self, session: AsyncSession, ids: Sequence[int]
    ) -> list[RegisteredModel]:
        """Registered models by internal id, in the order given."""

    async def model_versions(
        self, session: AsyncSession, keys: Sequence[tuple[int, int]]
    ) -> list[ModelVersion]:
        """Versions by ``(model id, version)``, in the order given, without lineage."""

    async def matching_models(self, session: AsyncSession, search: Search) -> list[int]:
        """Ids of the models on ``search``'s page, and one more if there is a next page."""

    async def matching_versions(
        self, session: AsyncSession, search: Search
    ) -> list[tuple[int, int]]:
        """``(model id, version)`` on ``search``'s page, and one more if there is a next."""

    async def alias_target(
        self, session: AsyncSession, model: StoredModel, alias: str, *, lock: bool = False
    ) -> int | None:
        """The version ``alias`` points to; with ``lock``, the alias row stays locked."""

    async def files(self, session: AsyncSession, storage_key: str) -> list[ModelFile]:
        """The recorded files of a version, by path."""

    async def file(self, session: AsyncSession, storage_key: str, path: str) -> ModelFile | None:
        """The recorded checksum of one file of a version, if it is one."""

    async def has_storage_key(self, session: AsyncSession, storage_key: str) -> bool:
        """Whether a version keeps its files under ``storage_key``."""

    async def add_model(
        self,
        session: AsyncSession,
        *,
        name: str,
        tags: Sequence[Tag],
        description: str | None,
        user_id: str | None,
        now: int,
    ) -> None:
        """Insert a registered model and its tags; raises ``AlreadyExists``."""

    async def update_model(
        self, session: AsyncSession, model: StoredModel, *, now: int, **values: Any
    ) -> None:
        """Change a model's columns and its update time; raises ``AlreadyExists`` on a name."""

    async def set_model_tag(
        self, session: AsyncSession, model: StoredModel, key: str, value: str
    ) -> None:
        """Set (or overwrite) a model's tag."""

    async def delete_model_tag(self, session: AsyncSession, model: StoredModel, key: str) -> bool:
        """Remove a model's tag; False if it had none."""

    async def delete_model(self, session: AsyncSession, model: StoredModel) -> list[str]:
        """Delete a model with its versions, tags and file records; its versions' keys."""

    async def next_version(self, session: AsyncSession, model: StoredModel, now: int) -> int:
        """Take the model's next version number (never given twice)."""

    async def add_version(
        self,
        session: AsyncSession,
        model: StoredModel,
        version: ModelVersion,
        *,
        storage_key: str,
        files: Sequence[ModelFile],
    ) -> None:
        """Insert a version, its tags and its file records."""

    async def set_version_tag(
        self, session: AsyncSession, version: StoredVersion, key: str, value: str
    ) -> None:
        """Set (or overwrite) a version's tag."""

    async def delete_version_tag(
        self, session: AsyncSession, version: StoredVersion, key: str
    ) -> bool:
        """Remove a version's tag; False if it had none."""

    async def update_version(
        self, session: AsyncSession, version: StoredVersion, *, now: int, **values: Any
    ) -> None:
        """Change a version's columns and its update time."""

    async def archive_stage(
        self, session: AsyncSession, version: StoredVersion, stage: Stage, *, now: int
    ) -> None:
        """Move the model's other versions in ``stage`` to ``Archived``."""

    async def delete_version(self, session: AsyncSession, version: StoredVersion) -> None:
        """Delete a version with its tags and file records."""

    async def set_alias(
        self, session: AsyncSession, model: StoredModel, alias: str, number: int, *, new: bool
    ) -> None:
        """Point ``alias`` at version ``number`` (``new``: the alias does not exist yet)."""

    async def delete_aliases(
        self,
        session: AsyncSession,
        model: StoredModel,
        *,
        version: int | None = None,
        alias: str | None = None,
    ) -> list[Alias]:
        """Delete a model's aliases (all, those of one version, or one); those deleted."""


class TrackingPort(Protocol):
    """The tracking service, as registration sees it."""

    async def resolve(self, source: str) -> tuple[str, str | None]:
        """The path in tracking's artifact store ``source`` points to, and its run id."""

    async def get_run(self, run_id: str) -> dict[str, Any]:
        """A run as MLflow's ``runs/get`` returns it; ``InvalidInput`` if there is none."""


class ModelFilesPort(Protocol):
    """The registered versions' own copies of their model files, checksummed."""

    async def copy_from_tracking(self, path: str, storage_key: str) -> list[ModelFile]:
        """Copy a model's files from tracking's ``path`` to ``storage_key``, hashing each."""

    async def copy_within(
        self, files: list[ModelFile], from_key: str, storage_key: str
    ) -> list[ModelFile]:
        """Copy a registered version's files (checked) to a new version's key."""

    async def open(self, storage_key: str, file: ModelFile) -> ArtifactReader:
        """Open a stored file after checking it against its recorded SHA-256."""

    async def remove(self, storage_key: str) -> None:
        """Delete the files stored under ``storage_key``."""


class LineageLogPort(Protocol):
    """Every event about a model, kept per model."""

    async def record(self, session: AsyncSession, entry: LogEntry) -> bool:
        """Add ``entry`` in ``session``'s transaction; False if its event id is there."""

    async def model_log(self, session: AsyncSession, model: str) -> list[LogEntry]:
        """Every entry about ``model``, oldest first."""

    async def rename_model(self, session: AsyncSession, *, name: str, new_name: str) -> None:
        """The model's log follows its rename."""

    async def forget_model(self, session: AsyncSession, name: str) -> None:
        """Drop a deleted model's log."""


class InboxPort(Protocol):
    """The consumer's record of the events it has handled."""

    async def claim(self, session: AsyncSession, event: CloudEvent[Any]) -> bool:
        """Record that ``event`` is handled, in ``session``; False if it already was."""
