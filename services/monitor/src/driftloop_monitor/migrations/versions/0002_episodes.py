"""episodes of a model version: the open drift and performance episodes

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03
"""

from alembic import op
import sqlalchemy as sa


revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_COUNTERS = ("drift_episode_windows", "drift_clear_windows", "performance_episode_windows", "performance_clear_windows")


def upgrade() -> None:
    with op.batch_alter_table("monitor_version_state") as table:
        table.add_column(sa.Column("drift_episode_id", sa.String(length=200), nullable=True))
        table.add_column(sa.Column("performance_episode_id", sa.String(length=200), nullable=True))
        table.add_column(sa.Column("degraded_event_id", sa.String(length=64), nullable=True))
        for name in _COUNTERS:
            table.add_column(sa.Column(name, sa.BigInteger(), nullable=False, server_default="0"))
    # A version drifting before the upgrade is in an episode: give it an id.
    op.execute(
        "UPDATE monitor_version_state SET drift_episode_id = 'ep-' || model_name || '-' "
        "|| CAST(version AS VARCHAR) || '-' || COALESCE(detected_event_id, 'upgraded') "
        "WHERE drifted"
    )


def downgrade() -> None:
    with op.batch_alter_table("monitor_version_state") as table:
        for name in ("drift_episode_id", "performance_episode_id", "degraded_event_id", *_COUNTERS):
            table.drop_column(name)
