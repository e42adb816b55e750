"""The monitor's tables (plus the bus's outbox and inbox)."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Text,
    func,
)
from sqlalchemy import Table as _Table

from driftloop_bus import tables as bus_tables

metadata = MetaData()

_ID = BigInteger().with_variant(Integer(), "sqlite")  # SQLite autoincrements INTEGER only

#: One monitoring policy per registered model (JSON of ``MonitorPolicy``).
policies = _Table(
    "monitor_policies",
    metadata,
    Column("model_name", String(256), primary_key=True),
    Column("policy", JSON, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

#: Reference data per model version (Parquet), with Evidently's column types.
references = _Table(
    "monitor_references",
    metadata,
    Column("model_name", String(256), nullable=False),
    Column("version", BigInteger, nullable=False),
    Column("digest", String(64), nullable=False),
    Column("rows", Integer, nullable=False),
    Column("column_types", JSON, nullable=False),
    Column("source", String(2000), nullable=False),
    Column("data", LargeBinary, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("model_name", "version", name="pk_monitor_references"),
)

#: One row per closed window of a model version: the drift decision or why there was none.
drift_results = _Table(
    "monitor_drift_results",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("model_name", String(256), nullable=False),
    Column("version", BigInteger, nullable=False),
    Column("run_id", String(64), nullable=False),
    Column("window_id", String(400), nullable=False, unique=True),
    Column("start_time", DateTime(timezone=True), nullable=False),
    Column("end_time", DateTime(timezone=True), nullable=False),
    Column("rows", Integer, nullable=False),
    # "tested", "no_reference" or "too_small"
    Column("status", String(32), nullable=False),
    Column("drift_share", Float, nullable=False),
    Column("dataset_drift_threshold", Float, nullable=False),
    Column("dataset_drift", Boolean, nullable=False),
    Column("columns", JSON, nullable=False),
    Column("skipped", JSON, nullable=False),
    Column("reference_digest", String(64), nullable=False),
    Column("report_id", String(64), nullable=True),
    # The drift.detected or drift.cleared event this window caused, if any.
    Column("event_type", String(200), nullable=True),
    Column("event_id", String(64), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_monitor_drift_results_version", "model_name", "version", "id"),
)

#: One row per performance window (labelled predictions of a model version).
performance_results = _Table(
    "monitor_performance_results",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("model_name", String(256), nullable=False),
    Column("version", BigInteger, nullable=False),
    Column("run_id", String(64), nullable=False),
    Column("window_id", String(400), nullable=False, unique=True),
    Column("start_time", DateTime(timezone=True), nullable=False),
    Column("end_time", DateTime(timezone=True), nullable=False),
    Column("rows", Integer, nullable=False),
    Column("metric", String(32), nullable=False),
    Column("value", Float, nullable=False),
    Column("threshold", Float, nullable=False),
    Column("degraded", Boolean, nullable=False),
    Column("report_id", String(64), nullable=True),
    Column("event_id", String(64), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_monitor_performance_results_version", "model_name", "version", "id"),
)

#: Reports: Evidently's JSON here, its HTML in the report folder.
reports = _Table(
    "monitor_reports",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("kind", String(32), nullable=False),  # "drift" or "performance"
    Column("model_name", String(256), nullable=False),
    Column("version", BigInteger, nullable=False),
    Column("window_id", String(400), nullable=False),
    Column("body", Text, nullable=False),
    Column("has_html", Boolean, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_monitor_reports_window", "window_id"),
)

#: Per model version: drift state (for drift.cleared) and counters.
version_state = _Table(
    "monitor_version_state",
    metadata,
    Column("model_name", String(256), nullable=False),
    Column("version", BigInteger, nullable=False),
    Column("drifted", Boolean, nullable=False, server_default="0"),
    Column("detected_event_id", String(64), nullable=True),
    Column("windows", BigInteger, nullable=False, server_default="0"),
    Column("rows", BigInteger, nullable=False, server_default="0"),
    Column("unreferenced_rows", BigInteger, nullable=False, server_default="0"),
    Column("unreferenced_windows", BigInteger, nullable=False, server_default="0"),
    Column("labelled_rows", BigInteger, nullable=False, server_default="0"),
    # The open drift and performance episodes (domain/drift_state.py).
    Column("drift_episode_id", String(200), nullable=True),
    Column("drift_episode_windows", BigInteger, nullable=False, server_default="0"),
    Column("drift_clear_windows", BigInteger, nullable=False, server_default="0"),
    Column("performance_episode_id", String(200), nullable=True),
    Column("degraded_event_id", String(64), nullable=True),
    Column("performance_episode_windows", BigInteger, nullable=False, server_default="0"),
    Column("performance_clear_windows", BigInteger, nullable=False, server_default="0"),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("model_name", "version", name="pk_monitor_version_state"),
)

#: The input rows of open windows (and of closed ones not decided yet): one row per window
#: per consumed batch, its rows encoded together (``adapters/blobs.py``), ``position`` the
#: index of its first row in the window. What the stream engine writes per batch and
#: reloads when it is given a partition; a window's chunks are deleted in the transaction
#: that decides it.
window_chunks = _Table(
    "monitor_window_chunks",
    metadata,
    Column("window_id", String(400), nullable=False),
    Column("position", Integer, nullable=False),
    Column("partition", Integer, nullable=False),
    Column("model_name", String(256), nullable=False),
    Column("version", BigInteger, nullable=False),
    Column("run_id", String(64), nullable=False),  # of the chunk's last prediction
    Column("start", Float, nullable=False),  # first row's event time, epoch seconds
    Column("last", Float, nullable=False),  # last row's event time
    Column("seen", Float, nullable=False),  # when the monitor took the first, epoch seconds
    Column("rows", Integer, nullable=False),
    Column("data", LargeBinary, nullable=False),
    Column("traceparent", String(64), nullable=True),
    PrimaryKeyConstraint("window_id", "position", name="pk_monitor_window_chunks"),
    Index("ix_monitor_window_chunks_partition", "partition"),
)

#: Single-row predictions waiting for their label: one row per partition per consumed
#: batch, its predictions encoded together (``adapters/blobs.py``) with their request ids
#: (the label join's key, in memory); ``id`` is the first prediction's event id. Deleted
#: once every prediction in it has waited its time (``expires``, the latest of them).
waiting_batches = _Table(
    "monitor_waiting_batches",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("partition", Integer, nullable=False),
    Column("expires", Float, nullable=False),
    Column("data", LargeBinary, nullable=False),
    Index("ix_monitor_waiting_batches_partition", "partition"),
)

#: Predictions joined with their label: the truth and its performance window, with what
#: the window needs of the prediction. Once the window is decided the row stays, ``decided``,
#: until the prediction's own wait is over, so that a restore does not take the prediction
#: in its waiting batch for one still waiting.
label_joins = _Table(
    "monitor_label_joins",
    metadata,
    Column("event_id", String(64), primary_key=True),
    Column("request_id", String(256), nullable=False),
    Column("partition", Integer, nullable=False),
    Column("model_name", String(256), nullable=False),
    Column("version", BigInteger, nullable=False),
    Column("run_id", String(64), nullable=False),
    Column("prediction", JSON, nullable=True),
    Column("time", Float, nullable=False),
    Column("expires", Float, nullable=False),
    Column("truth", JSON, nullable=True),
    Column("perf_window", String(400), nullable=False),
    Column("decided", Boolean, nullable=False),
    Index("ix_monitor_label_joins_partition", "partition"),
    Index("ix_monitor_label_joins_window", "perf_window"),
)

#: Next offset per partition whose records' state is in the tables above, written in the
#: same transaction as that state: a new owner of the partition starts there.
stream_offsets = _Table(
    "monitor_stream_offsets",
    metadata,
    Column("group_id", String(256), nullable=False),
    Column("topic", String(256), nullable=False),
    Column("partition", Integer, nullable=False),
    Column("next_offset", BigInteger, nullable=False),
    PrimaryKeyConstraint("group_id", "topic", "partition", name="pk_monitor_stream_offsets"),
)

#: Every table the monitor's migrations create.
ALL_METADATA = (metadata, bus_tables.metadata)
