"""Models the trainer knows: their documents (``driftloop apply``), policy and job spec,
manual training, rollback."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from driftloop_events.envelope import new_event_id
from driftloop_kit.auth import DEPLOYER, READER, CallerDep
from driftloop_kit.declarations import ModelDeclaration
from driftloop_kit.errors import InvalidInput, NotFound
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
    """Every model with a declared job: its trigger policy, job spec and the revision of
    its document (0: declared by the trainer's `models` setting)."""
    return {
        "models": [
            {"name": name, **config.model_dump(mode="json")}
            for name, config in sorted(training.models.items())
        ]
    }


@router.put("/{name}", dependencies=[DEPLOYER])
async def apply_model(
    name: str, declaration: ModelDeclaration, training: TrainingDep, caller: CallerDep
) -> JSONResponse:
    """Apply a model's document (`driftloop apply`): stored as its next revision,
    published as `model.declared`, taken up by the trainer, serving and the monitor
    without a restart. 201 with a new revision; 200 when the latest revision already is
    this document. A document that does not validate is a 400 listing every error, and
    nothing changes."""
    if declaration.name != name:
        raise InvalidInput(
            f"the document's metadata.name {declaration.name!r} is not the model {name!r} "
            "of the path"
        )
    applied = await training.declare(declaration, by=caller.subject)
    return JSONResponse(applied, status_code=201 if applied["changed"] else 200)


@router.get("/{name}", dependencies=[READER])
async def get_model(name: str, training: TrainingDep, store: StoreDep) -> dict[str, Any]:
    """One model's trigger policy, job spec, and its latest document (null for a model
    declared by the `models` setting)."""
    config = training.config(name)
    revisions = await store.declarations(name)
    document = revisions[0]["document"] if revisions else None
    return {"name": name, **config.model_dump(mode="json"), "document": document}


@router.get("/{name}/revisions", dependencies=[READER])
async def model_revisions(name: str, store: StoreDep) -> dict[str, Any]:
    """Every revision of the model's document, latest first: who applied it, when, and
    the document."""
    revisions = await store.declarations(name)
    if not revisions:
        raise NotFound(f"No document was applied for model {name!r}")
    return {"revisions": revisions}


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
async def alias_moves(
    name: str,
    store: StoreDep,
    limit: Annotated[int | None, Query(ge=1, le=10_000, description="The latest N only.")] = None,
) -> dict[str, Any]:
    """Alias moves the trainer made for the model (promotions, rollbacks), latest first."""
    return {"alias_moves": await store.list_moves(name, limit=limit)}
