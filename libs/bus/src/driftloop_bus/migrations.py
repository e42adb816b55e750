"""Alembic operations that create the outbox and inbox tables in a service's database.

Every service that publishes or consumes events has both tables
(:mod:`driftloop_bus.tables`); its initial migration calls
:func:`create_outbox_and_inbox_v1` instead of spelling the tables out again. The
definitions here are frozen as they were first migrated: a later change to the tables
is a new function (``..._v2``) called by a new migration, never an edit of this one.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

__all__ = ["create_outbox_and_inbox_v1", "drop_outbox_and_inbox_v1"]


def create_outbox_and_inbox_v1() -> None:
    """Create ``inbox`` and ``outbox`` as :mod:`driftloop_bus.tables` first declared them."""
    op.create_table(
        "inbox",
        sa.Column("consumer", sa.String(length=200), nullable=False),
        sa.Column("event_id", sa.String(length=200), nullable=False),
        sa.Column("event_type", sa.String(length=200), nullable=False),
        sa.Column(
            "received_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("consumer", "event_id", name="pk_inbox"),
    )
    op.create_table(
        "outbox",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("event_type", sa.String(length=200), nullable=False),
        sa.Column("topic", sa.String(length=249), nullable=False),
        sa.Column("key", sa.LargeBinary(), nullable=False),
        sa.Column("value", sa.LargeBinary(), nullable=False),
        sa.Column("headers", sa.JSON(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("event_id"),
    )


def drop_outbox_and_inbox_v1() -> None:
    """Drop what :func:`create_outbox_and_inbox_v1` created."""
    op.drop_table("outbox")
    op.drop_table("inbox")
