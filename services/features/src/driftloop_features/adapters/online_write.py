"""A speed shortcut past ``FeatureStore.push(..., to=ONLINE)``: validated rows to the store.

Feast's push turns a DataFrame into Arrow, then Arrow into its online-store protobufs
(``EntityKey`` and ``Value``), one column at a time, and its online stores then write
every row of them. Ingestion already holds validated plain values, so this module
replaces that with, per consumed batch and feature view:

- :meth:`OnlinePlan.latest`: only the latest row of each entity of the batch is kept
  (the online store keeps one value per entity; a tie of event times goes to the later
  row, as Feast's SQLite store's last write. Feast's Redis store keeps the first of two
  rows of one entity with the same event time in a batch: the one place where this
  writes something else, as the plan did before the writer);
- :class:`OnlineWriter` (SQLite and Redis, the stores driftloop deploys) writes them
  with what Feast's own ``online_write_batch`` of those stores writes, byte for byte,
  without building a protobuf message per value: each entity key is serialized once
  with Feast's ``serialize_entity_key`` (and kept, bounded, for the next batches), each
  value is serialized through one reused ``Value`` message per feature, and

  - on SQLite (``SqliteOnlineStore.online_write_batch``): the same upsert statement on
    Feast's table (``_table_id``) through the store's own connection, as one
    ``executemany`` in one transaction instead of one ``execute`` per feature value;
  - on Redis (``RedisOnlineStore.online_write_batch``): the same two pipelined round
    trips (the stored event times, then one ``HSET`` per entity that is newer, the
    key's ``EXPIRE`` when ``key_ttl_seconds`` is set; one round trip with
    ``skip_dedup``) with the hash fields (``_mmh3`` of ``view:feature``) made once.

Anything else (another store, a value type this does not convert, SQLite's value_num or
vector columns, feature-view versioning) goes through the provider's
``online_write_batch`` with :meth:`OnlinePlan.protos`, or through push.

Private Feast names used (checked against Feast 0.67.0, pinned by
``tests/unit/features/test_features_feast_pins.py``): the SQLite store's ``_get_conn``
and ``feast.infra.online_stores.sqlite._table_id`` / ``_quote_id``; the Redis store's
``_get_client``, ``feast.infra.online_stores.helpers._mmh3`` and the key layout of
``helpers._redis_key``. What is written is read back through Feast's own
``get_online_features``, and the stored bytes compared with Feast's own write, in
``tests/integration/features/test_features_online_write.py``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from feast import FeatureView, RepoConfig
from feast.infra.key_encoding_utils import serialize_entity_key
from feast.infra.online_stores.helpers import _mmh3
from feast.infra.online_stores.redis import RedisOnlineStore, RedisType
from feast.infra.online_stores.sqlite import SqliteOnlineStore, _quote_id, _table_id
from feast.protos.feast.types.EntityKey_pb2 import EntityKey as EntityKeyProto
from feast.protos.feast.types.Value_pb2 import Value as ValueProto
from google.protobuf.timestamp_pb2 import Timestamp

__all__ = ["EntityKeys", "OnlinePlan", "OnlineRow", "OnlineWriter"]

#: One row as ``online_write_batch`` takes it: entity key, values, event and created time.
OnlineRow = tuple[EntityKeyProto, dict[str, ValueProto], datetime, datetime | None]

_PROTO_FIELDS = {
    "DOUBLE": "double_val",
    "FLOAT": "float_val",
    "INT64": "int64_val",
    "INT32": "int32_val",
    "STRING": "string_val",
    "BOOL": "bool_val",
    "BYTES": "bytes_val",
}

#: ``value_text`` of Feast's SQLite table (``sqlite.extract_text_and_num``): the text of
#: a number or a bool, the string itself, nothing for bytes.
_TEXT_FIELDS = frozenset({"double_val", "float_val", "int64_val", "int32_val", "bool_val"})

#: Entity keys kept serialized between batches (a bound: a new dict past it).
ENTITY_KEYS_KEPT = 200_000


@dataclass(frozen=True)
class OnlinePlan:
    """How rows of one feature view become Feast's online-store protobufs."""

    join_keys: list[tuple[str, str]]
    features: list[tuple[str, str]]
    timestamp_field: str
    created_field: str | None

    @classmethod
    def of(cls, view: FeatureView) -> OnlinePlan | None:
        """The plan of ``view``, or None when a column has a type it does not convert."""
        join_keys = [(c.name, c.dtype.to_value_type().name) for c in view.entity_columns]
        features = [(f.name, f.dtype.to_value_type().name) for f in view.features]
        if any(t not in _PROTO_FIELDS for _, t in (*join_keys, *features)):
            return None
        batch = view.batch_source
        assert batch is not None
        return cls(
            join_keys=[(name, _PROTO_FIELDS[t]) for name, t in join_keys],
            features=[(name, _PROTO_FIELDS[t]) for name, t in features],
            timestamp_field=batch.timestamp_field,
            created_field=batch.created_timestamp_column or None,
        )

    def latest(self, rows: Sequence[Mapping[str, Any]]) -> dict[tuple[Any, ...], Mapping[str, Any]]:
        """The latest row of each entity, by its join-key values (a tie: the later row)."""
        latest: dict[tuple[Any, ...], Mapping[str, Any]] = {}
        stamp = self.timestamp_field
        names = [name for name, _ in self.join_keys]
        if len(names) == 1:
            (name,) = names
            for row in rows:
                key = (row[name],)
                seen = latest.get(key)
                if seen is None or row[stamp] >= seen[stamp]:
                    latest[key] = row
            return latest
        for row in rows:
            key = tuple(row[name] for name in names)
            seen = latest.get(key)
            if seen is None or row[stamp] >= seen[stamp]:
                latest[key] = row
        return latest

    def entity_key(self, values: tuple[Any, ...]) -> EntityKeyProto:
        """Feast's ``EntityKey`` of one entity's join-key values."""
        return EntityKeyProto(
            join_keys=[name for name, _ in self.join_keys],
            entity_values=[
                ValueProto(**{f: value})
                for (_, f), value in zip(self.join_keys, values, strict=True)
            ],
        )

    def protos(self, rows: Sequence[Mapping[str, Any]]) -> list[OnlineRow]:
        """The latest row of each entity as (entity key, values, event time, created time)."""
        data = []
        for key, row in self.latest(rows).items():
            values = {
                name: ValueProto() if row[name] is None else ValueProto(**{f: row[name]})
                for name, f in self.features
            }
            created = row.get(self.created_field) if self.created_field else None
            data.append((self.entity_key(key), values, row[self.timestamp_field], created))
        return data


class EntityKeys:
    """Serialized entity keys (Feast's ``serialize_entity_key``), kept between batches.

    Args:
        version: The repo's ``entity_key_serialization_version``.
        kept: The most keys kept; past it the cache starts again.
    """

    def __init__(self, version: int, kept: int = ENTITY_KEYS_KEPT) -> None:
        self.version = version
        self.kept = kept
        self._keys: dict[tuple[Any, ...], bytes] = {}

    def of(self, plan: OnlinePlan, values: tuple[Any, ...]) -> bytes:
        """The serialized key of the entity with join-key ``values`` in ``plan``'s view."""
        names = tuple(name for name, _ in plan.join_keys)
        types = tuple(f for _, f in plan.join_keys)
        slot = (names, types, values)
        found = self._keys.get(slot)
        if found is None:
            if len(self._keys) >= self.kept:
                self._keys = {}
            found = serialize_entity_key(
                plan.entity_key(values), entity_key_serialization_version=self.version
            )
            self._keys[slot] = found
        return found


def _value_bytes(fields: Sequence[str]) -> list[Callable[[Any], tuple[bytes, Any]]]:
    """One encoder per feature: a value to (``Value`` bytes, SQLite's ``value_text``)."""
    return [_encoder(f) for f in fields]


def _encoder(f: str) -> Callable[[Any], tuple[bytes, Any]]:
    message = ValueProto()  # reused: one message per feature, not one per value
    text = f in _TEXT_FIELDS

    def encode(value: Any) -> tuple[bytes, Any]:
        if value is None:
            return b"", None  # Feast's empty Value: a null
        setattr(message, f, value)
        if text:
            return message.SerializeToString(), str(getattr(message, f))
        if f == "string_val":
            return message.SerializeToString(), value
        return message.SerializeToString(), None

    return encode


class OnlineWriter:
    """Writes the latest row of each entity of a batch to a feature view's online store.

    Args:
        online_store: The provider's online store (``provider.online_store``).
        config: The repo config.
        keys: Serialized entity keys, shared by the writes of the service.
    """

    def __init__(self, online_store: Any, config: RepoConfig, keys: EntityKeys) -> None:
        self.online_store = online_store
        self.config = config
        self.keys = keys

    @staticmethod
    def covers(online_store: Any, config: RepoConfig) -> bool:
        """Whether this writer writes to ``online_store`` itself (else: Feast's own write)."""
        if config.registry.enable_online_feature_view_versioning:
            return False
        if type(online_store) is SqliteOnlineStore:
            options = config.online_store
            return not (
                getattr(options, "enable_openai_compatible_store", False)
                or getattr(options, "vector_enabled", False)
            )
        if type(online_store) is RedisOnlineStore:
            return bool(getattr(config.online_store, "redis_type", None) == RedisType.redis)
        return False

    def write(self, view: FeatureView, plan: OnlinePlan, rows: Sequence[Mapping[str, Any]]) -> int:
        """Write the latest row of each entity of ``rows``; the rows written (kept per entity)."""
        latest = self.plan_rows(plan, rows)
        if type(self.online_store) is SqliteOnlineStore:
            self._sqlite(view, plan, latest)
        else:
            self._redis(view, plan, latest)
        return len(latest)

    def plan_rows(
        self, plan: OnlinePlan, rows: Sequence[Mapping[str, Any]]
    ) -> list[tuple[bytes, Mapping[str, Any]]]:
        """(serialized entity key, row) of the latest row of each entity."""
        keys = self.keys
        return [(keys.of(plan, key), row) for key, row in plan.latest(rows).items()]

    def _sqlite(
        self, view: FeatureView, plan: OnlinePlan, latest: Sequence[tuple[bytes, Mapping[str, Any]]]
    ) -> None:
        table = _quote_id(_table_id(self.config.project, view, False))
        sql = (
            f"INSERT INTO {table} (entity_key, feature_name, value, value_text, event_ts, "
            "created_ts) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(entity_key, feature_name) "
            "DO UPDATE SET value = excluded.value, value_text = excluded.value_text, "
            "event_ts = excluded.event_ts, created_ts = excluded.created_ts;"
        )
        names = [name for name, _ in plan.features]
        encoders = list(zip(names, _value_bytes([f for _, f in plan.features]), strict=True))
        stamp, created_field = plan.timestamp_field, plan.created_field

        def statements() -> Iterator[tuple[Any, ...]]:
            for key, row in latest:
                # What the connection stores for them, once per row instead of per value.
                event_ts = sqlite3.adapt(_naive_utc(row[stamp]), sqlite3.PrepareProtocol)
                created = row.get(created_field) if created_field else None
                created_ts = (
                    None
                    if created is None
                    else sqlite3.adapt(_naive_utc(created), sqlite3.PrepareProtocol)
                )
                for name, encode in encoders:
                    blob, text = encode(row[name])
                    yield key, name, blob, text, event_ts, created_ts

        conn = self.online_store._get_conn(self.config)
        with conn:
            conn.executemany(sql, statements())

    def _redis(
        self, view: FeatureView, plan: OnlinePlan, latest: Sequence[tuple[bytes, Mapping[str, Any]]]
    ) -> None:
        options = self.config.online_store
        client = self.online_store._get_client(options)
        project = self.config.project.encode("utf-8")
        ts_key = f"_ts:{view.name}".encode()
        fields = [
            (name, _mmh3(f"{view.name}:{name}"), encode)
            for (name, _), encode in zip(
                plan.features, _value_bytes([f for _, f in plan.features]), strict=True
            )
        ]
        stamp = plan.timestamp_field
        ttl = options.key_ttl_seconds
        keys = [key + project for key, _ in latest]
        if options.skip_dedup:
            newer = [(redis_key, row) for redis_key, (_, row) in zip(keys, latest, strict=True)]
        else:
            with client.pipeline(transaction=False) as pipe:
                for redis_key in keys:
                    pipe.hmget(redis_key, ts_key)
                stored = pipe.execute()
            newer = []
            for redis_key, (_, row), (previous,) in zip(keys, latest, stored, strict=True):
                # Feast skips a row that is not newer than the stored one (to the nanosecond).
                if previous and _nanos(row[stamp]) <= _stored_nanos(previous):
                    continue
                newer.append((redis_key, row))
        if not newer:
            return
        moment = Timestamp()
        with client.pipeline(transaction=False) as pipe:
            for redis_key, row in newer:
                moment.FromDatetime(_aware(row[stamp]))
                mapping: dict[bytes, bytes] = {ts_key: moment.SerializeToString()}
                for name, field_key, encode in fields:
                    mapping[field_key] = encode(row[name])[0]
                pipe.hset(redis_key, mapping=mapping)
                if ttl:
                    pipe.expire(name=redis_key, time=ttl)
            pipe.execute()


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _naive_utc(moment: datetime) -> datetime:
    """Feast's ``to_naive_utc``: UTC without a zone (what its SQLite table holds)."""
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(UTC).replace(tzinfo=None)


def _nanos(moment: datetime) -> int:
    stamp = Timestamp()
    stamp.FromDatetime(_aware(moment))
    return stamp.seconds * 1_000_000_000 + stamp.nanos


def _stored_nanos(blob: bytes) -> int:
    stamp = Timestamp.FromString(blob)
    return stamp.seconds * 1_000_000_000 + stamp.nanos
