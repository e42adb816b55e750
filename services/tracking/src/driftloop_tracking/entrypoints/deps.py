"""FastAPI dependencies of the tracking routers, as ``Annotated`` aliases.

Each reads what ``create_app`` put in ``app.state`` from the container that
:func:`~driftloop_tracking.service_layer.bootstrap.bootstrap` built.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from driftloop_kit.artifacts import ArtifactRepository
from driftloop_tracking.service_layer.artifacts import ArtifactListing
from driftloop_tracking.service_layer.experiments import Experiments
from driftloop_tracking.service_layer.logged_models import LoggedModels
from driftloop_tracking.service_layer.runs import Runs


# ``async def``: FastAPI runs a plain ``def`` dependency in a worker thread, a thread
# hop per request for reading an attribute.
async def get_runs(request: Request) -> Runs:
    """The run use cases."""
    runs: Runs = request.app.state.runs
    return runs


async def get_experiments(request: Request) -> Experiments:
    """The experiment use cases."""
    experiments: Experiments = request.app.state.experiments
    return experiments


async def get_logged_models(request: Request) -> LoggedModels:
    """The logged-model use cases."""
    models: LoggedModels = request.app.state.logged_models
    return models


async def get_artifacts(request: Request) -> ArtifactRepository:
    """The artifact repository."""
    artifacts: ArtifactRepository = request.app.state.artifacts
    return artifacts


async def get_artifact_listing(request: Request) -> ArtifactListing:
    """The listings of a run's or a logged model's artifacts."""
    listing: ArtifactListing = request.app.state.artifact_listing
    return listing


RunsDep = Annotated[Runs, Depends(get_runs)]
ExperimentsDep = Annotated[Experiments, Depends(get_experiments)]
LoggedModelsDep = Annotated[LoggedModels, Depends(get_logged_models)]
ArtifactsDep = Annotated[ArtifactRepository, Depends(get_artifacts)]
ArtifactListingDep = Annotated[ArtifactListing, Depends(get_artifact_listing)]
