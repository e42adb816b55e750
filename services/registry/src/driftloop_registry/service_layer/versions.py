"""Model versions: reading them, changing them, deleting them, handing out their files."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.ext.asyncio import AsyncSession

from driftloop_events.envelope import CloudEvent
from driftloop_kit.errors import NotFound
from driftloop_kit.model_files import ARTIFACTS
from driftloop_registry.domain.events import DESCRIPTION_CHANGED, TAGS_CHANGED, version_updated
from driftloop_registry.domain.model import (
    ModelFile,
    ModelVersion,
    Stage,
    StoredVersion,
    now_ms,
)
from driftloop_registry.domain.search import Search
from driftloop_registry.domain.validation import validate_stage, validate_tag, validate_version
from driftloop_registry.service_layer.ports import ModelFilesPort
from driftloop_registry.service_layer.stores import Stores


class ModelVersions:
    """The versions of registered models.

    Args:
        stores: The registry's state.
        files: The versions' model files.
        base_url: The URL clients reach the registry at (for download URIs).
    """

    def __init__(self, *, stores: Stores, files: ModelFilesPort, base_url: str) -> None:
        self.stores = stores
        self.files = files
        self.base_url = base_url.rstrip("/")

    async def stored(
        self,
        session: AsyncSession,
        name: str,
        *,
        version: str | int | None = None,
        alias: str | None = None,
    ) -> StoredVersion:
        """A version by number or by the alias naming it.

        Raises:
            NotFound: If the model, version or alias does not exist.
            InvalidInput: If ``version`` is not a positive integer.
        """
        store = self.stores.store
        if alias is not None:
            model = await store.model(session, name)
            number = await store.alias_target(session, model, alias)
            if number is None:
                raise NotFound(f"Registered model alias {alias} not found.")
        else:
            number = validate_version(version)
            model = await store.model(session, name)
        return await store.version(session, model, number)

    async def get(self, name: str, version: str | int) -> ModelVersion:
        """A version with its lineage and file checksums.

        Raises:
            NotFound: If the model or version does not exist.
            InvalidInput: If ``version`` is not a positive integer.
        """
        async with self.stores.database.session() as session:
            stored = await self.stored(session, name, version=version)
            files = await self.stores.store.files(session, stored.storage_key)
        return stored.entity.model_copy(update={"files": files})

    async def by_alias(self, name: str, alias: str) -> ModelVersion:
        """The version an alias points to, with its lineage and file checksums.

        Raises:
            NotFound: If the model or the alias does not exist.
        """
        async with self.stores.database.session() as session:
            stored = await self.stored(session, name, alias=alias)
            files = await self.stores.store.files(session, stored.storage_key)
        return stored.entity.model_copy(update={"files": files})

    async def search(self, search: Search) -> tuple[list[ModelVersion], str | None]:
        """One page of versions matching ``search``, and the next page's token."""
        async with self.stores.database.session() as session:
            keys = await self.stores.store.matching_versions(session, search)
            has_more = len(keys) > search.max_results
            versions = await self.stores.store.model_versions(session, keys[: search.max_results])
        return versions, search.next_page_token(has_more)

    async def download_uri(
        self, name: str, version: str | int, *, base_url: str | None = None
    ) -> str:
        """Where the mlflow client downloads a version's files: this registry.

        ``base_url`` is where the asking client reached the registry (see
        :mod:`driftloop_kit.public_urls`); by default the configured ``base_url``.
        """
        async with self.stores.database.session() as session:
            stored = await self.stored(session, name, version=version)
        return self.download_uri_of(stored.storage_key, base_url=base_url)

    def download_uri_of(self, storage_key: str, *, base_url: str | None = None) -> str:
        """The URI of a version's files in this registry, as reached at ``base_url``.

        ``mlflow-artifacts://<host:port>/<key>``, which the mlflow client resolves to
        this registry's artifact proxy; when the registry sits under a path prefix or
        behind https (which that form cannot say), the proxy's own
        ``<base>/api/2.0/mlflow-artifacts/artifacts/<key>`` URL.
        """
        parts = urlsplit((base_url or self.base_url).rstrip("/"))
        if parts.path or parts.scheme == "https":
            return f"{parts.scheme}://{parts.netloc}{parts.path}{ARTIFACTS}/{storage_key}"
        return f"mlflow-artifacts://{parts.netloc}/{storage_key}"

    async def stored_file(self, storage_key: str, path: str) -> ModelFile | None:
        """The recorded checksum of one file of a version, if it is one."""
        async with self.stores.database.session() as session:
            return await self.stores.store.file(session, storage_key, path)

    async def stored_files(self, storage_key: str) -> list[ModelFile] | None:
        """Every recorded file of a version; ``None`` if no version has that key."""
        async with self.stores.database.session() as session:
            if not await self.stores.store.has_storage_key(session, storage_key):
                return None
            return await self.stores.store.files(session, storage_key)

    async def update(
        self, *, name: str, version: str | int, description: str | None
    ) -> ModelVersion:
        """Change a version's description."""
        return await self._change(name, version, [DESCRIPTION_CHANGED], description=description)

    async def set_tag(self, *, name: str, version: str | int, key: str, value: str) -> None:
        """Set (or overwrite) a version's tag."""
        validate_tag(key, value)
        await self._change(name, version, [TAGS_CHANGED], tags=(key, value))

    async def delete_tag(self, *, name: str, version: str | int, key: str) -> None:
        """Remove a version's tag.

        Raises:
            NotFound: If the version has no such tag.
        """
        await self._change(name, version, [TAGS_CHANGED], tags=(key, None))

    async def _change(
        self,
        name: str,
        version: str | int,
        changed: Sequence[Any],
        *,
        tags: tuple[str, str | None] | None = None,
        **values: Any,
    ) -> ModelVersion:
        """Apply one change to a version and publish ``model_version.updated``."""
        number = validate_version(version)
        store = self.stores.store
        async with self.stores.database.session() as session:
            model = await store.model(session, name)
            stored = await store.version(session, model, number)
            if tags is not None:
                key, value = tags
                if value is not None:
                    await store.set_version_tag(session, stored, key, value)
                elif not await store.delete_version_tag(session, stored, key):
                    raise NotFound(
                        f"No tag with name: {key} on model version (name={name}, version={number})."
                    )
            await store.update_version(session, stored, now=now_ms(), **values)
            entity = (await store.version(session, model, number)).entity
            if changed:
                await self.stores.outbox.add(
                    session, CloudEvent.new(version_updated(entity, changed))
                )
        return entity

    async def transition_stage(
        self, *, name: str, version: str | int, stage: str, archive_existing: bool = False
    ) -> ModelVersion:
        """MLflow's legacy stage transition, for clients that still use stages.

        With ``archive_existing``, other versions in the target stage move to ``Archived``.
        """
        target = validate_stage(stage)
        number = validate_version(version)
        if archive_existing and target in (Stage.STAGING, Stage.PRODUCTION):
            async with self.stores.database.session() as session:
                stored = await self.stored(session, name, version=number)
                await self.stores.store.archive_stage(session, stored, target, now=now_ms())
        return await self._change(name, number, [], current_stage=target.value)

    async def delete(self, *, name: str, version: str | int) -> None:
        """Delete a version, its tags, files and the aliases pointing to it.

        Its number is never given to another version.
        """
        number = validate_version(version)
        store = self.stores.store
        async with self.stores.database.session() as session:
            model = await store.model(session, name)
            stored = await store.version(session, model, number)
            await self.stores.drop_aliases(session, model, version=number)
            await store.delete_version(session, stored)
            await store.update_model(session, model, now=now_ms())
        await self.files.remove(stored.storage_key)
