"""prediction inputs: what each one-row prediction was given, for labels keyed by its
request id alone

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04 07:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "prediction_inputs",
        sa.Column("request_id", sa.String(255), primary_key=True),
        sa.Column("model_name", sa.String(255), nullable=False),
        sa.Column("request_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("inputs", sa.JSON(), nullable=False),
    )
    op.create_index(
        "ix_prediction_inputs_request_time", "prediction_inputs", ["request_time"]
    )


def downgrade() -> None:
    op.drop_index("ix_prediction_inputs_request_time", table_name="prediction_inputs")
    op.drop_table("prediction_inputs")
