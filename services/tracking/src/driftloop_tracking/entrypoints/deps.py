"""FastAPI dependencies of the tracking routers, as ``Annotated`` aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from driftloop_kit.artifacts import ArtifactRepository
from driftloop_tracking.adapters.store import TrackingStore


# ``async def``: FastAPI runs a plain ``def`` dependency in a worker thread, a thread
# hop per request for reading an attribute.
async def get_store(request: Request) -> TrackingStore:
    """The store built by ``bootstrap()``."""
    store: TrackingStore = request.app.state.store
    return store


async def get_artifacts(request: Request) -> ArtifactRepository:
    """The artifact repository built by ``bootstrap()``."""
    artifacts: ArtifactRepository = request.app.state.artifacts
    return artifacts


StoreDep = Annotated[TrackingStore, Depends(get_store)]
ArtifactsDep = Annotated[ArtifactRepository, Depends(get_artifacts)]
