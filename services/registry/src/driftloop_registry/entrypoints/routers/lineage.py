"""driftloop's lineage endpoint (``/api/2.0/driftloop/lineage``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from driftloop_kit.auth import READER
from driftloop_kit.responses import MlflowJSONResponse
from driftloop_registry.domain.model import ModelLineage
from driftloop_registry.entrypoints.deps import LineageDep

router = APIRouter(
    prefix="/api/2.0/driftloop", tags=["lineage"], default_response_class=MlflowJSONResponse
)


@router.get("/lineage", dependencies=[READER])
async def get_lineage(
    lineage: LineageDep,
    name: Annotated[str, Query(description="Registered model name.")],
    version: Annotated[str | None, Query(description="The version whose chain is wanted.")] = None,
    alias: Annotated[
        str | None, Query(description="An alias naming that version (instead of `version`).")
    ] = None,
) -> ModelLineage:
    """A version's lineage and chain of events, or a model's whole lineage log.

    With ``version`` or ``alias``: the version's lineage (feature views, source run
    with metrics, params and dataset digests, triggering event, training job) and,
    oldest first, the events that led to it (the alerts that triggered its training,
    the training job) and those that followed (alias moves to and from it, drift and
    performance reports on it, the retraining they triggered, the versions it made).
    Without: every event about the model, oldest first.
    """
    return await lineage.get(name, version=version, alias=alias)
