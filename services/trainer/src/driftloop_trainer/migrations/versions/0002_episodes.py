"""episodes: deferred triggers and refusals per monitor episode; decisions name theirs

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04
"""

from alembic import op
import sqlalchemy as sa


revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("decisions") as table:
        table.add_column(sa.Column("episode_id", sa.String(length=200), nullable=True))
    op.create_table(
        "trainer_episodes",
        sa.Column("model_name", sa.String(length=256), nullable=False),
        sa.Column("episode_id", sa.String(length=200), nullable=False),
        sa.Column("open", sa.Boolean(), nullable=False),
        sa.Column("resolved", sa.Boolean(), nullable=False),
        sa.Column("pending", sa.JSON(), nullable=True),
        sa.Column("not_before", sa.DateTime(timezone=True), nullable=True),
        sa.Column("refusals", sa.Integer(), nullable=False),
        sa.Column("escalated", sa.Boolean(), nullable=False),
        sa.Column("job_ids", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("model_name", "episode_id", name=op.f("pk_trainer_episodes")),
    )


def downgrade() -> None:
    op.drop_table("trainer_episodes")
    with op.batch_alter_table("decisions") as table:
        table.drop_column("episode_id")
