"""Fakes of the registry's ports (``service_layer/ports.py``) and the use cases over them.

In memory and ignoring sessions (a :class:`~tests.fakes.common.FakeDatabase` hands
out placeholders), so a use case's effects are read straight off the fakes.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from driftloop_events.envelope import CloudEvent
from driftloop_kit.artifacts import ArtifactReader
from driftloop_kit.errors import AlreadyExists, InvalidInput, NotFound
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
from driftloop_registry.service_layer.aliases import Aliases
from driftloop_registry.service_layer.models import RegisteredModels
from driftloop_registry.service_layer.registration import Registration
from driftloop_registry.service_layer.stores import Stores
from driftloop_registry.service_layer.versions import ModelVersions
from tests.fakes.common import FakeDatabase, FakeOutbox


@dataclass
class _Model:
    id: int
    name: str
    description: str | None
    user_id: str | None
    created: int
    updated: int
    last_version: int = 0
    tags: dict[str, str] = field(default_factory=dict)


@dataclass
class _Version:
    entity: ModelVersion
    storage_key: str


class FakeRegistryStore:
    """The registry's tables in dictionaries (a ``RegistryStorePort``)."""

    def __init__(self) -> None:
        self._models: dict[int, _Model] = {}
        self._versions: dict[tuple[int, int], _Version] = {}
        self._aliases: dict[tuple[int, str], int] = {}
        self._files: dict[str, list[ModelFile]] = {}

    # -- reading ------------------------------------------------------------------------

    def _named(self, name: str) -> _Model:
        for model in self._models.values():
            if model.name == name:
                return model
        raise NotFound(f"Registered Model with name={name} not found")

    def _entity(self, model_id: int, number: int) -> ModelVersion:
        stored = self._versions[(model_id, number)]
        aliases = sorted(a for (m, a), v in self._aliases.items() if m == model_id and v == number)
        return stored.entity.model_copy(
            update={"name": self._models[model_id].name, "aliases": aliases}
        )

    async def model(self, session: AsyncSession, name: str) -> StoredModel:
        found = self._named(name)
        return StoredModel(id=found.id, name=found.name)

    async def version(
        self, session: AsyncSession, model: StoredModel, number: int
    ) -> StoredVersion:
        if (model.id, number) not in self._versions:
            raise NotFound(f"Model Version (name={model.name}, version={number}) not found")
        return StoredVersion(
            model_id=model.id,
            storage_key=self._versions[(model.id, number)].storage_key,
            entity=self._entity(model.id, number),
        )

    def _registered(self, model: _Model) -> RegisteredModel:
        latest: dict[str, ModelVersion] = {}
        for (model_id, number), stored in sorted(self._versions.items()):
            if model_id == model.id:
                latest[stored.entity.current_stage] = self._entity(model_id, number)
        return RegisteredModel(
            name=model.name,
            creation_timestamp=model.created,
            last_updated_timestamp=model.updated,
            user_id=model.user_id,
            description=model.description,
            latest_versions=sorted(
                (v.model_copy(update={"lineage": None}) for v in latest.values()),
                key=lambda v: int(v.version),
            ),
            tags=[Tag(key=k, value=v) for k, v in sorted(model.tags.items())],
            aliases=[
                Alias(alias=a, version=str(v))
                for (m, a), v in sorted(self._aliases.items())
                if m == model.id
            ],
        )

    async def registered_model(self, session: AsyncSession, name: str) -> RegisteredModel:
        return self._registered(self._named(name))

    async def registered_models(
        self, session: AsyncSession, ids: Sequence[int]
    ) -> list[RegisteredModel]:
        return [self._registered(self._models[i]) for i in ids if i in self._models]

    async def model_versions(
        self, session: AsyncSession, keys: Sequence[tuple[int, int]]
    ) -> list[ModelVersion]:
        return [
            self._entity(*key).model_copy(update={"lineage": None})
            for key in keys
            if key in self._versions
        ]

    async def matching_models(self, session: AsyncSession, search: Search) -> list[int]:
        """Every model by name (the fake ignores filters and order)."""
        ids = [m.id for m in sorted(self._models.values(), key=lambda m: m.name)]
        return ids[search.offset : search.offset + search.max_results + 1]

    async def matching_versions(
        self, session: AsyncSession, search: Search
    ) -> list[tuple[int, int]]:
        """Every version (the fake ignores filters and order)."""
        keys = sorted(self._versions)
        return keys[search.offset : search.offset + search.max_results + 1]

    async def alias_target(
        self, session: AsyncSession, model: StoredModel, alias: str, *, lock: bool = False
    ) -> int | None:
        return self._aliases.get((model.id, alias))

    async def files(self, session: AsyncSession, storage_key: str) -> list[ModelFile]:
        return sorted(self._files.get(storage_key, []), key=lambda f: f.path)

    async def file(self, session: AsyncSession, storage_key: str, path: str) -> ModelFile | None:
        return next((f for f in self._files.get(storage_key, []) if f.path == path), None)

    async def has_storage_key(self, session: AsyncSession, storage_key: str) -> bool:
        return any(v.storage_key == storage_key for v in self._versions.values())

    # -- registered models --------------------------------------------------------------

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
        if any(m.name == name for m in self._models.values()):
            raise AlreadyExists(f"Registered Model (name={name}) already exists.")
        model_id = len(self._models) + 1
        self._models[model_id] = _Model(
            id=model_id,
            name=name,
            description=description,
            user_id=user_id,
            created=now,
            updated=now,
            tags={t.key: t.value for t in tags},
        )

    async def update_model(
        self, session: AsyncSession, model: StoredModel, *, now: int, **values: Any
    ) -> None:
        stored = self._models[model.id]
        if "name" in values:
            if any(m.name == values["name"] for m in self._models.values() if m is not stored):
                raise AlreadyExists(f"Registered Model (name={values['name']}) already exists.")
            stored.name = values["name"]
        if "description" in values:
            stored.description = values["description"]
        stored.updated = now

    async def set_model_tag(
        self, session: AsyncSession, model: StoredModel, key: str, value: str
    ) -> None:
        self._models[model.id].tags[key] = value

    async def delete_model_tag(self, session: AsyncSession, model: StoredModel, key: str) -> bool:
        return self._models[model.id].tags.pop(key, None) is not None

    async def delete_model(self, session: AsyncSession, model: StoredModel) -> list[str]:
        keys = [v.storage_key for (m, _), v in self._versions.items() if m == model.id]
        for key in [k for k in self._versions if k[0] == model.id]:
            del self._versions[key]
        for storage_key in keys:
            self._files.pop(storage_key, None)
        del self._models[model.id]
        return keys

    # -- versions -----------------------------------------------------------------------

    async def next_version(self, session: AsyncSession, model: StoredModel, now: int) -> int:
        stored = self._models[model.id]
        stored.last_version += 1
        stored.updated = now
        return stored.last_version

    async def add_version(
        self,
        session: AsyncSession,
        model: StoredModel,
        version: ModelVersion,
        *,
        storage_key: str,
        files: Sequence[ModelFile],
    ) -> None:
        tags = sorted({t.key: t for t in version.tags}.values(), key=lambda t: t.key)
        entity = version.model_copy(update={"tags": tags, "files": None, "aliases": []})
        self._versions[(model.id, int(version.version))] = _Version(entity, storage_key)
        self._files[storage_key] = list(files)

    def _update(self, version: StoredVersion, **changes: Any) -> None:
        stored = self._versions[(version.model_id, version.number)]
        stored.entity = stored.entity.model_copy(update=changes)

    async def set_version_tag(
        self, session: AsyncSession, version: StoredVersion, key: str, value: str
    ) -> None:
        tags = {t.key: t for t in self._versions[(version.model_id, version.number)].entity.tags}
        tags[key] = Tag(key=key, value=value)
        self._update(version, tags=sorted(tags.values(), key=lambda t: t.key))

    async def delete_version_tag(
        self, session: AsyncSession, version: StoredVersion, key: str
    ) -> bool:
        tags = self._versions[(version.model_id, version.number)].entity.tags
        self._update(version, tags=[t for t in tags if t.key != key])
        return any(t.key == key for t in tags)

    async def update_version(
        self, session: AsyncSession, version: StoredVersion, *, now: int, **values: Any
    ) -> None:
        self._update(version, last_updated_timestamp=now, **values)

    async def archive_stage(
        self, session: AsyncSession, version: StoredVersion, stage: Stage, *, now: int
    ) -> None:
        for (model_id, number), stored in self._versions.items():
            same_model = model_id == version.model_id and number != version.number
            if same_model and stored.entity.current_stage == stage.value:
                stored.entity = stored.entity.model_copy(
                    update={"current_stage": Stage.ARCHIVED.value, "last_updated_timestamp": now}
                )

    async def delete_version(self, session: AsyncSession, version: StoredVersion) -> None:
        del self._versions[(version.model_id, version.number)]
        self._files.pop(version.storage_key, None)

    # -- aliases ------------------------------------------------------------------------

    async def set_alias(
        self, session: AsyncSession, model: StoredModel, alias: str, number: int, *, new: bool
    ) -> None:
        self._aliases[(model.id, alias)] = number

    async def delete_aliases(
        self,
        session: AsyncSession,
        model: StoredModel,
        *,
        version: int | None = None,
        alias: str | None = None,
    ) -> list[Alias]:
        dropped = [
            (a, v)
            for (m, a), v in sorted(self._aliases.items())
            if m == model.id and version in (None, v) and alias in (None, a)
        ]
        for a, _ in dropped:
            del self._aliases[(model.id, a)]
        return [Alias(alias=a, version=str(v)) for a, v in dropped]

    # -- for tests ----------------------------------------------------------------------

    @property
    def storage_keys(self) -> set[str]:
        """The keys of every stored version's files."""
        return {v.storage_key for v in self._versions.values()}


class FakeTracking:
    """Tracking's runs (a ``TrackingPort``); ``runs:/<run_id>/<path>`` names a model.

    Args:
        runs: Runs by id, as MLflow's ``runs/get`` returns them.
    """

    def __init__(self, runs: Mapping[str, dict[str, Any]] | None = None) -> None:
        self.runs = dict(runs or {})

    async def resolve(self, source: str) -> tuple[str, str | None]:
        if not source.startswith("runs:/"):
            raise InvalidInput(f"Invalid model version source '{source}'")
        run_id, _, path = source.removeprefix("runs:/").partition("/")
        await self.get_run(run_id)
        return f"{run_id}/artifacts/{path}", run_id

    async def get_run(self, run_id: str) -> dict[str, Any]:
        if run_id not in self.runs:
            raise InvalidInput(f"Run '{run_id}' does not exist in tracking.")
        return self.runs[run_id]


class FakeModelFiles:
    """Model files in memory (a ``ModelFilesPort``).

    Args:
        tracking: The files in tracking's artifact store, by directory, then by name.
    """

    def __init__(self, tracking: Mapping[str, Mapping[str, bytes]] | None = None) -> None:
        self.tracking = {path: dict(files) for path, files in (tracking or {}).items()}
        self.stored: dict[str, dict[str, bytes]] = {}
        self.removed: list[str] = []

    def _store(self, storage_key: str, files: Mapping[str, bytes]) -> list[ModelFile]:
        self.stored[storage_key] = dict(files)
        return [
            ModelFile(path=name, size=len(data), sha256=hashlib.sha256(data).hexdigest())
            for name, data in sorted(files.items())
        ]

    async def copy_from_tracking(self, path: str, storage_key: str) -> list[ModelFile]:
        files = self.tracking.get(path)
        if not files:
            raise InvalidInput(f"No model files found at '{path}' in tracking.")
        if "MLmodel" not in files:
            raise InvalidInput(
                f"'{path}' in tracking is not an MLflow model: it has no MLmodel file."
            )
        return self._store(storage_key, files)

    async def copy_within(
        self, files: list[ModelFile], from_key: str, storage_key: str
    ) -> list[ModelFile]:
        return self._store(storage_key, {f.path: self.stored[from_key][f.path] for f in files})

    async def open(self, storage_key: str, file: ModelFile) -> ArtifactReader:
        data = self.stored[storage_key][file.path]
        return ArtifactReader(io.BytesIO(data), size=len(data))

    async def remove(self, storage_key: str) -> None:
        self.removed.append(storage_key)
        self.stored.pop(storage_key, None)


class FakeLineageLog:
    """The lineage log in a list (a ``LineageLogPort``); an event id goes in once."""

    def __init__(self) -> None:
        self.entries: list[LogEntry] = []

    async def record(self, session: AsyncSession, entry: LogEntry) -> bool:
        if any(e.id == entry.id for e in self.entries):
            return False
        self.entries.append(entry)
        return True

    async def model_log(self, session: AsyncSession, model: str) -> list[LogEntry]:
        return sorted((e for e in self.entries if e.model == model), key=lambda e: e.time)

    async def rename_model(self, session: AsyncSession, *, name: str, new_name: str) -> None:
        self.entries = [
            e.model_copy(update={"model": new_name}) if e.model == name else e for e in self.entries
        ]

    async def forget_model(self, session: AsyncSession, name: str) -> None:
        self.entries = [e for e in self.entries if e.model != name]


class FakeInbox:
    """The consumer's inbox in a set (an ``InboxPort``)."""

    def __init__(self) -> None:
        self.claimed: set[str] = set()

    async def claim(self, session: AsyncSession, event: CloudEvent[Any]) -> bool:
        if event.id in self.claimed:
            return False
        self.claimed.add(event.id)
        return True


#: The run tracking knows, with a metric and the feature views it trained on.
RUN = {
    "info": {"run_id": "run-1", "experiment_id": "0"},
    "data": {
        "metrics": [{"key": "accuracy", "value": 0.97}],
        "tags": [{"key": "driftloop.feature_views", "value": "iris_view"}],
    },
}
#: The model's files in tracking, below ``runs:/run-1/model``.
MODEL_FILES = {"MLmodel": b"flavors: {}\n", "model.pkl": b"\x80\x04pickled"}


@dataclass
class Registry:
    """The use cases, and the fakes to read their effects from."""

    store: FakeRegistryStore
    outbox: FakeOutbox
    log: FakeLineageLog
    files: FakeModelFiles
    registration: Registration
    models: RegisteredModels
    versions: ModelVersions
    aliases: Aliases

    @property
    def staged(self) -> list[str]:
        """The types of the events staged in the outbox, in order."""
        return [event.type for event in self.outbox.events]


def fake_registry() -> Registry:
    """The use cases over fresh fakes; tracking has :data:`RUN` and its :data:`MODEL_FILES`."""
    store, outbox, log = FakeRegistryStore(), FakeOutbox(), FakeLineageLog()
    files = FakeModelFiles({"run-1/artifacts/model": MODEL_FILES, "run-1/artifacts/empty": {}})
    stores = Stores(database=FakeDatabase(), store=store, outbox=outbox, log=log)
    versions = ModelVersions(stores=stores, files=files, base_url="http://registry:5001")
    return Registry(
        store=store,
        outbox=outbox,
        log=log,
        files=files,
        registration=Registration(
            stores=stores, files=files, tracking=FakeTracking({"run-1": RUN}), versions=versions
        ),
        models=RegisteredModels(stores=stores, files=files),
        versions=versions,
        aliases=Aliases(stores=stores),
    )
