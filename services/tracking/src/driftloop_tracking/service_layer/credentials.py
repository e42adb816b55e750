"""The suite's credentials: tokens issued through the API (listed, revocable) and users.

The tracking service keeps them, as MLflow's auth app lives in its tracking server;
every other service reads the revoked token ids and checks stored users' passwords
here (:class:`driftloop_kit.auth.CredentialsClient`). Tokens are signed with the
suite's key; only their ids are stored. Passwords are stored as salted scrypt hashes.
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any, Protocol

from driftloop_kit.auth import Principal, Role, TokenSigner, hash_password, verify_password
from driftloop_kit.errors import InvalidInput, NotFound

#: The longest lifetime of an issued token.
MAX_TTL_SECONDS = 366 * 86_400
_NAME = re.compile(r"^[A-Za-z0-9_.@:+-]{1,200}$")


class CredentialStorePort(Protocol):
    """Where issued tokens and users are kept."""

    async def add_token(self, row: dict[str, Any]) -> None: ...
    async def tokens(self, *, now: int, include_expired: bool) -> list[dict[str, Any]]: ...
    async def revoke(self, token_id: str, *, now: int) -> bool: ...
    async def revoked(self, *, now: int) -> list[str]: ...
    async def put_user(self, row: dict[str, Any]) -> bool: ...
    async def user(self, name: str) -> dict[str, Any] | None: ...
    async def users(self) -> list[dict[str, Any]]: ...
    async def delete_user(self, name: str) -> bool: ...


def _name(value: str, what: str) -> str:
    if not _NAME.match(value):
        raise InvalidInput(
            f"{what} must be 1 to 200 letters, digits or . _ @ : + -, got {value[:50]!r}"
        )
    return value


class Credentials:
    """Issue, list and revoke tokens; store and check users.

    Args:
        store: The tables.
        signer: Signs with the suite's key.
    """

    def __init__(self, store: CredentialStorePort, signer: TokenSigner) -> None:
        self.store = store
        self.signer = signer

    async def issue(
        self, *, role: Role, subject: str, ttl_seconds: int, created_by: str
    ) -> dict[str, Any]:
        """A new token, recorded (its id, not the token). Raises InvalidInput on bad bounds."""
        _name(subject, "subject")
        if not 1 <= ttl_seconds <= MAX_TTL_SECONDS:
            raise InvalidInput(f"ttl_seconds must be between 1 and {MAX_TTL_SECONDS}")
        token = self.signer.issue(subject=subject, role=role, ttl_seconds=ttl_seconds)
        claims = self.signer.decode(token)
        row = {
            "token_id": claims["jti"],
            "subject": subject,
            "role": role.label,
            "created_by": created_by[:200],
            "created_at": int(claims["iat"]),
            "expires_at": int(claims["exp"]),
            "revoked_at": None,
        }
        await self.store.add_token(row)
        return {"token": token, **row}

    async def tokens(self, *, include_expired: bool = False) -> list[dict[str, Any]]:
        """The issued tokens, newest first (ids, never the tokens)."""
        return await self.store.tokens(now=int(time.time()), include_expired=include_expired)

    async def revoke(self, token_id: str) -> None:
        """Revoke a token: every service refuses it within ``auth_refresh_seconds``.

        Raises:
            NotFound: No token of that id was issued here.
        """
        if not await self.store.revoke(token_id[:64], now=int(time.time())):
            raise NotFound(f"no token {token_id[:64]!r} was issued through this suite")

    async def revoked_ids(self) -> list[str]:
        """Ids of revoked tokens that have not expired (what the services refuse)."""
        return await self.store.revoked(now=int(time.time()))

    async def put_user(self, *, name: str, password: str, role: Role) -> bool:
        """Create or replace a user; whether it existed."""
        _name(name, "name")
        if not 12 <= len(password) <= 1024:
            raise InvalidInput("a password has 12 to 1024 characters")
        hashed = await asyncio.to_thread(hash_password, password)
        row = {"name": name, "password_hash": hashed, "role": role.label}
        return await self.store.put_user({**row, "created_at": int(time.time())})

    async def users(self) -> list[dict[str, Any]]:
        """Every user with their role (never a hash)."""
        return await self.store.users()

    async def delete_user(self, name: str) -> None:
        """Delete a user. Raises NotFound."""
        if not await self.store.delete_user(name[:200]):
            raise NotFound(f"no user {name[:200]!r}")

    async def check_password(self, name: str, password: str) -> Principal | None:
        """The user's principal when ``password`` is theirs; None otherwise."""
        found = await self.store.user(name[:200])
        if found is None or len(password) > 1024:
            return None
        matches = await asyncio.to_thread(verify_password, password, found["password_hash"])
        if not matches:
            return None
        # Checked again after the cache's lifetime: a deleted user stops working then.
        return Principal(subject=name, role=Role.parse(found["role"]), expires_at=time.time() + 300)
