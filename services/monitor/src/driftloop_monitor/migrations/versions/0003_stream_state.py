"""stream state: open windows' rows, predictions waiting for labels, stream offsets

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04
"""

from alembic import op
import sqlalchemy as sa


revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
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
    op.create_table(
        "monitor_stream_offsets",
        sa.Column("group_id", sa.String(length=256), nullable=False),
        sa.Column("topic", sa.String(length=256), nullable=False),
        sa.Column("partition", sa.Integer(), nullable=False),
        sa.Column("next_offset", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("group_id", "topic", "partition", name="pk_monitor_stream_offsets"),
    )


def downgrade() -> None:
    op.drop_table("monitor_stream_offsets")
    op.drop_index("ix_monitor_pending_labels_window", table_name="monitor_pending_labels")
    op.drop_index("ix_monitor_pending_labels_partition", table_name="monitor_pending_labels")
    op.drop_table("monitor_pending_labels")
    op.drop_index("ix_monitor_window_rows_window", table_name="monitor_window_rows")
    op.drop_index("ix_monitor_window_rows_partition", table_name="monitor_window_rows")
    op.drop_table("monitor_window_rows")
