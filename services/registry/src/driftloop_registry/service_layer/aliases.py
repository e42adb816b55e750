"""Aliases: named pointers to versions (``champion`` -> 3), announced on every move."""

from __future__ import annotations

from driftloop_kit.errors import NotFound
from driftloop_registry.domain.events import alias_set
from driftloop_registry.domain.model import EventRef, now_ms
from driftloop_registry.domain.validation import validate_alias, validate_version
from driftloop_registry.service_layer.stores import Stores


class Aliases:
    """Sets and deletes aliases; each change stages ``alias.set`` or ``alias.deleted``.

    Args:
        stores: The registry's state.
    """

    def __init__(self, *, stores: Stores) -> None:
        self.stores = stores

    async def set(
        self,
        *,
        name: str,
        alias: str,
        version: str | int,
        cause: EventRef | None = None,
        user_id: str | None = None,
    ) -> None:
        """Point ``alias`` at a version and publish ``alias.set`` with the previous one.

        Setting an alias to the version it already points to changes nothing and
        publishes nothing.

        Raises:
            InvalidInput: On a bad alias name or version.
            NotFound: If the model or version does not exist.
        """
        validate_alias(alias)
        number = validate_version(version)
        store = self.stores.store
        async with self.stores.database.session() as session:
            model = await store.model(session, name)
            target = await store.version(session, model, number)
            previous = await store.alias_target(session, model, alias, lock=True)
            if previous == number:
                return
            await store.set_alias(session, model, alias, number, new=previous is None)
            now = now_ms()
            await store.update_model(session, model, now=now)
            await self.stores.announce(
                session,
                alias_set(
                    target.entity,
                    alias=alias,
                    previous=previous,
                    now=now,
                    cause=cause,
                    user_id=user_id,
                ),
            )

    async def delete(self, *, name: str, alias: str, user_id: str | None = None) -> None:
        """Delete an alias and publish ``alias.deleted``.

        Raises:
            NotFound: If the model or the alias does not exist.
        """
        validate_alias(alias)
        store = self.stores.store
        async with self.stores.database.session() as session:
            model = await store.model(session, name)
            if await store.alias_target(session, model, alias) is None:
                raise NotFound(f"Registered model alias {alias} not found.")
            await self.stores.drop_aliases(session, model, alias=alias, user_id=user_id)
            await store.update_model(session, model, now=now_ms())
