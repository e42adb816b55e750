"""the label store: one row per label (model, request id or entity keys)

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04 01:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "labels",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column("model_name", sa.String(255), nullable=False),
        sa.Column("label_key", sa.String(1024), nullable=False),
        sa.Column("request_id", sa.String(255), nullable=True),
        sa.Column("entity_keys", sa.JSON(), nullable=False),
        sa.Column("ground_truth", sa.JSON(), nullable=True),
        sa.Column("event_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("model_name", "label_key", name="uq_labels_model_key"),
    )
    op.create_index("ix_labels_model_event_time", "labels", ["model_name", "event_time", "id"])


def downgrade() -> None:
    op.drop_index("ix_labels_model_event_time", table_name="labels")
    op.drop_table("labels")
