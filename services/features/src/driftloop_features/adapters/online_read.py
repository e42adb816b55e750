"""A speed shortcut past Feast's ``get_online_features``: the online read at the store's pace.

Replaces ``FeatureStore.get_online_features`` followed by
:func:`~driftloop_features.adapters.online_json.online_response_dict` (the JSON of
``feast serve``'s ``/get-online-features``) for the plain case, with the same answer
(``tests/integration/features/test_features_online_read.py`` checks it against Feast's
own ``get_online_features`` on SQLite and Redis, for random entity sets). Where the time
went (bench/README.md has the profile): Feast converts every entity value, every read
row and every value to protobuf messages, builds a response message and renders it
again; SQLite's timestamp converter parsed one timestamp per stored value.

What this path does instead, per request:

- the **read plan** (views, join keys, entity types, output names) comes from Feast's
  own request context (``feast.utils._get_cached_request_context``, cleared by Feast
  whenever the registry is refreshed, and the registry refreshes itself after its
  cache TTL), so a registry change is served within that TTL;
- entity keys are converted once (Feast's ``python_values_to_proto_values``),
  deduplicated, and serialized once with Feast's own ``serialize_entity_key``;
- **one store read per feature view**: on SQLite one ``SELECT ... IN (...)`` on
  Feast's table (``feast.infra.online_stores.sqlite._table_id``) reading the raw
  timestamp instead of the column's converter; on any other store (Redis) the store's
  own ``online_read``, one pipelined round trip;
- the response dict is written directly in Feast's JSON shape.

Requests it does not cover go to Feast unchanged (:func:`read_plan` answers None):
on-demand feature views, request data, entity names instead of join keys, entityless
views, join-key mappings of a projection, versioned reads, precomputed feature
services and version metadata.

Private Feast names used (checked against Feast 0.67.0, pinned by
``tests/unit/features/test_features_feast_pins.py``): ``feast.utils._get_cached_request_context``,
``feast.infra.online_stores.sqlite._table_id`` / ``_quote_id``, the SQLite store's
``_get_conn`` and ``feast.feature_server_utils._value_to_native``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from feast import FeatureService, FeatureStore
from feast.feature_server_utils import _value_to_native
from feast.infra.key_encoding_utils import serialize_entity_key
from feast.infra.online_stores.sqlite import SqliteOnlineStore, _quote_id, _table_id
from feast.protos.feast.types.EntityKey_pb2 import EntityKey as EntityKeyProto
from feast.protos.feast.types.Value_pb2 import Value as ValueProto
from feast.type_map import python_values_to_proto_values
from feast.utils import _get_cached_request_context
from feast.value_type import ValueType
from google.protobuf.timestamp_pb2 import Timestamp

from driftloop_features.adapters import feast_internals
from driftloop_features.adapters.online_json import _timestamp_text

__all__ = ["ReadPlan", "ViewRead", "read_online", "read_online_async", "read_plan"]

_EPOCH = "1970-01-01T00:00:00Z"


@dataclass(frozen=True, slots=True)
class ViewRead:
    """One feature view of a plan: what to read and what to call it in the answer."""

    view: Any
    join_keys: tuple[str, ...]
    features: tuple[str, ...]
    names: tuple[str, ...]
    sql: str | None


@dataclass(frozen=True, slots=True)
class ReadPlan:
    """What a (features, full_feature_names) request reads, built from Feast's context."""

    views: tuple[ViewRead, ...]
    entity_types: Mapping[str, ValueType]
    join_keys: frozenset[str]


def read_plan(
    store: FeatureStore,
    features: list[str] | FeatureService,
    entity_columns: Sequence[str],
    *,
    full_feature_names: bool,
) -> ReadPlan | None:
    """The plan for this request, or None when only Feast's own path covers it."""
    if isinstance(features, FeatureService) and getattr(features, "precompute_online", False):
        return None
    context = _get_cached_request_context(
        store.registry, store.project, features, full_feature_names
    )
    cache_key = (id(context), tuple(entity_columns), id(store))
    cached = _PLANS.get(cache_key)
    if cached is not None and cached[0] is context:
        return cached[1]
    plan = _plan(store, context, entity_columns, full_feature_names=full_feature_names)
    if len(_PLANS) >= _MAX_PLANS:
        _PLANS.clear()
    _PLANS[cache_key] = (context, plan)
    return plan


#: Plans by Feast's request context (a new one after every registry refresh).
_PLANS: dict[tuple[int, tuple[str, ...], int], tuple[Any, ReadPlan | None]] = {}
_MAX_PLANS = 1024


def _plan(
    store: FeatureStore,
    context: tuple[Any, ...],
    entity_columns: Sequence[str],
    *,
    full_feature_names: bool,
) -> ReadPlan | None:
    (
        _refs,
        odfvs,
        _entity_names,
        entity_types,
        join_keys,
        grouped_refs,
        _row_names,
        request_data,
        entityless,
        *_,
    ) = context
    if odfvs or request_data or entityless:
        return None
    if any(column not in join_keys for column in entity_columns):
        return None
    config = store.config
    versioned = bool(getattr(config.registry, "enable_online_feature_view_versioning", False))
    sqlite = isinstance(feast_internals.provider(store).online_store, SqliteOnlineStore)
    views = []
    for view, requested in grouped_refs:
        if view.projection.join_key_map or getattr(view.projection, "version_tag", None):
            return None
        keys = tuple(view.join_keys)
        if not keys or any(key not in entity_columns for key in keys):
            return None
        prefix = view.projection.name_to_use()
        names = tuple(f"{prefix}__{f}" if full_feature_names else f for f in requested)
        sql = None
        if sqlite:
            table = _quote_id(_table_id(store.project, view, versioned))
            # The raw stored value: the column's converter would parse it once per value.
            sql = (
                f"SELECT entity_key, feature_name, value, CAST(event_ts AS TEXT) FROM {table} "
                "WHERE entity_key IN ({}) ORDER BY entity_key"
            )
        views.append(ViewRead(view, keys, tuple(requested), names, sql))
    return ReadPlan(tuple(views), dict(entity_types), frozenset(join_keys))


def read_online(
    store: FeatureStore, plan: ReadPlan, entities: Mapping[str, Sequence[Any]]
) -> dict[str, Any]:
    """Feature values of ``entities`` in the JSON of ``feast serve`` (as Feast answers).

    Blocks on the store: call it inline for SQLite, in a thread otherwise (or use
    :func:`read_online_async`).
    """
    request = _Request(store, plan, entities)
    for read, keys in zip(plan.views, request.keys, strict=True):
        if read.sql is not None:
            found = _sqlite_read(request.online, store.config, read.sql, keys.serialized)
        else:
            rows = request.online.online_read(
                store.config, read.view, keys.protos, list(read.features)
            )
            found = _found(rows)
        _append_view(read, found, keys.row_slot, request.names, request.results)
    return request.body()


async def read_online_async(
    store: FeatureStore, plan: ReadPlan, entities: Mapping[str, Sequence[Any]]
) -> dict[str, Any]:
    """:func:`read_online` with the store's asynchronous read (Redis)."""
    request = _Request(store, plan, entities)
    for read, keys in zip(plan.views, request.keys, strict=True):
        rows = await request.online.online_read_async(
            store.config, read.view, keys.protos, list(read.features)
        )
        _append_view(read, _found(rows), keys.row_slot, request.names, request.results)
    return request.body()


@dataclass(slots=True)
class _Keys:
    """One view's entity keys: distinct ones (proto and serialized), and each row's."""

    protos: list[EntityKeyProto]
    serialized: list[bytes]
    row_slot: list[int]


class _Request:
    """A request's converted entity values, distinct keys per view, and the join-key columns."""

    def __init__(
        self, store: FeatureStore, plan: ReadPlan, entities: Mapping[str, Sequence[Any]]
    ) -> None:
        self.online = feast_internals.provider(store).online_store
        version = store.config.entity_key_serialization_version
        protos = {
            key: python_values_to_proto_values(
                list(values), plan.entity_types.get(key, ValueType.UNKNOWN)
            )
            for key, values in entities.items()
        }
        rows = len(next(iter(protos.values())))
        self.names: list[str] = []
        self.results: list[dict[str, Any]] = []
        for key, values in protos.items():
            self.names.append(key)
            self.results.append(
                {
                    "values": [_value_to_native(v) for v in values],
                    "statuses": ["PRESENT"] * rows,
                    "event_timestamps": [_EPOCH] * rows,
                }
            )
        self.keys: list[_Keys] = []
        for read in plan.views:
            keys = _Keys([], [], [])
            slots: dict[bytes, int] = {}
            for row in range(rows):
                key_proto = EntityKeyProto(
                    join_keys=read.join_keys,
                    entity_values=[protos[k][row] for k in read.join_keys],
                )
                blob = serialize_entity_key(key_proto, entity_key_serialization_version=version)
                slot = slots.get(blob)
                if slot is None:
                    slot = slots[blob] = len(keys.serialized)
                    keys.serialized.append(blob)
                    keys.protos.append(key_proto)
                keys.row_slot.append(slot)
            self.keys.append(keys)

    def body(self) -> dict[str, Any]:
        return {"metadata": {"feature_names": self.names}, "results": self.results}


def _sqlite_read(
    online: SqliteOnlineStore, config: Any, sql: str, keys: list[bytes]
) -> list[tuple[str, dict[str, Any]] | None]:
    """One query; per key: (timestamp text, feature -> native value) or None."""
    cursor = online._get_conn(config).execute(sql.format(",".join("?" * len(keys))), keys)
    by_key: dict[bytes, tuple[str, dict[str, Any]]] = {}
    stamps: dict[str, str] = {}
    for key, feature, blob, raw_ts in cursor.fetchall():
        entry = by_key.get(key)
        values = entry[1] if entry is not None else {}
        native = _NATIVE.get(blob, _MISS)
        if native is _MISS:
            native = _native(blob)
        values[feature] = native
        stamp = stamps.get(raw_ts)
        if stamp is None:
            stamp = stamps[raw_ts] = _sqlite_stamp(raw_ts)
        # As Feast: the entity's time is the last row's.
        by_key[key] = (stamp, values)
    return [by_key.get(key) for key in keys]


_MISS = object()
#: Stored value bytes -> their JSON-native value (scalars only: a list is never shared).
_NATIVE: dict[bytes, Any] = {}
_MAX_NATIVE = 262_144


def _native(blob: bytes) -> Any:
    native = _value_to_native(ValueProto.FromString(blob))
    if not isinstance(native, list):
        if len(_NATIVE) >= _MAX_NATIVE:
            _NATIVE.clear()
        _NATIVE[blob] = native
    return native


def _sqlite_stamp(raw: str | None) -> str:
    """The RFC 3339 text of a stored ``event_ts``, converted as Feast's converter does."""
    if raw is None:
        return _EPOCH
    try:
        moment = datetime.fromtimestamp(int(raw))
    except ValueError:
        moment = datetime.fromisoformat(raw)
    moment = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    return _stamp_text(moment)


def _stamp_text(moment: datetime) -> str:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return _timestamp_text(stamp.seconds, stamp.nanos)


def _found(rows: Sequence[tuple[Any, Any]]) -> list[tuple[str, dict[str, Any]] | None]:
    """A store's ``online_read`` rows as (timestamp text, feature -> native value) or None."""
    found: list[tuple[str, dict[str, Any]] | None] = []
    stamps: dict[datetime, str] = {}
    for moment, values in rows:
        if values is None:
            found.append(None)
            continue
        stamp = _EPOCH
        if moment is not None:
            stamp = stamps.get(moment) or stamps.setdefault(moment, _stamp_text(moment))
        found.append((stamp, {name: _value_to_native(v) for name, v in values.items()}))
    return found


def _append_view(
    read: ViewRead,
    found: list[tuple[str, dict[str, Any]] | None],
    row_slot: list[int],
    names: list[str],
    results: list[dict[str, Any]],
) -> None:
    """The view's columns, one per requested feature, in Feast's order."""
    stamps = [_EPOCH if (hit := found[s]) is None else hit[0] for s in row_slot]
    for feature, name in zip(read.features, read.names, strict=True):
        values: list[Any] = []
        statuses: list[str] = []
        for slot in row_slot:
            hit = found[slot]
            if hit is not None and feature in hit[1]:
                values.append(hit[1][feature])
                statuses.append("PRESENT")
            else:
                values.append(None)
                statuses.append("NOT_FOUND")
        names.append(name)
        results.append({"values": values, "statuses": statuses, "event_timestamps": stamps})
