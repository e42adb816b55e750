"""The trainer database: trigger decisions, training jobs and alias moves.

Times are timezone-aware datetimes. Every decision is kept, started or not, so
``GET /decisions`` can say why a drift alert did or did not retrain.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    String,
    Table,
    Text,
)

from driftloop_bus.tables import service_metadata

#: The service's tables, and with them every table of its database (the bus's outbox
#: and inbox too).
metadata, ALL_METADATA = service_metadata()

decisions = Table(
    "decisions",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("model_name", String(256), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("outcome", String(32), nullable=False),
    Column("suppression", String(32), nullable=True),
    Column("detail", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("dedup_key", String(1024), nullable=False),
    Column("event_id", String(200), nullable=True),
    Column("event_type", String(200), nullable=True),
    Column("event_source", String(200), nullable=True),
    Column("rows", BigInteger, nullable=False, default=0),
    Column("job_id", String(64), nullable=True),
    Column("decided_at", DateTime(timezone=True), nullable=False),
    Column("episode_id", String(200), nullable=True),
    Index("ix_decisions_model_name_decided_at", "model_name", "decided_at"),
    Index("ix_decisions_model_name_dedup_key", "model_name", "dedup_key"),
)

jobs = Table(
    "jobs",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("model_name", String(256), nullable=False),
    Column("status", String(16), nullable=False),
    Column("trigger", JSON, nullable=False),
    Column("parameters", JSON, nullable=False),
    Column("spec", JSON, nullable=False),
    Column("executor", String(32), nullable=False),
    Column("attempt", Integer, nullable=False, default=1),
    Column("requested_by", String(256), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=True),
    Column("finished_at", DateTime(timezone=True), nullable=True),
    Column("run_id", String(64), nullable=True),
    Column("model_version", BigInteger, nullable=True),
    Column("stage", String(32), nullable=True),
    Column("error", Text, nullable=True),
    Column("error_type", String(200), nullable=True),
    Column("evaluation", JSON, nullable=True),
    Column("promoted", Boolean, nullable=False, default=False),
    Column("completed_event_id", String(64), nullable=True),
    Column("log_path", Text, nullable=True),
    # The trainer process running a local job, and when it last renewed its lease.
    Column("owner", String(256), nullable=True),
    Column("heartbeat_at", DateTime(timezone=True), nullable=True),
    # "training" (a trigger's job) or "score" (batch scoring, POST /jobs).
    Column("kind", String(16), nullable=False, default="training", server_default="training"),
    # What a job of kind "score" did (rows scored, records logged, output).
    Column("result", JSON, nullable=True),
    Index("ix_jobs_model_name_created_at", "model_name", "created_at"),
    Index("ix_jobs_status", "status"),
)

alias_moves = Table(
    "alias_moves",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("model_name", String(256), nullable=False),
    Column("alias", String(255), nullable=False),
    Column("version", BigInteger, nullable=False),
    Column("previous_version", BigInteger, nullable=True),
    Column("action", String(32), nullable=False),
    Column("job_id", String(64), nullable=True),
    Column("moved_at", DateTime(timezone=True), nullable=False),
    Index("ix_alias_moves_model_name", "model_name"),
)

#: What the trainer decided per monitor episode (domain/episodes.py).
episodes = Table(
    "trainer_episodes",
    metadata,
    Column("model_name", String(256), primary_key=True),
    Column("episode_id", String(200), primary_key=True),
    Column("open", Boolean, nullable=False, default=True),
    Column("resolved", Boolean, nullable=False, default=False),
    Column("pending", JSON, nullable=True),
    Column("not_before", DateTime(timezone=True), nullable=True),
    Column("refusals", Integer, nullable=False, default=0),
    Column("escalated", Boolean, nullable=False, default=False),
    Column("job_ids", JSON, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

#: Model documents as applied (``driftloop apply``): every revision, the latest wins.
declarations = Table(
    "model_declarations",
    metadata,
    Column("model_name", String(256), primary_key=True),
    Column("revision", Integer, primary_key=True),
    Column("digest", String(64), nullable=False),
    Column("document", JSON, nullable=False),
    Column("applied_by", String(256), nullable=False),
    Column("applied_at", DateTime(timezone=True), nullable=False),
)
