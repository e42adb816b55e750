"""The registry's tables in SQL: registered models, versions, tags, aliases, file records.

Every method works in the session it is given, so a use case puts a change, its
outbox events and its lineage log rows in one transaction.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from driftloop_kit.errors import AlreadyExists, Conflict, NotFound
from driftloop_registry.adapters import search_sql
from driftloop_registry.adapters.tables import (
    model_version_files,
    model_version_tags,
    model_versions,
    registered_model_aliases,
    registered_model_tags,
    registered_models,
)
from driftloop_registry.domain.model import (
    Alias,
    Lineage,
    ModelFile,
    ModelVersion,
    RegisteredModel,
    Stage,
    StoredModel,
    StoredVersion,
    Tag,
    VersionStatus,
)
from driftloop_registry.domain.search import Search


def _model_not_found(name: str) -> NotFound:
    return NotFound(f"Registered Model with name={name} not found")


def _stored_lineage(lineage: Lineage) -> dict[str, Any]:
    # Through JSON text, so NaN metrics are stored as "NaN" (PostgreSQL's json has no NaN).
    stored: dict[str, Any] = json.loads(lineage.model_dump_json())
    return stored


class RegistryStore:
    """Registry state in the service's database (no transactions of its own)."""

    # -- reading ------------------------------------------------------------------------

    async def _model_row(self, session: AsyncSession, name: str) -> Any:
        row = (
            await session.execute(select(registered_models).where(registered_models.c.name == name))
        ).one_or_none()
        if row is None:
            raise _model_not_found(name)
        return row

    async def model(self, session: AsyncSession, name: str) -> StoredModel:
        """A registered model's id by name.

        Raises:
            NotFound: If there is no such model.
        """
        row = await self._model_row(session, name)
        return StoredModel(id=row.id, name=row.name)

    async def version(
        self, session: AsyncSession, model: StoredModel, number: int
    ) -> StoredVersion:
        """A version with its tags, aliases and lineage (not its files).

        Raises:
            NotFound: If the model has no such version.
        """
        row = (
            await session.execute(
                select(model_versions).where(
                    model_versions.c.model_id == model.id, model_versions.c.version == number
                )
            )
        ).one_or_none()
        if row is None:
            raise NotFound(f"Model Version (name={model.name}, version={number}) not found")
        entity = (await self._versions(session, [row], {model.id: model.name}))[0]
        return StoredVersion(model_id=model.id, storage_key=row.storage_key, entity=entity)

    async def _versions(
        self, session: AsyncSession, rows: Sequence[Any], names: Mapping[int, str]
    ) -> list[ModelVersion]:
        """Entities of version rows, with their tags and aliases (two queries in all)."""
        if not rows:
            return []
        model_ids = {row.model_id for row in rows}
        tags: dict[tuple[int, int], list[Tag]] = {}
        for tag in await session.execute(
            select(model_version_tags).where(model_version_tags.c.model_id.in_(model_ids))
        ):
            tags.setdefault((tag.model_id, tag.version), []).append(
                Tag(key=tag.key, value=tag.value)
            )
        aliases: dict[tuple[int, int], list[str]] = {}
        for alias in await session.execute(
            select(registered_model_aliases).where(
                registered_model_aliases.c.model_id.in_(model_ids)
            )
        ):
            aliases.setdefault((alias.model_id, alias.version), []).append(alias.alias)
        return [
            ModelVersion(
                name=names[row.model_id],
                version=str(row.version),
                creation_timestamp=row.creation_timestamp,
                last_updated_timestamp=row.last_updated_timestamp,
                user_id=row.user_id,
                current_stage=row.current_stage,
                description=row.description,
                source=row.source,
                run_id=row.run_id,
                status=VersionStatus(row.status),
                status_message=row.status_message,
                tags=sorted(tags.get((row.model_id, row.version), []), key=lambda t: t.key),
                run_link=row.run_link,
                aliases=sorted(aliases.get((row.model_id, row.version), [])),
                model_id=row.logged_model_id,
                lineage=Lineage.model_validate(row.lineage),
            )
            for row in rows
        ]

    async def _models(self, session: AsyncSession, rows: Sequence[Any]) -> list[RegisteredModel]:
        """Entities of model rows with tags, aliases and the latest version per stage."""
        if not rows:
            return []
        ids = [row.id for row in rows]
        names = {row.id: row.name for row in rows}
        tags: dict[int, list[Tag]] = {}
        for tag in await session.execute(
            select(registered_model_tags).where(registered_model_tags.c.model_id.in_(ids))
        ):
            tags.setdefault(tag.model_id, []).append(Tag(key=tag.key, value=tag.value))
        aliases: dict[int, list[Alias]] = {}
        for alias in await session.execute(
            select(registered_model_aliases).where(registered_model_aliases.c.model_id.in_(ids))
        ):
            aliases.setdefault(alias.model_id, []).append(
                Alias(alias=alias.alias, version=str(alias.version))
            )
        latest_numbers = (
            select(
                model_versions.c.model_id,
                model_versions.c.current_stage,
                func.max(model_versions.c.version).label("version"),
            )
            .where(model_versions.c.model_id.in_(ids))
            .group_by(model_versions.c.model_id, model_versions.c.current_stage)
            .subquery()
        )
        latest_rows = (
            await session.execute(
                select(model_versions).join(
                    latest_numbers,
                    (model_versions.c.model_id == latest_numbers.c.model_id)
                    & (model_versions.c.version == latest_numbers.c.version),
                )
            )
        ).all()
        latest: dict[int, list[ModelVersion]] = {}
        for row, version in zip(
            latest_rows, await self._versions(session, latest_rows, names), strict=True
        ):
            latest.setdefault(row.model_id, []).append(version.model_copy(update={"lineage": None}))
        return [
            RegisteredModel(
                name=row.name,
                creation_timestamp=row.creation_timestamp,
                last_updated_timestamp=row.last_updated_timestamp,
                user_id=row.user_id,
                description=row.description,
                latest_versions=sorted(latest.get(row.id, []), key=lambda v: int(v.version)),
                tags=sorted(tags.get(row.id, []), key=lambda t: t.key),
                aliases=sorted(aliases.get(row.id, []), key=lambda a: a.alias),
            )
            for row in rows
        ]

    async def registered_model(self, session: AsyncSession, name: str) -> RegisteredModel:
        """A registered model by name, with tags, aliases and latest versions.

        Raises:
            NotFound: If there is no such model.
        """
        return (await self._models(session, [await self._model_row(session, name)]))[0]

    async def registered_models(
        self, session: AsyncSession, ids: Sequence[int]
    ) -> list[RegisteredModel]:
        """Registered models by internal id, in the order given (for search pages)."""
        rows = (
            await session.execute(select(registered_models).where(registered_models.c.id.in_(ids)))
        ).all()
        by_id = {row.id: row for row in rows}
        return await self._models(session, [by_id[i] for i in ids if i in by_id])

    async def model_versions(
        self, session: AsyncSession, keys: Sequence[tuple[int, int]]
    ) -> list[ModelVersion]:
        """Versions by ``(model id, version)``, in the order given, without lineage."""
        if not keys:
            return []
        model_ids = {model_id for model_id, _ in keys}
        names = dict(
            (
                await session.execute(
                    select(registered_models.c.id, registered_models.c.name).where(
                        registered_models.c.id.in_(model_ids)
                    )
                )
            ).all()
        )
        rows = (
            await session.execute(
                select(model_versions).where(model_versions.c.model_id.in_(model_ids))
            )
        ).all()
        by_key = {(row.model_id, row.version): row for row in rows}
        found = [by_key[key] for key in keys if key in by_key]
        versions = await self._versions(session, found, names)
        return [version.model_copy(update={"lineage": None}) for version in versions]

    async def matching_models(self, session: AsyncSession, search: Search) -> list[int]:
        """Ids of the models on ``search``'s page, and one more if there is a next page."""
        return await search_sql.matching_models(session, search)

    async def matching_versions(
        self, session: AsyncSession, search: Search
    ) -> list[tuple[int, int]]:
        """``(model id, version)`` on ``search``'s page, and one more if there is a next."""
        return await search_sql.matching_versions(session, search)

    async def alias_target(
        self, session: AsyncSession, model: StoredModel, alias: str, *, lock: bool = False
    ) -> int | None:
        """The version ``alias`` points to; with ``lock``, the alias row stays locked."""
        query = select(registered_model_aliases.c.version).where(
            registered_model_aliases.c.model_id == model.id,
            registered_model_aliases.c.alias == alias,
        )
        version: int | None = await session.scalar(query.with_for_update() if lock else query)
        return version

    async def files(self, session: AsyncSession, storage_key: str) -> list[ModelFile]:
        """The recorded files of a version, by path."""
        rows = await session.execute(
            select(model_version_files)
            .where(model_version_files.c.storage_key == storage_key)
            .order_by(model_version_files.c.path)
        )
        return [ModelFile(path=r.path, size=r.size, sha256=r.sha256) for r in rows]

    async def file(self, session: AsyncSession, storage_key: str, path: str) -> ModelFile | None:
        """The recorded checksum of one file of a version, if it is one."""
        row = (
            await session.execute(
                select(model_version_files).where(
                    model_version_files.c.storage_key == storage_key,
                    model_version_files.c.path == path,
                )
            )
        ).one_or_none()
        return None if row is None else ModelFile(path=row.path, size=row.size, sha256=row.sha256)

    async def has_storage_key(self, session: AsyncSession, storage_key: str) -> bool:
        """Whether a version keeps its files under ``storage_key``."""
        exists = await session.scalar(
            select(model_versions.c.version).where(model_versions.c.storage_key == storage_key)
        )
        return exists is not None

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
        """Insert a registered model and its tags.

        Raises:
            AlreadyExists: If the name is taken.
        """
        try:
            model_id = (
                await session.execute(
                    insert(registered_models)
                    .values(
                        name=name,
                        description=description,
                        user_id=user_id,
                        creation_timestamp=now,
                        last_updated_timestamp=now,
                        last_version=0,
                    )
                    .returning(registered_models.c.id)
                )
            ).scalar_one()
        except IntegrityError:
            raise AlreadyExists(f"Registered Model (name={name}) already exists.") from None
        if tags:
            await session.execute(
                insert(registered_model_tags),
                [{"model_id": model_id, "key": t.key, "value": t.value} for t in tags],
            )

    async def update_model(
        self, session: AsyncSession, model: StoredModel, *, now: int, **values: Any
    ) -> None:
        """Change a model's columns (``name``, ``description``) and its update time.

        Raises:
            AlreadyExists: If a new name is taken.
        """
        try:
            await session.execute(
                update(registered_models)
                .where(registered_models.c.id == model.id)
                .values(last_updated_timestamp=now, **values)
            )
        except IntegrityError:
            raise AlreadyExists(
                f"Registered Model (name={values.get('name')}) already exists."
            ) from None

    async def set_model_tag(
        self, session: AsyncSession, model: StoredModel, key: str, value: str
    ) -> None:
        """Set (or overwrite) a model's tag."""
        await self.delete_model_tag(session, model, key)
        await session.execute(
            insert(registered_model_tags).values(model_id=model.id, key=key, value=value)
        )

    async def delete_model_tag(self, session: AsyncSession, model: StoredModel, key: str) -> bool:
        """Remove a model's tag; False if it had none."""
        result = await session.execute(
            delete(registered_model_tags).where(
                registered_model_tags.c.model_id == model.id,
                registered_model_tags.c.key == key,
            )
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def delete_model(self, session: AsyncSession, model: StoredModel) -> list[str]:
        """Delete a model with its versions, tags and file records; its versions' keys.

        Its aliases must be deleted first (each is announced).
        """
        keys = list(
            await session.scalars(
                select(model_versions.c.storage_key).where(model_versions.c.model_id == model.id)
            )
        )
        await session.execute(
            delete(model_version_files).where(model_version_files.c.storage_key.in_(keys))
        )
        for table in (model_version_tags, registered_model_tags):
            await session.execute(delete(table).where(table.c.model_id == model.id))
        await session.execute(delete(model_versions).where(model_versions.c.model_id == model.id))
        await session.execute(delete(registered_models).where(registered_models.c.id == model.id))
        return keys

    # -- versions -----------------------------------------------------------------------

    async def next_version(self, session: AsyncSession, model: StoredModel, now: int) -> int:
        """Take the model's next version number (never given twice).

        One statement takes the number and locks the model row until commit.
        """
        number: int = (
            await session.execute(
                update(registered_models)
                .where(registered_models.c.id == model.id)
                .values(
                    last_version=registered_models.c.last_version + 1,
                    last_updated_timestamp=now,
                )
                .returning(registered_models.c.last_version)
            )
        ).scalar_one()
        return number

    async def add_version(
        self,
        session: AsyncSession,
        model: StoredModel,
        version: ModelVersion,
        *,
        storage_key: str,
        files: Sequence[ModelFile],
    ) -> None:
        """Insert a version, its tags (the last of each key) and its file records."""
        number = int(version.version)
        await session.execute(
            insert(model_versions).values(
                model_id=model.id,
                version=number,
                creation_timestamp=version.creation_timestamp,
                last_updated_timestamp=version.last_updated_timestamp,
                user_id=version.user_id,
                current_stage=version.current_stage,
                description=version.description,
                source=version.source,
                run_id=version.run_id or None,
                run_link=version.run_link,
                status=version.status.value,
                logged_model_id=version.model_id,
                storage_key=storage_key,
                lineage=_stored_lineage(version.lineage or Lineage()),
            )
        )
        if version.tags:
            await session.execute(
                insert(model_version_tags),
                [
                    {"model_id": model.id, "version": number, "key": t.key, "value": t.value}
                    for t in {t.key: t for t in version.tags}.values()
                ],
            )
        await session.execute(
            insert(model_version_files),
            [
                {"storage_key": storage_key, "path": f.path, "size": f.size, "sha256": f.sha256}
                for f in files
            ],
        )

    async def set_version_tag(
        self, session: AsyncSession, version: StoredVersion, key: str, value: str
    ) -> None:
        """Set (or overwrite) a version's tag."""
        await self.delete_version_tag(session, version, key)
        await session.execute(
            insert(model_version_tags).values(
                model_id=version.model_id, version=version.number, key=key, value=value
            )
        )

    async def delete_version_tag(
        self, session: AsyncSession, version: StoredVersion, key: str
    ) -> bool:
        """Remove a version's tag; False if it had none."""
        result = await session.execute(
            delete(model_version_tags).where(
                model_version_tags.c.model_id == version.model_id,
                model_version_tags.c.version == version.number,
                model_version_tags.c.key == key,
            )
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def update_version(
        self, session: AsyncSession, version: StoredVersion, *, now: int, **values: Any
    ) -> None:
        """Change a version's columns (``description``, ``current_stage``) and update time."""
        await session.execute(
            update(model_versions)
            .where(
                model_versions.c.model_id == version.model_id,
                model_versions.c.version == version.number,
            )
            .values(last_updated_timestamp=now, **values)
        )

    async def archive_stage(
        self, session: AsyncSession, version: StoredVersion, stage: Stage, *, now: int
    ) -> None:
        """Move the model's other versions in ``stage`` to ``Archived``."""
        await session.execute(
            update(model_versions)
            .where(
                model_versions.c.model_id == version.model_id,
                model_versions.c.version != version.number,
                model_versions.c.current_stage == stage.value,
            )
            .values(current_stage=Stage.ARCHIVED.value, last_updated_timestamp=now)
        )

    async def delete_version(self, session: AsyncSession, version: StoredVersion) -> None:
        """Delete a version with its tags and file records (its aliases go first)."""
        await session.execute(
            delete(model_version_tags).where(
                model_version_tags.c.model_id == version.model_id,
                model_version_tags.c.version == version.number,
            )
        )
        await session.execute(
            delete(model_version_files).where(
                model_version_files.c.storage_key == version.storage_key
            )
        )
        await session.execute(
            delete(model_versions).where(
                model_versions.c.model_id == version.model_id,
                model_versions.c.version == version.number,
            )
        )

    # -- aliases ------------------------------------------------------------------------

    async def set_alias(
        self, session: AsyncSession, model: StoredModel, alias: str, number: int, *, new: bool
    ) -> None:
        """Point ``alias`` at version ``number`` (``new``: the alias does not exist yet)."""
        if new:
            try:
                await session.execute(
                    insert(registered_model_aliases).values(
                        model_id=model.id, alias=alias, version=number
                    )
                )
            except IntegrityError:
                # Another writer created the alias since it was read as missing.
                raise Conflict(
                    f"alias {alias!r} of {model.name!r} was set by another writer; not moved"
                ) from None
        else:
            await session.execute(
                update(registered_model_aliases)
                .where(
                    registered_model_aliases.c.model_id == model.id,
                    registered_model_aliases.c.alias == alias,
                )
                .values(version=number)
            )

    async def delete_aliases(
        self,
        session: AsyncSession,
        model: StoredModel,
        *,
        version: int | None = None,
        alias: str | None = None,
    ) -> list[Alias]:
        """Delete a model's aliases (all, those of one version, or one); those deleted."""
        where = [registered_model_aliases.c.model_id == model.id]
        if version is not None:
            where.append(registered_model_aliases.c.version == version)
        if alias is not None:
            where.append(registered_model_aliases.c.alias == alias)
        dropped = (await session.execute(select(registered_model_aliases).where(*where))).all()
        if dropped:
            await session.execute(delete(registered_model_aliases).where(*where))
        return [Alias(alias=row.alias, version=str(row.version)) for row in dropped]
