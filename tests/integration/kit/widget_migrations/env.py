"""Alembic environment of the throw-away migrations used by the kit's tests."""

from sqlalchemy import Column, Integer, MetaData, String, Table

from driftloop_kit.migrations import make_env

metadata = MetaData()
Table(
    "widgets",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("colour", String(20)),
)

make_env(metadata)
