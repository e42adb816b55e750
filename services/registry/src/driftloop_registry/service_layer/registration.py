"""Registering a model version: its files copied and checksummed, its lineage recorded.

The files are copied before the version row exists, under a key of their own; if
anything fails, they are removed and nothing is stored. The version, its file
checksums and its ``model_version.created`` event are stored in one transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from driftloop_kit.errors import InvalidInput
from driftloop_registry.domain.events import version_created
from driftloop_registry.domain.lineage import build_lineage
from driftloop_registry.domain.model import (
    Lineage,
    ModelFile,
    ModelVersion,
    Stage,
    Tag,
    VersionStatus,
    now_ms,
)
from driftloop_registry.domain.validation import registry_source, validate_model_name, validate_tag
from driftloop_registry.service_layer.ports import ModelFilesPort, TrackingPort
from driftloop_registry.service_layer.stores import Stores
from driftloop_registry.service_layer.versions import ModelVersions


class Registration:
    """Creates model versions.

    Args:
        stores: The registry's state.
        files: The versions' model files.
        tracking: Runs and artifacts that versions are registered from.
        versions: The registered versions (a source may name one to copy).
    """

    def __init__(
        self,
        *,
        stores: Stores,
        files: ModelFilesPort,
        tracking: TrackingPort,
        versions: ModelVersions,
    ) -> None:
        self.stores = stores
        self.files = files
        self.tracking = tracking
        self.versions = versions

    async def create_model_version(
        self,
        *,
        name: str,
        source: str,
        run_id: str | None = None,
        tags: Iterable[Tag] = (),
        run_link: str | None = None,
        description: str | None = None,
        model_id: str | None = None,
        user_id: str | None = None,
    ) -> ModelVersion:
        """Register a new version: copy and checksum its files, record its lineage.

        Raises:
            NotFound: If the registered model does not exist.
            InvalidInput: If the source cannot be read, holds no MLflow model, or
                names a run tracking does not have.
            Unavailable: If the tracking service cannot be reached.
        """
        validate_model_name(name)
        if not source:
            raise InvalidInput("Missing value for required parameter 'source'.")
        tags = list(tags)
        for tag in tags:
            validate_tag(tag.key, tag.value)
        async with self.stores.database.session() as session:
            await self.stores.store.model(session, name)  # 404 before any copying

        storage_key = uuid.uuid4().hex
        try:
            files, run_id = await self._copy(source, run_id, storage_key)
            run = await self.tracking.get_run(run_id) if run_id else None
            version = ModelVersion(
                name=name,
                version="0",  # numbered when stored
                creation_timestamp=0,
                last_updated_timestamp=0,
                user_id=user_id,
                current_stage=Stage.NONE.value,
                description=description,
                source=source,
                run_id=run_id or None,
                status=VersionStatus.READY,
                tags=list({t.key: t for t in tags}.values()),
                run_link=run_link,
                model_id=model_id,
                lineage=build_lineage(run, {tag.key: tag.value for tag in tags}),
            )
            return await self._store(version, storage_key=storage_key, files=files)
        except BaseException:
            await self.files.remove(storage_key)
            raise

    async def _copy(
        self, source: str, run_id: str | None, storage_key: str
    ) -> tuple[list[ModelFile], str | None]:
        """Copy the source's files to ``storage_key``; they and the version's run id."""
        registered = registry_source(source)
        if registered is None:
            path, source_run = await self.tracking.resolve(source)
            return await self.files.copy_from_tracking(path, storage_key), run_id or source_run
        name, ref = registered
        async with self.stores.database.session() as session:
            if ref.startswith("@"):
                origin = await self.versions.stored(session, name, alias=ref[1:])
            else:
                origin = await self.versions.stored(session, name, version=ref)
            origin_files = await self.stores.store.files(session, origin.storage_key)
        files = await self.files.copy_within(origin_files, origin.storage_key, storage_key)
        return files, run_id or origin.entity.run_id

    async def _store(
        self, version: ModelVersion, *, storage_key: str, files: list[ModelFile]
    ) -> ModelVersion:
        """Number and store ``version`` with its files; stage ``model_version.created``."""
        now = now_ms()
        store = self.stores.store
        async with self.stores.database.session() as session:
            model = await store.model(session, version.name)
            number = await store.next_version(session, model, now)
            numbered = version.model_copy(
                update={
                    "version": str(number),
                    "creation_timestamp": now,
                    "last_updated_timestamp": now,
                    "lineage": version.lineage or Lineage(),
                }
            )
            await store.add_version(session, model, numbered, storage_key=storage_key, files=files)
            stored = (await store.version(session, model, number)).entity
            created = stored.model_copy(update={"files": files})
            await self.stores.announce(session, version_created(created))
        return created
