"""The outbox and inbox tables, which every service adds to its own database.

A service includes :data:`metadata` in its Alembic ``target_metadata`` (next to its
own) so that its migrations create both tables.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    func,
)

from driftloop_kit.db import NAMING_CONVENTION

metadata = MetaData()

#: Events waiting to be published, written in the same transaction as the change
#: they describe. The relay publishes rows in ``id`` order and deletes them once
#: the broker acknowledged them.
outbox = Table(
    "outbox",
    metadata,
    Column(
        "id",
        BigInteger().with_variant(Integer(), "sqlite"),  # SQLite autoincrements INTEGER only
        primary_key=True,
        autoincrement=True,
    ),
    Column("event_id", String(64), nullable=False, unique=True),
    Column("event_type", String(200), nullable=False),
    Column("topic", String(249), nullable=False),
    Column("key", LargeBinary, nullable=False),
    Column("value", LargeBinary, nullable=False),
    Column("headers", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("attempts", Integer, nullable=False, server_default="0"),
)

#: Events already handled, per consumer: a redelivered event finds its row here
#: and has no second effect. Written in the same transaction as the effect.
inbox = Table(
    "inbox",
    metadata,
    Column("consumer", String(200), nullable=False),
    Column("event_id", String(200), nullable=False),
    Column("event_type", String(200), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("consumer", "event_id", name="pk_inbox"),
)


def service_metadata() -> tuple[MetaData, tuple[MetaData, ...]]:
    """A service's own ``MetaData`` and every table of its database.

    Returns:
        The service's ``MetaData`` (constraint names from the kit's naming convention,
        so that migrations name them the same on SQLite and PostgreSQL), and the tuple of
        it and the bus's :data:`metadata` (outbox and inbox): Alembic's target.
    """
    own = MetaData(naming_convention=NAMING_CONVENTION)
    return own, (own, metadata)
