"""Models the trainer knows: their policy and job spec, manual training, rollback."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from driftloop_events.envelope import new_event_id
from driftloop_kit.auth import DEPLOYER, READER, CallerDep
from driftloop_trainer.domain.policy import Trigger, TriggerKind
from driftloop_trainer.entrypoints.deps import StoreDep, TrainingDep

router = APIRouter(prefix="/models", tags=["models"])


class TrainRequest(BaseModel):
    """Body of ``POST /models/{name}/train``."""

    reason: str = Field(default="manual request", examples=["new labels from the field team"])
    parameters: dict[str, str] = Field(default_factory=dict, examples=[{"max_iter": "500"}])
    requested_by: str = Field(
        default="",
        description=("Ignored: the job records the authenticated subject of the token that asked."),
        deprecated=True,
    )
    force: bool = Field(default=False, description="Skip the cooldown and the debounce.")
    dedup_key: str = Field(
        default="", description="Filled into the policy's `{window}`; empty for a unique key."
    )


@router.get("", dependencies=[READER])
async def list_models(training: TrainingDep) -> dict[str, Any]:
    """Every model with a declared job: its trigger policy and job spec."""
    return {
        "models": [
            {"name": name, **config.model_dump(mode="json")}
            for name, config in sorted(training.models.items())
        ]
    }


@router.get("/{name}", dependencies=[READER])
async def get_model(name: str, training: TrainingDep) -> dict[str, Any]:
    """One model's trigger policy and job spec."""
    return {"name": name, **training.config(name).model_dump(mode="json")}


@router.post("/{name}/train", status_code=202, dependencies=[DEPLOYER])
async def train(
    name: str, body: TrainRequest, training: TrainingDep, caller: CallerDep
) -> JSONResponse:
    """Ask for a training now. 202 with the job when one starts; 200 with the
    suppression and its reason when the policy says no."""
    found = await training.submit(
        Trigger(
            kind=TriggerKind.MANUAL,
            model=name,
            reason=body.reason,
            window=body.dedup_key or new_event_id(),
            parameters=body.parameters,
            requested_by=caller.subject,
            force=body.force,
        )
    )
    assert found is not None  # only redelivered events decide nothing
    decision, job_id = found
    content = {
        "outcome": decision.outcome.value,
        "suppression": decision.suppression.value if decision.suppression else None,
        "detail": decision.detail,
        "job_id": job_id,
    }
    return JSONResponse(content, status_code=202 if job_id else 200)


@router.post("/{name}/rollback", dependencies=[DEPLOYER])
async def rollback(name: str, training: TrainingDep) -> dict[str, Any]:
    """Move `champion` back to the `previous` version (the two aliases swap)."""
    return await training.rollback(name)


@router.get("/{name}/alias-moves", dependencies=[READER])
async def alias_moves(name: str, store: StoreDep) -> dict[str, Any]:
    """Alias moves the trainer made for the model (promotions, rollbacks), latest first."""
    return {"alias_moves": await store.list_moves(name)}
