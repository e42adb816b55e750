"""Registered models: names with tags, a description, aliases and versions."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from driftloop_kit.errors import NotFound
from driftloop_registry.domain.model import ModelVersion, RegisteredModel, Tag, now_ms
from driftloop_registry.domain.search import Search
from driftloop_registry.domain.validation import validate_model_name, validate_stage, validate_tag
from driftloop_registry.service_layer.ports import ModelFilesPort
from driftloop_registry.service_layer.stores import Stores


class RegisteredModels:
    """The registry's model names.

    Args:
        stores: The registry's state.
        files: The versions' model files (removed with a deleted model).
    """

    def __init__(self, *, stores: Stores, files: ModelFilesPort) -> None:
        self.stores = stores
        self.files = files

    async def create(
        self,
        *,
        name: str,
        tags: Iterable[Tag] = (),
        description: str | None = None,
        user_id: str | None = None,
    ) -> RegisteredModel:
        """Register a model name.

        Raises:
            AlreadyExists: If the name is taken (409 ``RESOURCE_ALREADY_EXISTS``).
            InvalidInput: On a bad name or tag.
        """
        validate_model_name(name)
        tags = list(tags)
        for tag in tags:
            validate_tag(tag.key, tag.value)
        async with self.stores.database.session() as session:
            await self.stores.store.add_model(
                session,
                name=name,
                tags=tags,
                description=description,
                user_id=user_id,
                now=now_ms(),
            )
        return await self.get(name)

    async def get(self, name: str) -> RegisteredModel:
        """A registered model by name.

        Raises:
            NotFound: If there is no such model.
        """
        validate_model_name(name)
        async with self.stores.database.session() as session:
            return await self.stores.store.registered_model(session, name)

    async def search(self, search: Search) -> tuple[list[RegisteredModel], str | None]:
        """One page of registered models matching ``search``, and the next page's token."""
        async with self.stores.database.session() as session:
            ids = await self.stores.store.matching_models(session, search)
            has_more = len(ids) > search.max_results
            models = await self.stores.store.registered_models(session, ids[: search.max_results])
        return models, search.next_page_token(has_more)

    async def latest_versions(self, name: str, stages: Sequence[str] = ()) -> list[ModelVersion]:
        """The newest version in each stage (all stages when none is given)."""
        wanted = {validate_stage(stage).value for stage in stages}
        model = await self.get(name)
        return [
            version
            for version in model.latest_versions
            if not wanted or version.current_stage in wanted
        ]

    async def rename(self, *, name: str, new_name: str) -> RegisteredModel:
        """Rename a model; its versions, aliases and lineage log follow.

        Raises:
            NotFound: If there is no such model.
            AlreadyExists: If ``new_name`` is taken.
        """
        validate_model_name(new_name, "new_name")
        async with self.stores.database.session() as session:
            model = await self.stores.store.model(session, name)
            await self.stores.store.update_model(session, model, now=now_ms(), name=new_name)
            await self.stores.log.rename_model(session, name=name, new_name=new_name)
        return await self.get(new_name)

    async def update(self, *, name: str, description: str | None) -> RegisteredModel:
        """Change a model's description."""
        async with self.stores.database.session() as session:
            model = await self.stores.store.model(session, name)
            await self.stores.store.update_model(
                session, model, now=now_ms(), description=description
            )
        return await self.get(name)

    async def delete(self, name: str) -> None:
        """Delete a model with all its versions, tags, aliases, files and lineage log.

        Every alias it had is announced deleted, so serving stops loading it.
        """
        async with self.stores.database.session() as session:
            model = await self.stores.store.model(session, name)
            await self.stores.drop_aliases(session, model)
            keys = await self.stores.store.delete_model(session, model)
            await self.stores.log.forget_model(session, model.name)
        for key in keys:
            await self.files.remove(key)

    async def set_tag(self, *, name: str, key: str, value: str) -> None:
        """Set (or overwrite) a model's tag."""
        validate_tag(key, value)
        async with self.stores.database.session() as session:
            model = await self.stores.store.model(session, name)
            await self.stores.store.set_model_tag(session, model, key, value)
            await self.stores.store.update_model(session, model, now=now_ms())

    async def delete_tag(self, *, name: str, key: str) -> None:
        """Remove a model's tag (removing a missing tag is a 404, as in MLflow)."""
        async with self.stores.database.session() as session:
            model = await self.stores.store.model(session, name)
            if not await self.stores.store.delete_model_tag(session, model, key):
                raise NotFound(f"No tag with name: {key} on registered model {name}.")
            await self.stores.store.update_model(session, model, now=now_ms())
