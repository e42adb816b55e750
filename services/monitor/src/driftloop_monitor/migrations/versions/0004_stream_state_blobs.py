"""stream state in blobs: one row per window per batch, one per partition of waiting
predictions per batch, joins apart; the rows of the previous layout converted

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04
"""

import hashlib
from itertools import groupby

from alembic import op
import sqlalchemy as sa

from driftloop_monitor.adapters.blobs import Waiting, decode_rows, decode_waiting, encode


revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# The previous layout (0003), as far as the conversion reads or writes it.
_rows = sa.table(
    "monitor_window_rows",
    sa.column("event_id", sa.String),
    sa.column("idx", sa.Integer),
    sa.column("window_id", sa.String),
    sa.column("partition", sa.Integer),
    sa.column("model_name", sa.String),
    sa.column("version", sa.BigInteger),
    sa.column("run_id", sa.String),
    sa.column("time", sa.Float),
    sa.column("seen", sa.Float),
    sa.column("row", sa.JSON),
    sa.column("traceparent", sa.String),
)
_pending = sa.table(
    "monitor_pending_labels",
    sa.column("event_id", sa.String),
    sa.column("request_id", sa.String),
    sa.column("partition", sa.Integer),
    sa.column("model_name", sa.String),
    sa.column("version", sa.BigInteger),
    sa.column("run_id", sa.String),
    sa.column("prediction", sa.JSON),
    sa.column("time", sa.Float),
    sa.column("expires", sa.Float),
    sa.column("truth", sa.JSON),
    sa.column("perf_window", sa.String),
)
_chunks = sa.table(
    "monitor_window_chunks",
    sa.column("window_id", sa.String),
    sa.column("position", sa.Integer),
    sa.column("partition", sa.Integer),
    sa.column("model_name", sa.String),
    sa.column("version", sa.BigInteger),
    sa.column("run_id", sa.String),
    sa.column("start", sa.Float),
    sa.column("last", sa.Float),
    sa.column("seen", sa.Float),
    sa.column("rows", sa.Integer),
    sa.column("data", sa.LargeBinary),
    sa.column("traceparent", sa.String),
)
_batches = sa.table(
    "monitor_waiting_batches",
    sa.column("id", sa.String),
    sa.column("partition", sa.Integer),
    sa.column("expires", sa.Float),
    sa.column("data", sa.LargeBinary),
)
_joins = sa.table(
    "monitor_label_joins",
    sa.column("event_id", sa.String),
    sa.column("request_id", sa.String),
    sa.column("partition", sa.Integer),
    sa.column("model_name", sa.String),
    sa.column("version", sa.BigInteger),
    sa.column("run_id", sa.String),
    sa.column("prediction", sa.JSON),
    sa.column("time", sa.Float),
    sa.column("expires", sa.Float),
    sa.column("truth", sa.JSON),
    sa.column("perf_window", sa.String),
    sa.column("decided", sa.Boolean),
)


def upgrade() -> None:
    op.create_table(
        "monitor_window_chunks",
        sa.Column("window_id", sa.String(length=400), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("partition", sa.Integer(), nullable=False),
        sa.Column("model_name", sa.String(length=256), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.Column("start", sa.Float(), nullable=False),
        sa.Column("last", sa.Float(), nullable=False),
        sa.Column("seen", sa.Float(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("traceparent", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("window_id", "position", name="pk_monitor_window_chunks"),
    )
    op.create_index("ix_monitor_window_chunks_partition", "monitor_window_chunks", ["partition"])
    op.create_table(
        "monitor_waiting_batches",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("partition", sa.Integer(), nullable=False),
        sa.Column("expires", sa.Float(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_monitor_waiting_batches_partition", "monitor_waiting_batches", ["partition"]
    )
    op.create_table(
        "monitor_label_joins",
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("request_id", sa.String(length=256), nullable=False),
        sa.Column("partition", sa.Integer(), nullable=False),
        sa.Column("model_name", sa.String(length=256), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.Column("prediction", sa.JSON(), nullable=True),
        sa.Column("time", sa.Float(), nullable=False),
        sa.Column("expires", sa.Float(), nullable=False),
        sa.Column("truth", sa.JSON(), nullable=True),
        sa.Column("perf_window", sa.String(length=400), nullable=False),
        sa.Column("decided", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("event_id"),
    )
    op.create_index("ix_monitor_label_joins_partition", "monitor_label_joins", ["partition"])
    op.create_index("ix_monitor_label_joins_window", "monitor_label_joins", ["perf_window"])
    if not _offline():
        _rows_to_chunks()
        _pending_to_batches_and_joins()
    op.drop_index("ix_monitor_pending_labels_window", table_name="monitor_pending_labels")
    op.drop_index("ix_monitor_pending_labels_partition", table_name="monitor_pending_labels")
    op.drop_table("monitor_pending_labels")
    op.drop_index("ix_monitor_window_rows_window", table_name="monitor_window_rows")
    op.drop_index("ix_monitor_window_rows_partition", table_name="monitor_window_rows")
    op.drop_table("monitor_window_rows")


def _offline() -> bool:
    from alembic import context

    return context.is_offline_mode()


def _rows_to_chunks() -> None:
    """Each window's stored rows (in the order they were reloaded: by time) as one chunk."""
    connection = op.get_bind()
    rows = connection.execute(
        sa.select(_rows).order_by(_rows.c.window_id, _rows.c.time, _rows.c.event_id, _rows.c.idx)
    ).all()
    for window_id, group in groupby(rows, key=lambda r: r.window_id):
        window = list(group)
        first, last = window[0], window[-1]
        connection.execute(
            _chunks.insert().values(
                window_id=window_id,
                position=0,
                partition=first.partition,
                model_name=first.model_name,
                version=first.version,
                run_id=last.run_id,
                start=first.time,
                last=last.time,
                seen=min(r.seen for r in window),
                rows=len(window),
                data=encode([r.row for r in window]),
                traceparent=last.traceparent,
            )
        )


def _pending_to_batches_and_joins() -> None:
    """Waiting predictions as one batch per partition; joined ones as joins."""
    connection = op.get_bind()
    stored = connection.execute(
        sa.select(_pending).order_by(_pending.c.partition, _pending.c.time)
    ).all()
    waiting = [p for p in stored if p.perf_window is None]
    for partition, group in groupby(waiting, key=lambda p: p.partition):
        entries = [
            Waiting(
                event_id=p.event_id,
                request_id=p.request_id,
                model_name=p.model_name,
                version=p.version,
                run_id=p.run_id,
                prediction=p.prediction,
                time=p.time,
                expires=p.expires,
            )
            for p in group
        ]
        connection.execute(
            _batches.insert().values(
                id=entries[0].event_id,
                partition=partition,
                expires=max(w.expires for w in entries),
                data=encode(entries),
            )
        )
    joined = [
        {
            "event_id": p.event_id,
            "request_id": p.request_id,
            "partition": p.partition,
            "model_name": p.model_name,
            "version": p.version,
            "run_id": p.run_id,
            "prediction": p.prediction,
            "time": p.time,
            "expires": p.expires,
            "truth": p.truth,
            "perf_window": p.perf_window,
            "decided": False,
        }
        for p in stored
        if p.perf_window is not None
    ]
    if joined:
        connection.execute(_joins.insert(), joined)


def downgrade() -> None:
    op.create_table(
        "monitor_window_rows",
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("idx", sa.Integer(), nullable=False),
        sa.Column("window_id", sa.String(length=400), nullable=False),
        sa.Column("partition", sa.Integer(), nullable=False),
        sa.Column("model_name", sa.String(length=256), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.Column("time", sa.Float(), nullable=False),
        sa.Column("seen", sa.Float(), nullable=False),
        sa.Column("row", sa.JSON(), nullable=False),
        sa.Column("traceparent", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("event_id", "idx", name="pk_monitor_window_rows"),
    )
    op.create_index("ix_monitor_window_rows_partition", "monitor_window_rows", ["partition"])
    op.create_index("ix_monitor_window_rows_window", "monitor_window_rows", ["window_id"])
    op.create_table(
        "monitor_pending_labels",
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("request_id", sa.String(length=256), nullable=False),
        sa.Column("partition", sa.Integer(), nullable=False),
        sa.Column("model_name", sa.String(length=256), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.Column("prediction", sa.JSON(), nullable=False),
        sa.Column("time", sa.Float(), nullable=False),
        sa.Column("expires", sa.Float(), nullable=False),
        sa.Column("truth", sa.JSON(), nullable=True),
        sa.Column("perf_window", sa.String(length=400), nullable=True),
        sa.PrimaryKeyConstraint("event_id"),
    )
    op.create_index("ix_monitor_pending_labels_partition", "monitor_pending_labels", ["partition"])
    op.create_index("ix_monitor_pending_labels_window", "monitor_pending_labels", ["perf_window"])
    if not _offline():
        _chunks_to_rows()
        _batches_and_joins_to_pending()
    op.drop_index("ix_monitor_label_joins_window", table_name="monitor_label_joins")
    op.drop_index("ix_monitor_label_joins_partition", table_name="monitor_label_joins")
    op.drop_table("monitor_label_joins")
    op.drop_index("ix_monitor_waiting_batches_partition", table_name="monitor_waiting_batches")
    op.drop_table("monitor_waiting_batches")
    op.drop_index("ix_monitor_window_chunks_partition", table_name="monitor_window_chunks")
    op.drop_table("monitor_window_chunks")


def _chunks_to_rows() -> None:
    """Chunks back to one row each; the rows' event ids (not kept in chunks) are made up
    from the window and the row's place in it, so that their order stays."""
    connection = op.get_bind()
    chunks = connection.execute(
        sa.select(_chunks).order_by(_chunks.c.window_id, _chunks.c.position)
    ).all()
    for chunk in chunks:
        stem = hashlib.sha1(chunk.window_id.encode()).hexdigest()[:40]
        values = [
            {
                "event_id": f"{stem}:{chunk.position + i:08d}",
                "idx": 0,
                "window_id": chunk.window_id,
                "partition": chunk.partition,
                "model_name": chunk.model_name,
                "version": chunk.version,
                "run_id": chunk.run_id,
                # Reloaded by time: the chunk's rows keep their order between its bounds.
                "time": chunk.start if i == 0 else chunk.last,
                "seen": chunk.seen,
                "row": row,
                "traceparent": chunk.traceparent,
            }
            for i, row in enumerate(decode_rows(chunk.data))
        ]
        if values:
            connection.execute(_rows.insert(), values)


def _batches_and_joins_to_pending() -> None:
    connection = op.get_bind()
    joins = connection.execute(sa.select(_joins).where(_joins.c.decided.is_(False))).all()
    joined = {j.event_id for j in joins}
    decided = {
        j.event_id
        for j in connection.execute(sa.select(_joins.c.event_id).where(_joins.c.decided.is_(True)))
    }
    values = []
    for batch in connection.execute(sa.select(_batches)).all():
        for w in decode_waiting(batch.data):
            if w.event_id in joined or w.event_id in decided:
                continue
            values.append(w.pending(batch.partition))
    values += [
        {
            "event_id": j.event_id,
            "request_id": j.request_id,
            "partition": j.partition,
            "model_name": j.model_name,
            "version": j.version,
            "run_id": j.run_id,
            "prediction": j.prediction,
            "time": j.time,
            "expires": j.expires,
            "truth": j.truth,
            "perf_window": j.perf_window,
        }
        for j in joins
    ]
    if values:
        connection.execute(_pending.insert(), values)
