"""Point-in-time join of an entity frame with feature views on Parquet files, in pandas.

What it replaces: ``FeatureStore.get_historical_features(entity_df, features).to_df()``
on Feast's file offline store (``type: file``, Feast's dask store), for a model's
training set (``POST /labels/{model}/training-set``).

Why: Feast's dask store left-merges every entity row with every stored row of its
entity, filters, sorts twice and drops duplicates; for 100,000 labels x 20 features
that takes ~1.2-1.6 s, most of a training set's time. One ``pandas.merge_asof`` per
feature view gives the same values in about a tenth of that (bench/README.md has the
figures).

The rules are those of Feast 0.67.0's dask store. For each feature view, an entity row
gets the values of the latest stored row of its join keys whose event timestamp is
at or before the row's ``event_timestamp`` and, when the view has a TTL, no older
than the TTL; among stored rows of the same event timestamp the one with the latest
created timestamp wins (one without loses); none in reach: nulls. Timestamps without
a zone are UTC.

Where it answers differently, on purpose:

- every entity row is answered, view by view. Feast's dask store drops an entity row
  whose entity has stored rows none of which is in reach (the gateway puts it back,
  with nulls for every view), and keeps one of several entity rows with the same keys
  and time (the others come back null);
- of stored rows with the same event time, the latest created always wins. Feast's
  dask store means that too (it sorts by created, then by event time, and keeps the
  last), but its second sort is not stable, so which one it keeps changes with the
  order of the rows in the file; its SQL stores order by both;
- a stored row without an event timestamp is never joined (Feast joins one when
  nothing else is in reach).

What it leaves to Feast (:func:`plan` returns ``None``): on-demand feature views,
versioned references (``view@v2``), feature services with aliases or join key maps,
field mappings, views without entities, sources other than local Parquet files,
offline stores other than ``file``/``dask``, repeated or colliding feature names. And
:func:`join` returns ``None`` for an entity frame that lacks a join key, has one of
another kind than the stored one, or a column named as a feature, so that Feast
answers (or says what is wrong).

``tests/integration/features/test_features_point_in_time.py`` pins Feast 0.67.0 and
checks that the answers equal Feast's ``get_historical_features`` on the same data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd  # type: ignore[import-untyped]
import pyarrow.parquet as pq
from feast import FeatureService, FeatureStore, FileSource
from feast.errors import FeastError

__all__ = ["TIMESTAMP_COLUMN", "JoinPlan", "ViewJoin", "join", "plan"]

#: The entity frame's time column (Feast's ``DEFAULT_ENTITY_DF_EVENT_TIMESTAMP_COL``).
TIMESTAMP_COLUMN = "event_timestamp"
_STORED_AT = "__driftloop_stored_at"


@dataclass(frozen=True)
class ViewJoin:
    """What one feature view contributes: where its rows are and which columns."""

    name: str
    path: str
    join_keys: tuple[str, ...]
    timestamp_field: str
    created_field: str | None
    features: tuple[str, ...]
    #: The answer's column of each feature (``view__feature`` with full names).
    columns: tuple[str, ...]
    ttl: timedelta | None


@dataclass(frozen=True)
class JoinPlan:
    """The feature views of a request, in Feast's order (first reference first)."""

    views: tuple[ViewJoin, ...]


def _references(features: Sequence[str] | FeatureService) -> list[str] | None:
    if not isinstance(features, FeatureService):
        return list(features)
    refs = []
    for projection in features.feature_view_projections:
        if projection.name_alias or projection.join_key_map:
            return None
        refs += [f"{projection.name}:{field.name}" for field in projection.features]
    return refs


def plan(
    store: FeatureStore, features: Sequence[str] | FeatureService, *, full_feature_names: bool
) -> JoinPlan | None:
    """The join of ``features``, or ``None`` when Feast must answer (see the module)."""
    if store.config.offline_store.type not in ("file", "dask"):
        return None
    refs = _references(features)
    if not refs or len(set(refs)) != len(refs):
        return None
    wanted: dict[str, list[str]] = {}
    for ref in refs:
        view_name, colon, feature = ref.partition(":")
        if not colon or "@" in view_name:
            return None
        wanted.setdefault(view_name, []).append(feature)
    views: list[ViewJoin] = []
    taken: set[str] = set()
    for view_name, names in wanted.items():
        found = _view_join(store, view_name, names, full_feature_names=full_feature_names)
        if found is None or taken & set(found.columns):
            return None
        taken.update(found.columns)
        views.append(found)
    return JoinPlan(tuple(views))


def _view_join(
    store: FeatureStore, view_name: str, names: list[str], *, full_feature_names: bool
) -> ViewJoin | None:
    try:
        view = store.get_feature_view(view_name, allow_registry_cache=True)
    except FeastError:
        return None  # an unknown view: Feast says so
    source = view.batch_source
    if (
        not isinstance(source, FileSource)
        or source.field_mapping
        or source.file_options.s3_endpoint_override
        or "://" in source.path
        or not view.entity_columns
        or not {field.name for field in view.features} >= set(names)
    ):
        return None
    keys = tuple(column.name for column in view.entity_columns)
    created = source.created_timestamp_column or None
    return ViewJoin(
        name=view_name,
        path=FileSource.get_uri_for_file_path(repo_path=store.config.repo_path, uri=source.path),
        join_keys=keys,
        timestamp_field=source.timestamp_field,
        created_field=created,
        features=tuple(names),
        columns=tuple(f"{view_name}__{n}" if full_feature_names else n for n in names),
        ttl=view.ttl if view.ttl and view.ttl.total_seconds() != 0 else None,
    )


def _utc(column: pd.Series) -> pd.Series:
    """A time column as ``datetime64[ns, UTC]`` (naive times are UTC, as in Feast)."""
    if not isinstance(column.dtype, pd.DatetimeTZDtype):
        column = pd.to_datetime(column, utc=True)
    return column.dt.tz_convert("UTC").astype("datetime64[ns, UTC]")


def join(join_plan: JoinPlan, entity_df: pd.DataFrame) -> pd.DataFrame | None:
    """``entity_df``'s rows, in order, with the plan's features appended (see the module).

    ``entity_df`` has an ``event_timestamp`` column and each view's join keys. Returns
    ``None`` when it lacks a join key or holds one Feast would compare otherwise.
    """
    columns = set(entity_df.columns)
    if (
        TIMESTAMP_COLUMN not in columns
        or any(key not in columns for view in join_plan.views for key in view.join_keys)
        or any(column in columns for view in join_plan.views for column in view.columns)
    ):
        return None  # Feast renames a feature named as an entity column; not followed
    times = _utc(entity_df[TIMESTAMP_COLUMN]).reset_index(drop=True)
    order = np.argsort(times.to_numpy(), kind="stable")  # merge_asof wants time order
    back = np.empty_like(order)
    back[order] = np.arange(len(order))
    answer = entity_df.reset_index(drop=True)
    for view in join_plan.views:
        left = (
            entity_df[list(view.join_keys)]
            .reset_index(drop=True)
            .assign(**{TIMESTAMP_COLUMN: times})
        )
        found = _join_view(view, left.take(order).reset_index(drop=True))
        if found is None:
            return None
        for feature, column in zip(view.features, view.columns, strict=True):
            answer[column] = found[feature].take(back).reset_index(drop=True)
    return answer


def _join_view(view: ViewJoin, left: pd.DataFrame) -> pd.DataFrame | None:
    """``left`` (keys and times, in time order) with the view's features, same order."""
    wanted = [*view.join_keys, view.timestamp_field]
    if view.created_field:
        wanted.append(view.created_field)
    stored = pq.read_table(Path(view.path), columns=[*wanted, *view.features]).to_pandas()
    stored = stored.dropna(subset=[*view.join_keys, view.timestamp_field])
    stored[_STORED_AT] = _utc(stored[view.timestamp_field])
    for key in view.join_keys:
        if stored[key].dtype != left[key].dtype:
            common = _common_kind(left[key], stored[key])
            if common is None:
                return None
            left[key] = left[key].astype(common)
            stored[key] = stored[key].astype(common)
    by_time = [_STORED_AT]
    if view.created_field:
        stored[view.created_field] = _utc(stored[view.created_field])
        by_time.append(view.created_field)
    # Equal event times: the latest created timestamp last, the one merge_asof takes.
    stored = stored.sort_values(by_time, kind="stable", na_position="first")
    return pd.merge_asof(
        left,
        stored[[*view.join_keys, _STORED_AT, *view.features]],
        left_on=TIMESTAMP_COLUMN,
        right_on=_STORED_AT,
        by=list(view.join_keys),
        direction="backward",
        allow_exact_matches=True,
        tolerance=pd.Timedelta(view.ttl) if view.ttl is not None else None,
    )


def _common_kind(entity: pd.Series, stored: pd.Series) -> object | None:
    """The type both key columns are compared as, as Feast's merge compares them:
    numbers as numbers (bools apart), text as text; ``None`` otherwise."""
    kinds = pd.api.types
    if kinds.is_bool_dtype(entity) or kinds.is_bool_dtype(stored):
        return bool if kinds.is_bool_dtype(entity) and kinds.is_bool_dtype(stored) else None
    if kinds.is_numeric_dtype(entity) and kinds.is_numeric_dtype(stored):
        return np.result_type(entity.dtype, stored.dtype)
    if kinds.is_string_dtype(entity) and kinds.is_string_dtype(stored):
        return object
    return None
