"""The registry database: registered models, versions, tags, aliases and model files.

Models have a surrogate id, so a rename touches one row. Version numbers are
never reused: ``registered_models.last_version`` counts every version ever made,
deleted ones included, as MLflow does. Times are milliseconds since the epoch.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)

from driftloop_bus.tables import service_metadata

#: The service's tables, and with them every table of its database (the bus's outbox
#: and inbox too).
metadata, ALL_METADATA = service_metadata()

registered_models = Table(
    "registered_models",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(256), nullable=False, unique=True),
    Column("description", Text, nullable=True),
    Column("user_id", String(256), nullable=True),
    Column("creation_timestamp", BigInteger, nullable=False),
    Column("last_updated_timestamp", BigInteger, nullable=False),
    Column("last_version", Integer, nullable=False, default=0),
)

registered_model_tags = Table(
    "registered_model_tags",
    metadata,
    Column("model_id", Integer, ForeignKey("registered_models.id"), nullable=False),
    Column("key", String(250), nullable=False),
    Column("value", Text, nullable=False),
    PrimaryKeyConstraint("model_id", "key"),
)

model_versions = Table(
    "model_versions",
    metadata,
    Column("model_id", Integer, ForeignKey("registered_models.id"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("creation_timestamp", BigInteger, nullable=False),
    Column("last_updated_timestamp", BigInteger, nullable=False),
    Column("user_id", String(256), nullable=True),
    Column("current_stage", String(20), nullable=False),
    Column("description", Text, nullable=True),
    Column("source", Text, nullable=False),
    Column("run_id", String(32), nullable=True),
    Column("run_link", Text, nullable=True),
    Column("status", String(20), nullable=False),
    Column("status_message", Text, nullable=True),
    Column("logged_model_id", String(64), nullable=True),
    # Where the model's files are kept, below the registry's artifact root.
    Column("storage_key", String(64), nullable=False, unique=True),
    Column("lineage", JSON, nullable=False),
    PrimaryKeyConstraint("model_id", "version"),
    Index("ix_model_versions_run_id", "run_id"),
)

model_version_tags = Table(
    "model_version_tags",
    metadata,
    Column("model_id", Integer, nullable=False),
    Column("version", Integer, nullable=False),
    Column("key", String(250), nullable=False),
    Column("value", Text, nullable=False),
    PrimaryKeyConstraint("model_id", "version", "key"),
    ForeignKeyConstraint(
        ["model_id", "version"], ["model_versions.model_id", "model_versions.version"]
    ),
)

registered_model_aliases = Table(
    "registered_model_aliases",
    metadata,
    Column("model_id", Integer, ForeignKey("registered_models.id"), nullable=False),
    Column("alias", String(255), nullable=False),
    Column("version", Integer, nullable=False),
    PrimaryKeyConstraint("model_id", "alias"),
    ForeignKeyConstraint(
        ["model_id", "version"], ["model_versions.model_id", "model_versions.version"]
    ),
)

model_version_files = Table(
    "model_version_files",
    metadata,
    Column("storage_key", String(64), ForeignKey("model_versions.storage_key"), nullable=False),
    Column("path", String(1024), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("sha256", String(64), nullable=False),
    PrimaryKeyConstraint("storage_key", "path"),
)

#: The lineage log: one row per event about a model, the registry's own (written in
#: the transaction of the change, with the outbox event's id) and those it consumes
#: from the monitor and the trainer. Rows name the model, not its id: an alert may
#: name a model before or after the registry has it; a rename and a delete follow
#: the model's rows explicitly. ``event_time_us`` is in microseconds since the epoch
#: (``ce_time``'s precision: events of two services a millisecond apart keep their order).
lineage_events = Table(
    "lineage_events",
    metadata,
    Column(
        "id",
        BigInteger().with_variant(Integer(), "sqlite"),  # SQLite autoincrements INTEGER only
        primary_key=True,
        autoincrement=True,
    ),
    Column("event_id", String(200), nullable=False, unique=True),
    Column("event_type", String(200), nullable=False),
    Column("source", String(1024), nullable=False),
    Column("event_time_us", BigInteger, nullable=False),
    Column("model_name", String(256), nullable=False),
    Column("version", Integer, nullable=True),
    Column("job_id", String(200), nullable=True),
    Column("cause_event_id", String(200), nullable=True),
    Column("summary", JSON, nullable=False),
    Index("ix_lineage_events_model_name_event_time_us", "model_name", "event_time_us"),
)
