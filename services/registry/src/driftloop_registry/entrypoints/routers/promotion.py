"""driftloop's compare-and-set alias move (``/api/2.0/driftloop/aliases/promote``).

MLflow's ``set-alias`` moves one alias unconditionally; a promotion moves two (the
champion, and the previous alias to the version it left) and must not overwrite a move
it did not see. This endpoint does both in one transaction, only if the alias still
points where the caller read it.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import Field

from driftloop_kit.auth import DEPLOYER, CallerDep
from driftloop_kit.responses import MlflowJSONResponse
from driftloop_registry.domain.model import EventRef, Model
from driftloop_registry.entrypoints.deps import AliasesDep

router = APIRouter(
    prefix="/api/2.0/driftloop", tags=["aliases"], default_response_class=MlflowJSONResponse
)


class Promote(Model):
    name: str
    alias: str
    version: str
    expected_version: int | None = Field(
        description=(
            "The version the alias must point to now (null: the alias must not exist); "
            "anything else is a 409 and nothing moves."
        )
    )
    previous_alias: str | None = Field(
        default=None,
        description="Also point this alias at the version `alias` leaves (e.g. `previous`).",
    )
    cause: EventRef | None = Field(
        default=None, description="The event that caused the move (e.g. a training.completed)."
    )


@router.post("/aliases/promote", dependencies=[DEPLOYER])
async def promote(body: Promote, aliases: AliasesDep, caller: CallerDep) -> dict[str, Any]:
    """Move ``alias`` to ``version`` if it points to ``expected_version``, and
    ``previous_alias`` to the version it left, atomically; ``alias.set`` for each move.
    """
    left = await aliases.promote(
        name=body.name,
        alias=body.alias,
        version=body.version,
        expected=body.expected_version,
        previous_alias=body.previous_alias,
        cause=body.cause,
        user_id=caller.subject,
    )
    return {"name": body.name, "alias": body.alias, "version": body.version, "previous": left}
