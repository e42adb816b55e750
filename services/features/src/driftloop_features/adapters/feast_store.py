"""Feast behind one object: the repo, its stores, and the calls the service makes.

Every method is synchronous (Feast is); the entrypoints call the slow ones in a
worker thread. Errors a client caused are raised as the kit's ``InvalidInput`` and
``NotFound`` so the HTTP layer answers 4xx with Feast's message.
"""

from __future__ import annotations

import logging
import shutil
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd  # type: ignore[import-untyped]
import pyarrow as pa
import pyarrow.parquet as pq
from feast import (
    Entity,
    FeatureService,
    FeatureStore,
    FeatureView,
    FileSource,
    RepoConfig,
    repo_operations,
)
from feast.data_source import DataSource, PushMode, PushSource
from feast.errors import FeastError
from feast.infra.offline_stores.contrib.postgres_offline_store.postgres_source import (
    PostgreSQLSource,
)
from feast.on_demand_feature_view import OnDemandFeatureView
from feast.project import Project
from feast.repo_contents import RepoContents
from feast.repo_operations import extract_objects_for_apply_delete
from feast.type_map import feast_value_type_to_pa
from feast.value_type import ValueType

from driftloop_features.adapters import (
    feast_internals,
    online_read,
    point_in_time,
    postgres_offline,
    sources,
)
from driftloop_features.adapters.feast_config import (
    DeploymentConfig,
    deployment_config,
    write_feature_store_yaml,
)
from driftloop_features.adapters.online_json import online_response_dict
from driftloop_features.adapters.online_write import EntityKeys, OnlinePlan, OnlineWriter
from driftloop_features.domain.rows import ColumnSpec, Kind, PushSourceSchema
from driftloop_features.settings import FeaturesSettings
from driftloop_kit.errors import InvalidInput, NotFound

__all__ = ["EXAMPLE_REPO", "ApplySummary", "FeastGateway", "feast_errors"]

log = logging.getLogger(__name__)

#: Column added to entity dataframes to give every row back in its place.
ROW_ID = "__driftloop_row"

#: The example repo shipped with the service (the demo model's features).
EXAMPLE_REPO = Path(__file__).resolve().parent.parent / "example_repo"

_KINDS = {
    "INT32": Kind.INT,
    "INT64": Kind.INT,
    "FLOAT": Kind.FLOAT,
    "DOUBLE": Kind.FLOAT,
    "STRING": Kind.STRING,
    "BOOL": Kind.BOOL,
    "BYTES": Kind.BYTES,
    "UNIX_TIMESTAMP": Kind.TIMESTAMP,
}


@dataclass(frozen=True)
class ApplySummary:
    """What an apply changed in the registry."""

    applied: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)


@contextmanager
def feast_errors() -> Iterator[None]:
    """Turn Feast's client-side errors into 4xx errors of the kit."""
    try:
        yield
    except FeastError as error:
        status = error.http_status_code()
        message = str(error)
        if status == 404:
            raise NotFound(message) from error
        if status < 500:
            raise InvalidInput(message) from error
        # Feast marks most lookups of unknown names 500; they are the caller's mistake.
        if "not found" in message.lower() or "does not exist" in message.lower():
            raise NotFound(message) from error
        raise
    except (ValueError, KeyError, TypeError) as error:
        raise InvalidInput(f"{type(error).__name__}: {error}") from error


class FeastGateway:
    """The deployment's Feast repo and feature store.

    Args:
        settings: Where the repo is and which stores it uses.
    """

    def __init__(self, settings: FeaturesSettings) -> None:
        self.settings = settings
        self.repo_path = settings.feast_repo_path.resolve()
        self._deployment: DeploymentConfig | None = None
        self._store: FeatureStore | None = None
        self._schemas: dict[str, PushSourceSchema] = {}
        self._push_views: dict[str, list[FeatureView]] = {}
        self._lock = threading.Lock()
        # Writes share Feast's one SQLite connection: one writer at a time, so that two
        # threads never interleave their statements in one transaction.
        self._write_lock = threading.RLock()
        self._entity_keys: EntityKeys | None = None

    # -- lifecycle -----------------------------------------------------------------

    @property
    def store(self) -> FeatureStore:
        """The Feast ``FeatureStore`` (built on first use)."""
        if self._store is None:
            with self._lock:
                if self._store is None:
                    self._store = self._build_store()
        return self._store

    @property
    def deployment(self) -> DeploymentConfig:
        """The Feast configuration served: the repo's own file or the settings' one."""
        if self._deployment is None:
            self.store  # noqa: B018 - building the store reads the configuration
        assert self._deployment is not None
        return self._deployment

    def _build_store(self) -> FeatureStore:
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.seed_repo()
        deployment = deployment_config(self.settings)
        if deployment.owner == "settings":
            write_feature_store_yaml(self.settings, deployment.config)
        else:
            log.info(
                "serving the repo's own feature_store.yaml",
                extra={"path": str(deployment.path), "overrides": list(deployment.overrides)},
            )
        config = RepoConfig(repo_path=self.repo_path, **deployment.config)
        self._deployment = deployment
        return FeatureStore(repo_path=str(self.repo_path), config=config)

    def tune_online_store(self) -> None:
        """Put a SQLite online store in WAL mode with ``synchronous=NORMAL``.

        Online reads then never wait for an ingestion commit, and a commit does not
        wait for an fsync of the whole journal. The online store is a serving copy that
        materialization rebuilds from the offline store, so losing the last commits on
        a power cut (never corruption) is an acceptable trade.
        """
        store = self.store
        if store.config.online_store.type == "sqlite":
            feast_internals.tune_sqlite_online_store(store)

    def seed_repo(self) -> bool:
        """Copy the example repo into an empty (or missing) repo folder; True if copied."""
        if self.repo_path.exists() and any(self.repo_path.glob("*.py")):
            return False
        self.repo_path.mkdir(parents=True, exist_ok=True)
        for source in EXAMPLE_REPO.glob("*.py"):
            shutil.copy(source, self.repo_path / source.name)
        log.info("seeded the Feast repo with the example", extra={"repo": str(self.repo_path)})
        return True

    def close(self) -> None:
        """Release the stores' connections."""
        store, self._store = self._store, None
        if store is not None:
            feast_internals.close_sqlite_online_store(store)

    # -- the repo ------------------------------------------------------------------

    def load_repo(self) -> RepoContents:
        """Parse the repo with Feast's own ``repo_operations.parse_repo``.

        So ``.feastignore`` is honoured and every object kind Feast knows (label views,
        permissions, projects) is collected, exactly as ``feast apply`` would.
        """
        deployment = self.deployment
        sources.use_offline_store(deployment.offline_kind)
        contents = _parse_repo(self.repo_path)
        project = deployment.project
        if not contents.projects:
            contents.projects.append(Project(name=project, description=""))
        elif [p.name for p in contents.projects] != [project]:
            names = ", ".join(p.name for p in contents.projects)
            raise InvalidInput(
                f"the repo defines project(s) {names}; its feature_store.yaml names {project!r}"
            )
        return contents

    def apply(self) -> ApplySummary:
        """Apply the repo: register its objects, delete those it no longer defines.

        Also creates the offline tables (Parquet files or PostgreSQL tables) that the
        push sources write to, so that the first push finds them.
        """
        store = self.store
        with feast_errors():
            repo = self.load_repo()
            to_apply, to_delete, _, _ = extract_objects_for_apply_delete(  # type: ignore[no-untyped-call]
                store.project, store.registry, repo
            )
            store.apply(to_apply, objects_to_delete=to_delete, partial=False)
            store.refresh_registry()  # type: ignore[no-untyped-call]
            self._prepare_offline_tables()
            self._schemas = self._read_push_schemas()
        return ApplySummary(
            applied=sorted(_describe(o) for o in to_apply),
            deleted=sorted(_describe(o) for o in to_delete),
        )

    def refresh(self) -> None:
        """Re-read the registry (after another replica applied) and the push schemas."""
        self.store.refresh_registry()  # type: ignore[no-untyped-call]
        self._schemas = self._read_push_schemas()

    # -- listing -------------------------------------------------------------------

    def entities(self) -> list[Entity]:
        """Entities of the project."""
        return list(self.store.list_entities(allow_cache=True))

    def feature_views(self) -> list[FeatureView]:
        """Feature views of the project (batch and stream)."""
        store = self.store
        return [
            *store.list_feature_views(allow_cache=True),
            *store.list_stream_feature_views(allow_cache=True),
        ]

    def on_demand_feature_views(self) -> list[OnDemandFeatureView]:
        """On-demand feature views of the project."""
        return list(self.store.list_on_demand_feature_views(allow_cache=True))

    def feature_services(self) -> list[FeatureService]:
        """Feature services of the project."""
        return list(self.store.list_feature_services())

    def data_sources(self) -> list[DataSource]:
        """Data sources of the project."""
        return list(self.store.list_data_sources(allow_cache=True))

    @property
    def push_schemas(self) -> Mapping[str, PushSourceSchema]:
        """What rows of each push source must look like (read at apply or refresh)."""
        if not self._schemas:
            self._schemas = self._read_push_schemas()
        return self._schemas

    # -- online --------------------------------------------------------------------

    def resolve_features(
        self, features: Sequence[str], feature_service: str | None
    ) -> list[str] | FeatureService:
        """The feature references or the feature service a request names."""
        if feature_service:
            with feast_errors():
                return self.store.get_feature_service(feature_service, allow_cache=True)
        if not features:
            raise InvalidInput(
                "name either `features` (view:feature references) or a feature_service"
            )
        return list(features)

    def get_online_features(
        self,
        *,
        features: list[str] | FeatureService,
        entities: Mapping[str, Sequence[Any]],
        full_feature_names: bool = False,
        include_feature_view_version_metadata: bool = False,
    ) -> dict[str, Any]:
        """Online feature values in the JSON shape of ``feast serve``."""
        _check_entities(entities)
        with feast_errors():
            plan = self._read_plan(
                features, entities, full_feature_names, include_feature_view_version_metadata
            )
            if plan is not None:
                return online_read.read_online(self.store, plan, entities)
            response = self.store.get_online_features(
                features=features,
                entity_rows=entities,
                full_feature_names=full_feature_names,
                include_feature_view_version_metadata=include_feature_view_version_metadata,
            )
            return online_response_dict(response.proto)

    async def get_online_features_async(
        self,
        *,
        features: list[str] | FeatureService,
        entities: Mapping[str, Sequence[Any]],
        full_feature_names: bool = False,
        include_feature_view_version_metadata: bool = False,
    ) -> dict[str, Any]:
        """:meth:`get_online_features` without blocking the event loop on network stores.

        Redis is read with Feast's async path; SQLite, a local file read, is read inline,
        which is faster than a hop to a worker thread.
        """
        store = self.store
        if not feast_internals.provider(store).async_supported.online.read:
            return self.get_online_features(
                features=features,
                entities=entities,
                full_feature_names=full_feature_names,
                include_feature_view_version_metadata=include_feature_view_version_metadata,
            )
        _check_entities(entities)
        with feast_errors():
            plan = self._read_plan(
                features, entities, full_feature_names, include_feature_view_version_metadata
            )
            if plan is not None:
                return await online_read.read_online_async(store, plan, entities)
            response = await store.get_online_features_async(
                features=features,
                entity_rows=entities,
                full_feature_names=full_feature_names,
                include_feature_view_version_metadata=include_feature_view_version_metadata,
            )
            return online_response_dict(response.proto)

    def _read_plan(
        self,
        features: list[str] | FeatureService,
        entities: Mapping[str, Sequence[Any]],
        full_feature_names: bool,
        version_metadata: bool,
    ) -> online_read.ReadPlan | None:
        """The fast read's plan (:mod:`.online_read`), None for Feast's own path."""
        if version_metadata or not self.settings.online_fast_path:
            return None
        return online_read.read_plan(
            self.store, features, list(entities), full_feature_names=full_feature_names
        )

    def push(self, push_source_name: str, df: pd.DataFrame, to: str) -> None:
        """Push ``df`` to ``push_source_name`` (``online``, ``offline`` or both)."""
        mode = _push_mode(to)
        schema = self.push_schemas.get(push_source_name)
        if schema is None:
            self.refresh()
            schema = self.push_schemas.get(push_source_name)
        if schema is None:
            known = ", ".join(sorted(self.push_schemas)) or "none"
            raise NotFound(f"push source {push_source_name!r} does not exist (known: {known})")
        with feast_errors(), self._write_lock:
            df = _with_timestamps(df, schema)
            self.store.push(push_source_name, df, allow_registry_cache=True, to=mode)

    def write_online_rows(self, push_source_name: str, rows: Sequence[Mapping[str, Any]]) -> int:
        """Write validated rows straight to the online store of the push source's views.

        What ``push(..., to=ONLINE)`` does, without the DataFrame -> Arrow -> protobuf
        round trip (the shortcut of :mod:`.online_write`): only the latest row of each
        entity in the batch is written, since the online store keeps one value per
        entity; on SQLite and Redis the rows (plain values, checked against the push
        schema) are written as Feast's own store would write them, in one batched
        statement or pipeline, elsewhere they become Feast's protobufs for the
        provider's ``online_write_batch``. Views with column types this path does not
        convert go through ``push``.

        Returns:
            Online rows written (after keeping the latest per entity), over all views.
        """
        store = self.store
        provider = feast_internals.provider(store)
        written = 0
        for view in self._views_of(push_source_name):
            if not view.online or view.batch_source is None:
                continue
            plan = OnlinePlan.of(view)
            if plan is None:
                schema = self.push_schemas[push_source_name]
                frame = pd.DataFrame.from_records(list(rows), columns=schema.frame_columns)
                with feast_errors(), self._write_lock:
                    store.write_to_online_store(view.name, frame, allow_registry_cache=True)
                written += len(rows)
                continue
            if OnlineWriter.covers(provider.online_store, store.config):
                with feast_errors(), self._write_lock:
                    written += self._online_writer(provider).write(view, plan, rows)
                continue
            data = plan.protos(rows)
            with feast_errors(), self._write_lock:
                provider.online_write_batch(store.config, view, data, progress=None)
            written += len(data)
        return written

    def _online_writer(self, provider: Any) -> OnlineWriter:
        config = self.store.config
        keys = self._entity_keys
        if keys is None or keys.version != config.entity_key_serialization_version:
            keys = self._entity_keys = EntityKeys(config.entity_key_serialization_version)
        return OnlineWriter(provider.online_store, config, keys)

    def _views_of(self, push_source_name: str) -> list[FeatureView]:
        views = self._push_views.get(push_source_name)
        if views is None:
            views = [
                view
                for view in self.feature_views()
                if isinstance(view.stream_source, PushSource)
                and view.stream_source.name == push_source_name
            ]
            self._push_views[push_source_name] = views
        return views

    def write_to_online_store(self, feature_view_name: str, df: pd.DataFrame) -> None:
        """Write ``df`` straight to a feature view's online table."""
        with feast_errors():
            view = self.store.get_feature_view(feature_view_name, allow_registry_cache=True)
            batch = view.batch_source
            if batch is not None:
                for column in (batch.timestamp_field, batch.created_timestamp_column):
                    if column and column in df.columns:
                        df = df.assign(**{column: _utc(df[column], column)})
            with self._write_lock:
                self.store.write_to_online_store(feature_view_name, df, allow_registry_cache=True)

    def materialize(
        self, start: datetime, end: datetime, feature_views: list[str] | None
    ) -> dict[str, int]:
        """Materialize ``[start, end)`` into the online store.

        Returns:
            Rows written to the online store, per feature view materialized.
        """
        with feast_errors(), self._counting_online_writes() as counts:
            names = self._materializable(feature_views)
            self.store.materialize(start, end, names)
        return {name: counts.get(name, 0) for name in names}

    def materialize_incremental(
        self, end: datetime, feature_views: list[str] | None
    ) -> dict[str, tuple[datetime | None, int]]:
        """Materialize each view from its last materialization up to ``end``.

        Returns:
            Per view: the start of its range (None when Feast started at the TTL) and
            the rows written to the online store.
        """
        with feast_errors(), self._counting_online_writes() as counts:
            names = self._materializable(feature_views)
            starts = {name: self._last_materialized(name) for name in names}
            self.store.materialize_incremental(end, names)
        return {name: (starts[name], counts.get(name, 0)) for name in names}

    @contextmanager
    def _counting_online_writes(self) -> Iterator[dict[str, int]]:
        """Count the rows this thread writes to the online store, per feature view.

        Feast's materialization reports no row count; the online store's writes are
        counted instead (only those of the calling thread, so concurrent ingestion is
        not counted). One materialization at a time.
        """
        with self._write_lock, feast_internals.counting_online_writes(self.store) as counts:
            yield counts

    def materializable(self, feature_views: list[str] | None) -> list[str]:
        """The views a materialization of ``feature_views`` (None: all) would load.

        Raises:
            NotFound: A named view does not exist.
        """
        with feast_errors():
            return self._materializable(feature_views)

    def _materializable(self, feature_views: list[str] | None) -> list[str]:
        return feast_internals.views_to_materialize(self.store, feature_views)

    def _last_materialized(self, name: str) -> datetime | None:
        view = self.store.get_feature_view(name)
        intervals = view.materialization_intervals
        return intervals[-1][1] if intervals else None

    # -- historical ----------------------------------------------------------------

    def get_historical_features(
        self,
        *,
        entity_df: pd.DataFrame,
        features: list[str] | FeatureService,
        full_feature_names: bool = False,
    ) -> pa.Table:
        """Point-in-time-correct feature values for every row of ``entity_df``, in its order.

        Feast's file offline store leaves out entity rows older than every value of their
        entity, and reorders the rest; the frame returned here has exactly the rows of
        ``entity_df``, in order, with nulls where no value was known at the row's time.
        """
        if entity_df.empty:
            raise InvalidInput("the entity dataframe has no rows")
        if ROW_ID in entity_df.columns:
            raise InvalidInput(f"column name {ROW_ID!r} is reserved")
        numbered = entity_df.assign(**{ROW_ID: range(len(entity_df))})
        with feast_errors(), self._offline_read_guard():
            job = self.store.get_historical_features(
                entity_df=numbered, features=features, full_feature_names=full_feature_names
            )
            found = job.to_df()
        frame = found.set_index(ROW_ID).reindex(range(len(entity_df)))
        for column in entity_df.columns:
            frame[column] = entity_df[column].to_numpy()
        ordered = [*entity_df.columns, *(c for c in frame.columns if c not in entity_df.columns)]
        return pa.Table.from_pandas(frame[ordered].reset_index(drop=True), preserve_index=False)

    def training_frame(
        self,
        *,
        entity_df: pd.DataFrame,
        features: list[str] | FeatureService,
        full_feature_names: bool = False,
    ) -> pa.Table:
        """As :meth:`get_historical_features`, by driftloop's own point-in-time join
        (:mod:`.point_in_time`) where it answers as Feast does, else by Feast's."""
        if entity_df.empty:
            raise InvalidInput("the entity dataframe has no rows")
        with feast_errors(), self._offline_read_guard():
            join_plan = point_in_time.plan(
                self.store, features, full_feature_names=full_feature_names
            )
            frame = point_in_time.join(join_plan, entity_df) if join_plan else None
        if frame is None:
            return self.get_historical_features(
                entity_df=entity_df, features=features, full_feature_names=full_feature_names
            )
        return pa.Table.from_pandas(frame, preserve_index=False)

    # -- internals -----------------------------------------------------------------

    @contextmanager
    def _offline_read_guard(self) -> Iterator[None]:
        """Hold the write lock over a read of a file offline store, else nothing.

        Feast's file offline store appends by rewriting the view's Parquet file in
        place; a historical read that opens it meanwhile finds a truncated file ("file
        size is 0 bytes"), as the demo's first retrain did. A database offline store
        has its own isolation, so its reads do not wait for ingestion.
        """
        if self.store.config.offline_store.type not in ("file", "dask"):
            yield
            return
        with self._write_lock:
            yield

    def _read_push_schemas(self) -> dict[str, PushSourceSchema]:
        self._push_views = {}
        views_by_source: dict[str, list[FeatureView]] = {}
        for view in self.feature_views():
            stream = view.stream_source
            if isinstance(stream, PushSource):
                views_by_source.setdefault(stream.name, []).append(view)
        schemas: dict[str, PushSourceSchema] = {}
        for name, views in views_by_source.items():
            source = views[0].stream_source
            assert isinstance(source, PushSource)
            batch = source.batch_source
            if batch is None:
                continue
            entity_columns: dict[str, ColumnSpec] = {}
            feature_columns: dict[str, ColumnSpec] = {}
            for view in views:
                for column in view.entity_columns:
                    entity_columns.setdefault(column.name, _column(column.name, column.dtype))
                for feature in view.features:
                    feature_columns.setdefault(feature.name, _column(feature.name, feature.dtype))
            schemas[name] = PushSourceSchema(
                name=name,
                entity_columns=tuple(entity_columns.values()),
                feature_columns=tuple(
                    c for n, c in feature_columns.items() if n not in entity_columns
                ),
                timestamp_field=batch.timestamp_field,
                created_field=batch.created_timestamp_column or None,
                feature_views=tuple(sorted(view.name for view in views)),
            )
        return schemas

    def _prepare_offline_tables(self) -> None:
        """Create the Parquet file or PostgreSQL table behind every push source."""
        store = self.store
        for schema in self._read_push_schemas().values():
            view = next(v for v in self.feature_views() if v.name == schema.feature_views[0])
            batch = view.batch_source
            columns = _offline_columns(view, schema, self.feature_views())
            if isinstance(batch, FileSource):
                path = Path(FileSource.get_uri_for_file_path(self.repo_path, batch.path))
                if not path.exists():
                    path.parent.mkdir(parents=True, exist_ok=True)
                    arrow_schema = pa.schema(
                        [(name, _arrow_type(type_name)) for name, type_name in columns]
                    )
                    pq.write_table(arrow_schema.empty_table(), path)
            elif isinstance(batch, PostgreSQLSource) and (
                table := feast_internals.postgres_table(batch)
            ):
                postgres_offline.create_table(
                    store.config,
                    table,
                    columns,
                    schema.timestamp_field,
                )


def _offline_columns(
    view: FeatureView, schema: PushSourceSchema, views: Sequence[FeatureView]
) -> list[tuple[str, str]]:
    """(name, Feast value type name) of every column of a push source's batch source."""
    types: dict[str, str] = {}
    for candidate in views:
        if candidate.stream_source is None or candidate.stream_source.name != schema.name:
            continue
        for column in (*candidate.entity_columns, *candidate.features):
            types.setdefault(column.name, column.dtype.to_value_type().name)
    columns = [(name, types[name]) for name in schema.frame_columns[: len(types)]]
    columns.append((schema.timestamp_field, "UNIX_TIMESTAMP"))
    if schema.created_field:
        columns.append((schema.created_field, "UNIX_TIMESTAMP"))
    return columns


def _arrow_type(type_name: str) -> pa.DataType:
    if type_name == "UNIX_TIMESTAMP":
        return pa.timestamp("us", tz="UTC")
    if type_name == "UNIX_TIMESTAMP_LIST":
        return pa.list_(pa.timestamp("us", tz="UTC"))
    arrow_type: pa.DataType = feast_value_type_to_pa(ValueType[type_name])
    return arrow_type


def _column(name: str, dtype: Any) -> ColumnSpec:
    type_name: str = dtype.to_value_type().name
    is_list = type_name.endswith("_LIST")
    kind = _KINDS.get(type_name.removesuffix("_LIST"))
    if kind is None:
        raise InvalidInput(f"column {name!r} has type {type_name}, which pushes do not support")
    return ColumnSpec(name, kind, is_list)


def _with_timestamps(df: pd.DataFrame, schema: PushSourceSchema) -> pd.DataFrame:
    """``df`` with its event and created time columns as UTC datetimes (JSON gives text)."""
    columns = [schema.timestamp_field, *([schema.created_field] if schema.created_field else [])]
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise InvalidInput(
            f"push source {schema.name!r} needs the time column(s) {', '.join(map(repr, missing))}"
        )
    return df.assign(**{column: _utc(df[column], column) for column in columns})


def _utc(values: pd.Series, column: str) -> pd.Series:
    """``values`` as UTC datetimes: ISO 8601 text (naive means UTC), epoch seconds, datetimes."""
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values
    try:
        if pd.api.types.is_numeric_dtype(values):
            return pd.to_datetime(values, unit="s", utc=True)
        return pd.to_datetime(values, utc=True, format="ISO8601")
    except (ValueError, TypeError, OverflowError) as error:
        raise InvalidInput(f"column {column!r} is not a timestamp: {error}") from error


def _check_entities(entities: Mapping[str, Sequence[Any]]) -> None:
    if not entities:
        raise InvalidInput("entities is empty: give at least one join key and its values")
    lengths = {name: len(values) for name, values in entities.items()}
    if len(set(lengths.values())) > 1:
        raise InvalidInput(f"entity columns have different lengths: {lengths}")


def _push_mode(to: str) -> PushMode:
    modes = {
        "online": PushMode.ONLINE,
        "offline": PushMode.OFFLINE,
        "online_and_offline": PushMode.ONLINE_AND_OFFLINE,
    }
    if to not in modes:
        raise InvalidInput(
            f"{to!r} is not a supported push mode; use one of {', '.join(map(repr, modes))}"
        )
    return modes[to]


#: Feast's parser imports a repo's files by module names, with the repo on
#: ``sys.path``: one parse at a time in a process.
_PARSE_LOCK = threading.Lock()


def _parse_repo(root: Path) -> RepoContents:
    """``feast.repo_operations.parse_repo`` on ``root``, importing its files afresh.

    Feast names a repo file's module by its path relative to the working folder
    (``feast apply`` runs in the repo). The service shares its process, and so its
    working folder, with other threads (and, under ``driftloop up``, other services
    that open relative SQLite paths), so it never changes folder: for the parse, the
    module names are taken relative to ``root`` instead (the names Feast's CLI would
    give) and ``root`` is put first on ``sys.path``, so repo files importing each other
    work as under ``feast apply``. The repo's modules are dropped from ``sys.modules``
    first, so an edited file, or a file of the same name in another repo served
    earlier by this process, is read anew.
    """

    def module_name(path: Path) -> str:
        return ".".join(path.relative_to(root).with_suffix("").parts)

    with _PARSE_LOCK:
        feasts_module_name = repo_operations.py_path_to_module
        repo_operations.py_path_to_module = module_name
        sys.path.insert(0, str(root))
        try:
            for path in repo_operations.get_repo_files(root):
                module = module_name(path)
                for name in [m for m in sys.modules if m == module or m.startswith(module + ".")]:
                    del sys.modules[name]
            try:
                return repo_operations.parse_repo(root)
            except Exception as error:  # the repo's own code: whatever it raises is its error
                raise InvalidInput(f"the Feast repo: {type(error).__name__}: {error}") from error
        finally:
            sys.path.remove(str(root))
            repo_operations.py_path_to_module = feasts_module_name


def _describe(obj: Any) -> str:
    return f"{type(obj).__name__} {getattr(obj, 'name', '?')}"
