"""The suite's tokens and users (``/api/2.0/driftloop/...``): issue, list, revoke; users.

Admins manage them; the other services read the revoked ids and check users' passwords
with their own service tokens.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from driftloop_kit.auth import (
    ADMIN,
    CREDENTIALS_API,
    READER,
    CallerDep,
    PermissionDenied,
    Role,
    Unauthenticated,
)
from driftloop_tracking.service_layer.credentials import MAX_TTL_SECONDS, Credentials

router = APIRouter(prefix=CREDENTIALS_API, tags=["credentials"])


async def get_credentials(request: Request) -> Credentials:
    """The credential use cases."""
    credentials: Credentials = request.app.state.credentials
    return credentials


CredentialsDep = Annotated[Credentials, Depends(get_credentials)]
RoleName = Annotated[str, Field(pattern="^(reader|writer|deployer|admin)$")]


class NewToken(BaseModel):
    """Body of ``POST /tokens``."""

    role: RoleName
    subject: str = Field(min_length=1, max_length=200)
    ttl_seconds: int = Field(default=30 * 86_400, ge=1, le=MAX_TTL_SECONDS)


class NewUser(BaseModel):
    """Body of ``POST /users``."""

    name: str = Field(min_length=1, max_length=200)
    password: str = Field(min_length=12, max_length=1024)
    role: RoleName


class Login(BaseModel):
    """Body of ``POST /users/verify``."""

    name: str = Field(min_length=1, max_length=200)
    password: str = Field(min_length=1, max_length=1024)


@router.post("/tokens", dependencies=[ADMIN])
async def create_token(
    body: NewToken, credentials: CredentialsDep, caller: CallerDep
) -> dict[str, Any]:
    """Issue a token (shown once; only its id is kept) that every service accepts."""
    return await credentials.issue(
        role=Role.parse(body.role),
        subject=body.subject,
        ttl_seconds=body.ttl_seconds,
        created_by=caller.subject,
    )


@router.get("/tokens", dependencies=[ADMIN])
async def list_tokens(credentials: CredentialsDep, include_expired: bool = False) -> dict[str, Any]:
    """The issued tokens: id, subject, role, who made it, when it expires, if revoked."""
    return {"tokens": await credentials.tokens(include_expired=include_expired)}


@router.get("/tokens/revoked", dependencies=[READER])
async def revoked_tokens(credentials: CredentialsDep) -> dict[str, Any]:
    """Ids of the revoked tokens not yet expired (every service reads them)."""
    return {"revoked": await credentials.revoked_ids()}


@router.delete("/tokens/{token_id}", dependencies=[ADMIN])
async def revoke_token(token_id: str, credentials: CredentialsDep) -> dict[str, Any]:
    """Revoke a token; every service refuses it within ``auth_refresh_seconds``."""
    await credentials.revoke(token_id)
    return {}


@router.post("/users", dependencies=[ADMIN])
async def put_user(body: NewUser, credentials: CredentialsDep) -> dict[str, Any]:
    """Create or replace a user (HTTP Basic: ``MLFLOW_TRACKING_USERNAME``/``PASSWORD``)."""
    replaced = await credentials.put_user(
        name=body.name, password=body.password, role=Role.parse(body.role)
    )
    return {"name": body.name, "role": body.role, "replaced": replaced}


@router.get("/users", dependencies=[ADMIN])
async def list_users(credentials: CredentialsDep) -> dict[str, Any]:
    """Every user and their role."""
    return {"users": await credentials.users()}


@router.delete("/users/{name}", dependencies=[ADMIN])
async def delete_user(name: str, credentials: CredentialsDep) -> dict[str, Any]:
    """Delete a user."""
    await credentials.delete_user(name)
    return {}


@router.post("/users/verify", dependencies=[READER])
async def verify_user(body: Login, credentials: CredentialsDep, caller: CallerDep) -> Any:
    """For the other services: the user's role when the password is theirs, else 401.
    Only a service's own token may ask (no one can try passwords through it)."""
    if not caller.subject.startswith("service:"):
        raise PermissionDenied("only the suite's services check passwords here")
    found = await credentials.check_password(body.name, body.password)
    if found is None:
        raise Unauthenticated("wrong user name or password")
    return {"name": found.subject, "role": found.role.label}
