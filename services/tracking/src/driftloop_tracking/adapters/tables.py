"""The tracking database, close to MLflow's own SQL schema, with indexes for search.

Times are milliseconds since the epoch (MLflow's unit). Latest metric values are
kept in ``latest_metrics`` (one row per run and key) so that searching and
ordering runs by a metric touches one indexed row per run, not the history.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from driftloop_bus.tables import service_metadata

#: The service's tables, and with them every table of its database (the bus's outbox
#: and inbox too).
metadata, ALL_METADATA = service_metadata()

_ID = BigInteger().with_variant(Integer(), "sqlite")  # SQLite autoincrements INTEGER only
_KEY = String(250)
_VALUE = String(8000)

#: Searchable values (params, tags) are indexed by their first characters: a btree
#: entry is bounded (PostgreSQL refuses ~2.7 kB), and a value may hold 8000 characters.
#: 256 characters of 4 UTF-8 bytes, plus a 250-character key, still fit.
VALUE_PREFIX_CHARS = 256
# Code-point order on PostgreSQL as on SQLite, whatever the database's collation: the
# prefix then orders as the value does, and LIKE 'abc%' can use the index.
_SEARCHED_VALUE = String(8000).with_variant(String(8000, collation="C"), "postgresql")


def _value_prefix() -> Column[str]:
    """The indexed head of ``value``, written with it (see :func:`searched_row`).

    A plain column, not a generated one: SQLite does not read an index over a
    generated column as covering, and search would then visit every matching row.
    """
    return Column(
        "value_prefix",
        String(VALUE_PREFIX_CHARS).with_variant(
            String(VALUE_PREFIX_CHARS, collation="C"), "postgresql"
        ),
        nullable=False,
    )


def searched_row(owner: str, owner_id: str, key: str, value: str) -> dict[str, str]:
    """A row of ``params`` or ``tags`` (``owner`` names the owner's column)."""
    return {owner: owner_id, "key": key, "value": value, "value_prefix": value[:VALUE_PREFIX_CHARS]}


experiments = Table(
    "experiments",
    metadata,
    Column("experiment_id", _ID, primary_key=True, autoincrement=True),
    Column("name", String(256), nullable=False, unique=True),
    Column("artifact_location", String(1000), nullable=False),
    Column("lifecycle_stage", String(32), nullable=False, server_default="active"),
    Column("creation_time", BigInteger, nullable=False),
    Column("last_update_time", BigInteger, nullable=False),
)

experiment_tags = Table(
    "experiment_tags",
    metadata,
    Column(
        "experiment_id",
        _ID,
        ForeignKey("experiments.experiment_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("key", _KEY, nullable=False),
    Column("value", _VALUE, nullable=False),
    PrimaryKeyConstraint("experiment_id", "key"),
)

runs = Table(
    "runs",
    metadata,
    Column("run_uuid", String(32), primary_key=True),
    Column("name", String(250), nullable=False, server_default=""),
    Column(
        "experiment_id",
        _ID,
        ForeignKey("experiments.experiment_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("user_id", String(256), nullable=False, server_default=""),
    Column("status", String(20), nullable=False),
    Column("start_time", BigInteger, nullable=False),
    Column("end_time", BigInteger, nullable=True),
    Column("deleted_time", BigInteger, nullable=True),
    Column("lifecycle_stage", String(20), nullable=False, server_default="active"),
    Column("artifact_uri", String(1000), nullable=False),
    # Covering: a search answers from the index alone (run ids in start_time order).
    Index(None, "experiment_id", "lifecycle_stage", "start_time", "run_uuid"),
)

params = Table(
    "params",
    metadata,
    Column("run_uuid", String(32), ForeignKey("runs.run_uuid", ondelete="CASCADE"), nullable=False),
    Column("key", _KEY, nullable=False),
    Column("value", _SEARCHED_VALUE, nullable=False),
    _value_prefix(),
    PrimaryKeyConstraint("run_uuid", "key"),
    # Covering for values shorter than the prefix (see search_sql): most of them.
    Index(None, "key", "value_prefix", "run_uuid"),
)

tags = Table(
    "tags",
    metadata,
    Column("run_uuid", String(32), ForeignKey("runs.run_uuid", ondelete="CASCADE"), nullable=False),
    Column("key", _KEY, nullable=False),
    Column("value", _SEARCHED_VALUE, nullable=False),
    _value_prefix(),
    PrimaryKeyConstraint("run_uuid", "key"),
    # Covering for values shorter than the prefix (see search_sql): most of them.
    Index(None, "key", "value_prefix", "run_uuid"),
)

#: Every logged value, for the metric history.
metrics = Table(
    "metrics",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("run_uuid", String(32), ForeignKey("runs.run_uuid", ondelete="CASCADE"), nullable=False),
    Column("key", _KEY, nullable=False),
    Column("value", Float(precision=53), nullable=False),
    Column("timestamp", BigInteger, nullable=False),
    Column("step", BigInteger, nullable=False, server_default="0"),
    Column("is_nan", Boolean, nullable=False, server_default="0"),
    Index(None, "run_uuid", "key", "step", "timestamp"),
)

#: The latest value per run and key (highest step, then timestamp, then value), as MLflow.
latest_metrics = Table(
    "latest_metrics",
    metadata,
    Column("run_uuid", String(32), ForeignKey("runs.run_uuid", ondelete="CASCADE"), nullable=False),
    Column("key", _KEY, nullable=False),
    Column("value", Float(precision=53), nullable=False),
    Column("timestamp", BigInteger, nullable=False),
    Column("step", BigInteger, nullable=False),
    Column("is_nan", Boolean, nullable=False, server_default="0"),
    PrimaryKeyConstraint("run_uuid", "key"),
    Index(None, "key", "value", "is_nan", "run_uuid"),
)

datasets = Table(
    "datasets",
    metadata,
    Column("dataset_uuid", String(36), primary_key=True),
    Column(
        "experiment_id",
        _ID,
        ForeignKey("experiments.experiment_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("name", String(500), nullable=False),
    Column("digest", String(36), nullable=False),
    Column("source_type", String(36), nullable=False),
    Column("source", Text, nullable=False),
    Column("schema", Text, nullable=True),
    Column("profile", Text, nullable=True),
    UniqueConstraint("experiment_id", "name", "digest"),
)

#: A dataset used by a run, with the input's tags (e.g. ``mlflow.data.context=training``).
run_inputs = Table(
    "run_inputs",
    metadata,
    Column("run_uuid", String(32), ForeignKey("runs.run_uuid", ondelete="CASCADE"), nullable=False),
    Column(
        "dataset_uuid",
        String(36),
        ForeignKey("datasets.dataset_uuid", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("tags", JSON, nullable=False),
    PrimaryKeyConstraint("run_uuid", "dataset_uuid"),
)

#: MLflow 3 logged models (``mlflow.<flavor>.log_model``).
logged_models = Table(
    "logged_models",
    metadata,
    Column("model_id", String(64), primary_key=True),
    Column(
        "experiment_id",
        _ID,
        ForeignKey("experiments.experiment_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("name", String(500), nullable=False),
    Column("artifact_location", String(1000), nullable=False),
    Column("creation_timestamp_ms", BigInteger, nullable=False),
    Column("last_updated_timestamp_ms", BigInteger, nullable=False),
    Column("status", String(32), nullable=False),
    Column("status_message", Text, nullable=True),
    Column("lifecycle_stage", String(32), nullable=False, server_default="active"),
    Column("model_type", String(500), nullable=True),
    Column("source_run_id", String(32), nullable=True),
    Index(None, "experiment_id", "creation_timestamp_ms"),
)

logged_model_tags = Table(
    "logged_model_tags",
    metadata,
    Column(
        "model_id",
        String(64),
        ForeignKey("logged_models.model_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("key", _KEY, nullable=False),
    Column("value", _VALUE, nullable=False),
    PrimaryKeyConstraint("model_id", "key"),
)

logged_model_params = Table(
    "logged_model_params",
    metadata,
    Column(
        "model_id",
        String(64),
        ForeignKey("logged_models.model_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("key", _KEY, nullable=False),
    Column("value", _VALUE, nullable=False),
    PrimaryKeyConstraint("model_id", "key"),
)

logged_model_metrics = Table(
    "logged_model_metrics",
    metadata,
    Column(
        "model_id",
        String(64),
        ForeignKey("logged_models.model_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("key", _KEY, nullable=False),
    Column("value", Float(precision=53), nullable=False),
    Column("timestamp", BigInteger, nullable=False),
    Column("step", BigInteger, nullable=False),
    Column("run_id", String(32), nullable=True),
    Column("dataset_name", String(500), nullable=True),
    Column("dataset_digest", String(36), nullable=True),
    Column("is_nan", Boolean, nullable=False, server_default="0"),
    PrimaryKeyConstraint("model_id", "key", "step", "timestamp"),
)

#: Logged models a run used (``direction="input"``) or produced (``"output"``, at a step).
run_models = Table(
    "run_models",
    metadata,
    Column("run_uuid", String(32), ForeignKey("runs.run_uuid", ondelete="CASCADE"), nullable=False),
    Column(
        "model_id",
        String(64),
        ForeignKey("logged_models.model_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("direction", String(8), nullable=False),
    Column("step", BigInteger, nullable=False, server_default="0"),
    PrimaryKeyConstraint("run_uuid", "direction", "model_id"),
    Index(None, "model_id"),
)

#: Tokens issued through the API (``driftloop token create`` when the suite runs):
#: listed and revocable. The token itself is never stored, only its id.
auth_tokens = Table(
    "auth_tokens",
    metadata,
    Column("token_id", String(64), primary_key=True),
    Column("subject", String(200), nullable=False),
    Column("role", String(16), nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("revoked_at", BigInteger, nullable=True),
    Index(None, "revoked_at", "expires_at"),
)

#: Stored users (HTTP Basic, as MLflow's ``MLFLOW_TRACKING_USERNAME``/``PASSWORD``):
#: the password as a salted scrypt hash.
auth_users = Table(
    "auth_users",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("password_hash", String(300), nullable=False),
    Column("role", String(16), nullable=False),
    Column("created_at", BigInteger, nullable=False),
)
