"""outbox and inbox of the features service

Revision ID: 0001
Revises:
Create Date: 2026-11-30 13:30:00
"""

from alembic import op

from driftloop_bus.migrations import create_outbox_and_inbox_v1, drop_outbox_and_inbox_v1
import sqlalchemy as sa


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_outbox_and_inbox_v1()


def downgrade() -> None:
    drop_outbox_and_inbox_v1()
