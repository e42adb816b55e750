"""credentials: issued tokens (revocable) and stored users

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04 03:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "auth_tokens",
        sa.Column("token_id", sa.String(length=64), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.Column("revoked_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("token_id", name=op.f("pk_auth_tokens")),
    )
    op.create_index(
        op.f("ix_auth_tokens_revoked_at_expires_at"),
        "auth_tokens",
        ["revoked_at", "expires_at"],
        unique=False,
    )
    op.create_table(
        "auth_users",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("password_hash", sa.String(length=300), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_auth_users")),
    )


def downgrade() -> None:
    op.drop_table("auth_users")
    op.drop_index(op.f("ix_auth_tokens_revoked_at_expires_at"), table_name="auth_tokens")
    op.drop_table("auth_tokens")
