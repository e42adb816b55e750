"""The suite's issued tokens and stored users in the tracking database (SQLAlchemy Core)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, insert, select, update

from driftloop_kit.db import Database
from driftloop_tracking.adapters.tables import auth_tokens, auth_users


class SqlCredentialStore:
    """Rows of ``auth_tokens`` and ``auth_users`` (the use cases' ``CredentialStorePort``)."""

    def __init__(self, database: Database) -> None:
        self.database = database

    async def add_token(self, row: dict[str, Any]) -> None:
        async with self.database.connection() as connection:
            await connection.execute(insert(auth_tokens).values(**row))

    async def tokens(self, *, now: int, include_expired: bool) -> list[dict[str, Any]]:
        query = select(auth_tokens).order_by(auth_tokens.c.created_at.desc())
        if not include_expired:
            query = query.where(auth_tokens.c.expires_at > now)
        async with self.database.connection() as connection:
            return [dict(row._mapping) for row in await connection.execute(query)]

    async def revoke(self, token_id: str, *, now: int) -> bool:
        async with self.database.connection() as connection:
            found = await connection.execute(
                update(auth_tokens)
                .where(auth_tokens.c.token_id == token_id, auth_tokens.c.revoked_at.is_(None))
                .values(revoked_at=now)
            )
            if found.rowcount:
                return True
            exists = await connection.execute(
                select(auth_tokens.c.token_id).where(auth_tokens.c.token_id == token_id)
            )
            return exists.first() is not None

    async def revoked(self, *, now: int) -> list[str]:
        query = select(auth_tokens.c.token_id).where(
            auth_tokens.c.revoked_at.is_not(None), auth_tokens.c.expires_at > now
        )
        async with self.database.connection() as connection:
            return [str(row[0]) for row in await connection.execute(query)]

    async def put_user(self, row: dict[str, Any]) -> bool:
        """Insert or replace a user; whether it existed."""
        async with self.database.connection() as connection:
            gone = await connection.execute(
                delete(auth_users).where(auth_users.c.name == row["name"])
            )
            await connection.execute(insert(auth_users).values(**row))
            return bool(gone.rowcount)

    async def user(self, name: str) -> dict[str, Any] | None:
        async with self.database.connection() as connection:
            found = (
                await connection.execute(select(auth_users).where(auth_users.c.name == name))
            ).first()
        return dict(found._mapping) if found is not None else None

    async def users(self) -> list[dict[str, Any]]:
        query = select(auth_users.c.name, auth_users.c.role, auth_users.c.created_at)
        async with self.database.connection() as connection:
            return [dict(row._mapping) for row in await connection.execute(query.order_by("name"))]

    async def delete_user(self, name: str) -> bool:
        async with self.database.connection() as connection:
            gone = await connection.execute(delete(auth_users).where(auth_users.c.name == name))
            return bool(gone.rowcount)
