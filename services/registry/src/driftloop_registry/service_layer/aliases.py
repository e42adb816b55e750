"""Aliases: named pointers to versions (``champion`` -> 3), announced on every move."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from driftloop_kit.errors import Conflict, InvalidInput, NotFound
from driftloop_registry.domain.events import alias_set
from driftloop_registry.domain.model import EventRef, StoredModel, StoredVersion, now_ms
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
            now = now_ms()
            await self._move(session, model, alias, target, previous, now, cause, user_id)
            await store.update_model(session, model, now=now)

    async def promote(
        self,
        *,
        name: str,
        alias: str,
        version: str | int,
        expected: int | None,
        previous_alias: str | None = None,
        cause: EventRef | None = None,
        user_id: str | None = None,
    ) -> int | None:
        """Move ``alias`` to ``version`` only if it still points to ``expected``, and
        ``previous_alias`` to the version it left, in one transaction.

        The compare-and-set makes a promotion safe with several deciders: of two that
        read the same champion, the second finds it moved and gets a conflict instead
        of overwriting the first's promotion. ``expected`` None means the alias must
        not exist yet. Each alias that moves publishes its ``alias.set``.

        Returns:
            The version ``alias`` pointed to before (``expected``).

        Raises:
            InvalidInput: On a bad alias name or version.
            NotFound: If the model or version does not exist.
            Conflict: If ``alias`` does not point to ``expected``.
        """
        validate_alias(alias)
        if previous_alias is not None:
            validate_alias(previous_alias)
            if previous_alias == alias:
                raise InvalidInput(f"previous_alias must differ from alias {alias!r}")
        number = validate_version(version)
        store = self.stores.store
        async with self.stores.database.session() as session:
            model = await store.model(session, name)
            target = await store.version(session, model, number)
            current = await store.alias_target(session, model, alias, lock=True)
            if current != expected:
                raise Conflict(
                    f"alias {alias!r} of {name!r} points to "
                    f"{'no version' if current is None else f'version {current}'}, "
                    f"not {'no version' if expected is None else f'version {expected}'}; "
                    "not moved"
                )
            if current == number:
                return current
            now = now_ms()
            if previous_alias is not None and current is not None:
                left = await store.version(session, model, current)
                before = await store.alias_target(session, model, previous_alias, lock=True)
                if before != current:
                    await self._move(
                        session, model, previous_alias, left, before, now, cause, user_id
                    )
            await self._move(session, model, alias, target, current, now, cause, user_id)
            await store.update_model(session, model, now=now)
            return current

    async def _move(  # noqa: PLR0917 - the parts of one move, in one place
        self,
        session: AsyncSession,
        model: StoredModel,
        alias: str,
        target: StoredVersion,
        previous: int | None,
        now: int,
        cause: EventRef | None,
        user_id: str | None,
    ) -> None:
        """Point ``alias`` at ``target`` (from ``previous``) and stage its ``alias.set``."""
        await self.stores.store.set_alias(
            session, model, alias, target.number, new=previous is None
        )
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
