"""The registry store: registered models, versions, tags and aliases, in SQL.

Every change other services act on (a version created or updated, an alias set or
deleted) is written to the outbox in the same transaction, so it is published
exactly when the change is stored. ``alias.set`` carries the version the alias
pointed to before, so serving and the trainer never have to ask.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from driftloop.registry.v1 import events_pb2 as events
from driftloop_bus.outbox import Outbox
from driftloop_events.envelope import CloudEvent
from driftloop_kit.db import Database
from driftloop_kit.errors import AlreadyExists, InvalidInput, NotFound
from driftloop_registry.adapters import lineage_log
from driftloop_registry.adapters.model_files import ModelFiles
from driftloop_registry.adapters.tables import (
    model_version_files,
    model_version_tags,
    model_versions,
    registered_model_aliases,
    registered_model_tags,
    registered_models,
)
from driftloop_registry.adapters.tracking import TrackingClient
from driftloop_registry.domain.lineage import build_lineage
from driftloop_registry.domain.lineage_log import LogEntry, log_entry, version_chain
from driftloop_registry.domain.model import (
    Alias,
    EventRef,
    Lineage,
    LineageEvent,
    ModelFile,
    ModelLineage,
    ModelVersion,
    RegisteredModel,
    Stage,
    Tag,
    VersionStatus,
)
from driftloop_registry.domain.validation import (
    validate_alias,
    validate_model_name,
    validate_tag,
    validate_version,
)

_STATUS = {
    VersionStatus.PENDING_REGISTRATION: events.MODEL_VERSION_STATUS_PENDING_REGISTRATION,
    VersionStatus.FAILED_REGISTRATION: events.MODEL_VERSION_STATUS_FAILED_REGISTRATION,
    VersionStatus.READY: events.MODEL_VERSION_STATUS_READY,
}


def now_ms() -> int:
    """Milliseconds since the epoch, MLflow's time unit."""
    return int(datetime.now(UTC).timestamp() * 1000)


def _timestamp(ms: int) -> Timestamp:
    stamp = Timestamp()
    stamp.FromMilliseconds(ms)
    return stamp


def _model_not_found(name: str) -> NotFound:
    return NotFound(f"Registered Model with name={name} not found")


def _version_not_found(name: str, version: int | str) -> NotFound:
    return NotFound(f"Model Version (name={name}, version={version}) not found")


def _stored_lineage(lineage: Lineage) -> dict[str, Any]:
    # Through JSON text, so NaN metrics are stored as "NaN" (PostgreSQL's json has no NaN).
    stored: dict[str, Any] = json.loads(lineage.model_dump_json())
    return stored


def _registry_source(source: str) -> tuple[str, str] | None:
    """``(name, version-or-@alias)`` of a ``models:/<name>/<version>|@<alias>`` source."""
    parts = urlsplit(source)
    if parts.scheme != "models":
        return None
    rest = (parts.netloc + parts.path).strip("/")
    if "@" in rest:
        name, _, alias = rest.rpartition("@")
        return name, "@" + alias
    if "/" in rest:
        name, _, version = rest.rpartition("/")
        return name, version
    return None  # models:/<model_id>: a logged model in tracking


class RegistryStore:
    """Registry state in the service's database, model files in its artifact store.

    Args:
        database: The service's database.
        outbox: Where registry events go, in the same transaction as the change.
        files: The registered versions' model files.
        tracking: Runs and artifacts that versions are registered from.
        base_url: The URL clients reach the registry at (for download URIs).
    """

    def __init__(
        self,
        *,
        database: Database,
        outbox: Outbox,
        files: ModelFiles,
        tracking: TrackingClient,
        base_url: str,
    ) -> None:
        self.database = database
        self.outbox = outbox
        self.files = files
        self.tracking = tracking
        self.base_url = base_url.rstrip("/")

    # -- reading ------------------------------------------------------------------------

    async def _model_row(self, session: AsyncSession, name: str) -> Any:
        row = (
            await session.execute(select(registered_models).where(registered_models.c.name == name))
        ).one_or_none()
        if row is None:
            raise _model_not_found(name)
        return row

    async def _version_row(self, session: AsyncSession, model: Any, version: int) -> Any:
        row = (
            await session.execute(
                select(model_versions).where(
                    model_versions.c.model_id == model.id, model_versions.c.version == version
                )
            )
        ).one_or_none()
        if row is None:
            raise _version_not_found(model.name, version)
        return row

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

    async def get_registered_model(self, name: str) -> RegisteredModel:
        """A registered model by name.

        Raises:
            NotFound: If there is no such model.
        """
        validate_model_name(name)
        async with self.database.session() as session:
            return (await self._models(session, [await self._model_row(session, name)]))[0]

    async def registered_models_by_id(self, ids: Sequence[int]) -> list[RegisteredModel]:
        """Registered models by internal id, in the order given (for search pages)."""
        async with self.database.session() as session:
            rows = (
                await session.execute(
                    select(registered_models).where(registered_models.c.id.in_(ids))
                )
            ).all()
            by_id = {row.id: row for row in rows}
            return await self._models(session, [by_id[i] for i in ids if i in by_id])

    async def versions_by_key(self, keys: Sequence[tuple[int, int]]) -> list[ModelVersion]:
        """Versions by ``(model id, version)``, in the order given (for search pages)."""
        if not keys:
            return []
        async with self.database.session() as session:
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

    async def get_model_version(self, name: str, version: str | int) -> ModelVersion:
        """A version with its lineage and file checksums.

        Raises:
            NotFound: If the model or version does not exist.
            InvalidInput: If ``version`` is not a positive integer.
        """
        number = validate_version(version)
        async with self.database.session() as session:
            model = await self._model_row(session, name)
            row = await self._version_row(session, model, number)
            entity = (await self._versions(session, [row], {model.id: model.name}))[0]
            files = await self._files(session, row.storage_key)
        return entity.model_copy(update={"files": files})

    async def _files(self, session: AsyncSession, storage_key: str) -> list[ModelFile]:
        rows = await session.execute(
            select(model_version_files)
            .where(model_version_files.c.storage_key == storage_key)
            .order_by(model_version_files.c.path)
        )
        return [ModelFile(path=r.path, size=r.size, sha256=r.sha256) for r in rows]

    async def get_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        """The version an alias points to.

        Raises:
            NotFound: If the model or the alias does not exist.
        """
        async with self.database.session() as session:
            model = await self._model_row(session, name)
            version = await session.scalar(
                select(registered_model_aliases.c.version).where(
                    registered_model_aliases.c.model_id == model.id,
                    registered_model_aliases.c.alias == alias,
                )
            )
        if version is None:
            raise NotFound(f"Registered model alias {alias} not found.")
        return await self.get_model_version(name, version)

    async def get_latest_versions(
        self, name: str, stages: Sequence[str] = ()
    ) -> list[ModelVersion]:
        """The newest version in each stage (all stages when none is given)."""
        wanted = {self._stage(stage).value for stage in stages}
        model = await self.get_registered_model(name)
        return [
            version
            for version in model.latest_versions
            if not wanted or version.current_stage in wanted
        ]

    @staticmethod
    def _stage(value: str) -> Stage:
        try:
            return Stage.parse(value)
        except ValueError:
            raise InvalidInput(
                f"Invalid Model Version stage: {value}. Value must be one of "
                f"{', '.join(stage.value for stage in Stage)}."
            ) from None

    async def download_uri(self, name: str, version: str | int) -> str:
        """Where the mlflow client downloads a version's files: this registry."""
        number = validate_version(version)
        async with self.database.session() as session:
            model = await self._model_row(session, name)
            row = await self._version_row(session, model, number)
        return self.download_uri_of(row.storage_key)

    def download_uri_of(self, storage_key: str) -> str:
        """The ``mlflow-artifacts://`` URI of a version's files in this registry."""
        return f"mlflow-artifacts://{urlsplit(self.base_url).netloc}/{storage_key}"

    async def stored_file(self, storage_key: str, path: str) -> ModelFile | None:
        """The recorded checksum of one file of a version, if it is one."""
        async with self.database.session() as session:
            row = (
                await session.execute(
                    select(model_version_files).where(
                        model_version_files.c.storage_key == storage_key,
                        model_version_files.c.path == path,
                    )
                )
            ).one_or_none()
        return None if row is None else ModelFile(path=row.path, size=row.size, sha256=row.sha256)

    async def stored_files(self, storage_key: str) -> list[ModelFile] | None:
        """Every recorded file of a version; ``None`` if no version has that key."""
        async with self.database.session() as session:
            exists = await session.scalar(
                select(model_versions.c.version).where(model_versions.c.storage_key == storage_key)
            )
            if exists is None:
                return None
            return await self._files(session, storage_key)

    # -- registered models --------------------------------------------------------------

    async def create_registered_model(
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
        now = now_ms()
        async with self.database.session() as session:
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
            await session.commit()
        return await self.get_registered_model(name)

    async def rename_registered_model(self, *, name: str, new_name: str) -> RegisteredModel:
        """Rename a model; its versions and aliases follow.

        Raises:
            NotFound: If there is no such model.
            AlreadyExists: If ``new_name`` is taken.
        """
        validate_model_name(new_name, "new_name")
        async with self.database.session() as session:
            model = await self._model_row(session, name)
            try:
                await session.execute(
                    update(registered_models)
                    .where(registered_models.c.id == model.id)
                    .values(name=new_name, last_updated_timestamp=now_ms())
                )
            except IntegrityError:
                raise AlreadyExists(f"Registered Model (name={new_name}) already exists.") from None
            await lineage_log.rename_model(session, name=name, new_name=new_name)
            await session.commit()
        return await self.get_registered_model(new_name)

    async def update_registered_model(
        self, *, name: str, description: str | None
    ) -> RegisteredModel:
        """Change a model's description."""
        async with self.database.session() as session:
            model = await self._model_row(session, name)
            await session.execute(
                update(registered_models)
                .where(registered_models.c.id == model.id)
                .values(description=description, last_updated_timestamp=now_ms())
            )
            await session.commit()
        return await self.get_registered_model(name)

    async def delete_registered_model(self, name: str) -> None:
        """Delete a model with all its versions, tags, aliases and files.

        Every alias it had is announced deleted, so serving stops loading it.
        """
        async with self.database.session() as session:
            model = await self._model_row(session, name)
            keys = list(
                await session.scalars(
                    select(model_versions.c.storage_key).where(
                        model_versions.c.model_id == model.id
                    )
                )
            )
            await self._drop_aliases(session, model, None)
            await session.execute(
                delete(model_version_files).where(model_version_files.c.storage_key.in_(keys))
            )
            for table in (model_version_tags, registered_model_tags):
                await session.execute(delete(table).where(table.c.model_id == model.id))
            await session.execute(
                delete(model_versions).where(model_versions.c.model_id == model.id)
            )
            await session.execute(
                delete(registered_models).where(registered_models.c.id == model.id)
            )
            await lineage_log.forget_model(session, model.name)
            await session.commit()
        for key in keys:
            await self.files.remove(key)

    async def set_registered_model_tag(self, *, name: str, key: str, value: str) -> None:
        """Set (or overwrite) a model's tag."""
        validate_tag(key, value)
        async with self.database.session() as session:
            model = await self._model_row(session, name)
            await session.execute(
                delete(registered_model_tags).where(
                    registered_model_tags.c.model_id == model.id,
                    registered_model_tags.c.key == key,
                )
            )
            await session.execute(
                insert(registered_model_tags).values(model_id=model.id, key=key, value=value)
            )
            await self._touch_model(session, model.id)
            await session.commit()

    async def delete_registered_model_tag(self, *, name: str, key: str) -> None:
        """Remove a model's tag (removing a missing tag is a 404, as in MLflow)."""
        async with self.database.session() as session:
            model = await self._model_row(session, name)
            result = await session.execute(
                delete(registered_model_tags).where(
                    registered_model_tags.c.model_id == model.id,
                    registered_model_tags.c.key == key,
                )
            )
            if not result.rowcount:  # type: ignore[attr-defined]
                raise NotFound(f"No tag with name: {key} on registered model {name}.")
            await self._touch_model(session, model.id)
            await session.commit()

    async def _announce(self, session: AsyncSession, message: Message) -> None:
        """Publish ``message`` through the outbox and log it, both in ``session``."""
        event = CloudEvent.new(message)
        await self.outbox.add(session, event)
        await lineage_log.record(session, log_entry(event))

    async def _touch_model(self, session: AsyncSession, model_id: int) -> None:
        await session.execute(
            update(registered_models)
            .where(registered_models.c.id == model_id)
            .values(last_updated_timestamp=now_ms())
        )

    # -- versions -----------------------------------------------------------------------

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

        The files are copied before the version row exists, under a key of their
        own; if anything fails, they are removed and nothing is stored.

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
        async with self.database.session() as session:
            await self._model_row(session, name)  # 404 before any copying

        storage_key = uuid.uuid4().hex
        registered = _registry_source(source)
        try:
            if registered is not None:
                origin = await self._resolve_registered(*registered)
                files = await self.files.copy_within(
                    origin.files or [], origin.storage_key, storage_key
                )
                run_id = run_id or origin.version.run_id
            else:
                path, source_run = await self.tracking.resolve(source)
                run_id = run_id or source_run
                files = await self.files.copy_from_tracking(path, storage_key)
            run = await self.tracking.get_run(run_id) if run_id else None
            lineage = build_lineage(run, {tag.key: tag.value for tag in tags})
            version = await self._insert_version(
                name=name,
                source=source,
                run_id=run_id,
                tags=tags,
                run_link=run_link,
                description=description,
                model_id=model_id,
                user_id=user_id,
                storage_key=storage_key,
                files=files,
                lineage=lineage,
            )
        except BaseException:
            await self.files.remove(storage_key)
            raise
        return version

    async def _resolve_registered(self, name: str, ref: str) -> _Origin:
        version = (
            await self.get_version_by_alias(name, ref[1:])
            if ref.startswith("@")
            else await self.get_model_version(name, ref)
        )
        async with self.database.session() as session:
            model = await self._model_row(session, name)
            row = await self._version_row(session, model, int(version.version))
        return _Origin(version=version, storage_key=row.storage_key, files=version.files)

    async def _insert_version(
        self,
        *,
        name: str,
        source: str,
        run_id: str | None,
        tags: list[Tag],
        run_link: str | None,
        description: str | None,
        model_id: str | None,
        user_id: str | None,
        storage_key: str,
        files: list[ModelFile],
        lineage: Lineage,
    ) -> ModelVersion:
        now = now_ms()
        async with self.database.session() as session:
            model = await self._model_row(session, name)
            # One statement takes the next number and locks the model row until commit.
            number = (
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
            await session.execute(
                insert(model_versions).values(
                    model_id=model.id,
                    version=number,
                    creation_timestamp=now,
                    last_updated_timestamp=now,
                    user_id=user_id,
                    current_stage=Stage.NONE.value,
                    description=description,
                    source=source,
                    run_id=run_id or None,
                    run_link=run_link,
                    status=VersionStatus.READY.value,
                    logged_model_id=model_id,
                    storage_key=storage_key,
                    lineage=_stored_lineage(lineage),
                )
            )
            if tags:
                await session.execute(
                    insert(model_version_tags),
                    [
                        {"model_id": model.id, "version": number, "key": t.key, "value": t.value}
                        for t in {t.key: t for t in tags}.values()
                    ],
                )
            await session.execute(
                insert(model_version_files),
                [
                    {"storage_key": storage_key, "path": f.path, "size": f.size, "sha256": f.sha256}
                    for f in files
                ],
            )
            row = await self._version_row(session, model, number)
            version = (await self._versions(session, [row], {model.id: name}))[0]
            version = version.model_copy(update={"files": files})
            await self._announce(session, version_created(version))
            await session.commit()
        return version

    async def update_model_version(
        self, *, name: str, version: str | int, description: str | None
    ) -> ModelVersion:
        """Change a version's description."""
        return await self._change_version(
            name, version, [events.MODEL_VERSION_FIELD_DESCRIPTION], description=description
        )

    async def _change_version(
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
        async with self.database.session() as session:
            model = await self._model_row(session, name)
            await self._version_row(session, model, number)
            where = (model_version_tags.c.model_id == model.id) & (
                model_version_tags.c.version == number
            )
            if tags is not None:
                key, value = tags
                result = await session.execute(
                    delete(model_version_tags).where(where, model_version_tags.c.key == key)
                )
                if value is not None:
                    await session.execute(
                        insert(model_version_tags).values(
                            model_id=model.id, version=number, key=key, value=value
                        )
                    )
                elif not result.rowcount:  # type: ignore[attr-defined]
                    raise NotFound(
                        f"No tag with name: {key} on model version (name={name}, version={number})."
                    )
            await session.execute(
                update(model_versions)
                .where(model_versions.c.model_id == model.id, model_versions.c.version == number)
                .values(last_updated_timestamp=now_ms(), **values)
            )
            row = await self._version_row(session, model, number)
            entity = (await self._versions(session, [row], {model.id: name}))[0]
            if changed:
                await self.outbox.add(session, CloudEvent.new(version_updated(entity, changed)))
            await session.commit()
        return entity

    async def set_model_version_tag(
        self, *, name: str, version: str | int, key: str, value: str
    ) -> None:
        """Set (or overwrite) a version's tag."""
        validate_tag(key, value)
        await self._change_version(
            name, version, [events.MODEL_VERSION_FIELD_TAGS], tags=(key, value)
        )

    async def delete_model_version_tag(self, *, name: str, version: str | int, key: str) -> None:
        """Remove a version's tag."""
        await self._change_version(
            name, version, [events.MODEL_VERSION_FIELD_TAGS], tags=(key, None)
        )

    async def transition_stage(
        self, *, name: str, version: str | int, stage: str, archive_existing: bool = False
    ) -> ModelVersion:
        """MLflow's legacy stage transition, for clients that still use stages.

        With ``archive_existing``, other versions in the target stage move to ``Archived``.
        """
        target = self._stage(stage)
        number = validate_version(version)
        if archive_existing and target in (Stage.STAGING, Stage.PRODUCTION):
            async with self.database.session() as session:
                model = await self._model_row(session, name)
                await self._version_row(session, model, number)
                await session.execute(
                    update(model_versions)
                    .where(
                        model_versions.c.model_id == model.id,
                        model_versions.c.version != number,
                        model_versions.c.current_stage == target.value,
                    )
                    .values(current_stage=Stage.ARCHIVED.value, last_updated_timestamp=now_ms())
                )
                await session.commit()
        return await self._change_version(name, number, [], current_stage=target.value)

    async def delete_model_version(self, *, name: str, version: str | int) -> None:
        """Delete a version, its tags, files and the aliases pointing to it.

        Its number is never given to another version.
        """
        number = validate_version(version)
        async with self.database.session() as session:
            model = await self._model_row(session, name)
            row = await self._version_row(session, model, number)
            await self._drop_aliases(session, model, number)
            await session.execute(
                delete(model_version_tags).where(
                    model_version_tags.c.model_id == model.id,
                    model_version_tags.c.version == number,
                )
            )
            await session.execute(
                delete(model_version_files).where(
                    model_version_files.c.storage_key == row.storage_key
                )
            )
            await session.execute(
                delete(model_versions).where(
                    model_versions.c.model_id == model.id, model_versions.c.version == number
                )
            )
            await self._touch_model(session, model.id)
            await session.commit()
        await self.files.remove(row.storage_key)

    # -- aliases ------------------------------------------------------------------------

    async def set_alias(
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
        async with self.database.session() as session:
            model = await self._model_row(session, name)
            row = await self._version_row(session, model, number)
            where = (registered_model_aliases.c.model_id == model.id) & (
                registered_model_aliases.c.alias == alias
            )
            previous = await session.scalar(
                select(registered_model_aliases.c.version).where(where).with_for_update()
            )
            if previous == number:
                return
            if previous is None:
                await session.execute(
                    insert(registered_model_aliases).values(
                        model_id=model.id, alias=alias, version=number
                    )
                )
            else:
                await session.execute(
                    update(registered_model_aliases).where(where).values(version=number)
                )
            now = now_ms()
            await self._touch_model(session, model.id)
            event = events.AliasSet(
                name=name,
                alias=alias,
                version=number,
                run_id=row.run_id or "",
                source=row.source,
                set_time=_timestamp(now),
                user_id=user_id or "",
            )
            if previous is not None:
                event.previous_version = previous
            if cause is not None:
                _copy_ref(event.cause, cause)
            await self._announce(session, event)
            await session.commit()

    async def delete_alias(self, *, name: str, alias: str, user_id: str | None = None) -> None:
        """Delete an alias and publish ``alias.deleted``.

        Raises:
            NotFound: If the model or the alias does not exist.
        """
        validate_alias(alias)
        async with self.database.session() as session:
            model = await self._model_row(session, name)
            exists = await session.scalar(
                select(registered_model_aliases.c.version).where(
                    registered_model_aliases.c.model_id == model.id,
                    registered_model_aliases.c.alias == alias,
                )
            )
            if exists is None:
                raise NotFound(f"Registered model alias {alias} not found.")
            await self._drop_aliases(session, model, None, only=alias, user_id=user_id)
            await self._touch_model(session, model.id)
            await session.commit()

    async def _drop_aliases(
        self,
        session: AsyncSession,
        model: Any,
        version: int | None,
        *,
        only: str | None = None,
        user_id: str | None = None,
    ) -> None:
        """Delete a model's aliases (of one version, or one alias) and announce each."""
        where = [registered_model_aliases.c.model_id == model.id]
        if version is not None:
            where.append(registered_model_aliases.c.version == version)
        if only is not None:
            where.append(registered_model_aliases.c.alias == only)
        dropped = (await session.execute(select(registered_model_aliases).where(*where))).all()
        if not dropped:
            return
        await session.execute(delete(registered_model_aliases).where(*where))
        stamp = _timestamp(now_ms())
        for row in dropped:
            event = events.AliasDeleted(
                name=model.name,
                alias=row.alias,
                version=row.version,
                delete_time=stamp,
                user_id=user_id or "",
            )
            await self._announce(session, event)

    # -- lineage ------------------------------------------------------------------------

    async def get_lineage(
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
        model = await self.get_registered_model(name)
        entity: ModelVersion | None = None
        if alias is not None:
            entity = await self.get_version_by_alias(name, validate_alias(alias))
        elif version is not None:
            entity = await self.get_model_version(name, version)
        async with self.database.session() as session:
            entries = await lineage_log.model_log(session, name)
        result = ModelLineage(name=name, aliases=model.aliases)
        if entity is None:
            result.events = [_event_view(entry) for entry in entries]
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
        result.events = [_event_view(entry, role) for entry, role in chain]
        return result


def _event_view(entry: LogEntry, role: str | None = None) -> LineageEvent:
    return LineageEvent(
        id=entry.id,
        type=entry.type,
        source=entry.source,
        time=entry.time.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z"),
        version=None if entry.version is None else str(entry.version),
        role=role,
        summary=entry.summary,
    )


class _Origin:
    """A registered version that another version is copied from."""

    def __init__(self, *, version: ModelVersion, storage_key: str, files: list[ModelFile] | None):
        self.version = version
        self.storage_key = storage_key
        self.files = files


def version_created(version: ModelVersion) -> events.ModelVersionCreated:
    """The ``model_version.created`` event of a stored version."""
    lineage = version.lineage or Lineage()
    message = events.ModelVersionCreated(
        name=version.name,
        version=int(version.version),
        source=version.source,
        run_id=version.run_id or "",
        tags={tag.key: tag.value for tag in version.tags},
        description=version.description or "",
        status=_STATUS[version.status],
        create_time=_timestamp(version.creation_timestamp),
        artifact_checksums={file.path: file.sha256 for file in version.files or []},
        user_id=version.user_id or "",
    )
    message.lineage.feature_views.extend(lineage.feature_views)
    message.lineage.dataset_digests.extend(d.digest for d in lineage.datasets if d.digest)
    message.lineage.training_job_id = lineage.training_job_id
    if lineage.triggering_event is not None:
        _copy_ref(message.lineage.triggering_event, lineage.triggering_event)
    return message


def _copy_ref(target: Message, ref: EventRef) -> None:
    target.id, target.type, target.source = ref.id, ref.type, ref.source  # type: ignore[attr-defined]


def version_updated(version: ModelVersion, changed: Sequence[Any]) -> events.ModelVersionUpdated:
    """The ``model_version.updated`` event after a change of ``changed`` fields."""
    return events.ModelVersionUpdated(
        name=version.name,
        version=int(version.version),
        changed_fields=changed,
        description=version.description or "",
        status=_STATUS[version.status],
        tags={tag.key: tag.value for tag in version.tags},
        update_time=_timestamp(version.last_updated_timestamp),
        user_id=version.user_id or "",
    )
