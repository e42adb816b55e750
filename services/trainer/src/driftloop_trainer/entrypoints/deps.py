"""FastAPI dependencies of the trainer routers, as ``Annotated`` aliases.

Each comes from the :class:`TrainerContainer` ``bootstrap()`` built, kept on the app.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from driftloop_trainer.adapters.store import TrainerStore
from driftloop_trainer.service_layer.bootstrap import TrainerContainer
from driftloop_trainer.service_layer.training import Training


def get_container(request: Request) -> TrainerContainer:
    """What ``bootstrap()`` built for this app."""
    container: TrainerContainer = request.app.state.container
    return container


ContainerDep = Annotated[TrainerContainer, Depends(get_container)]


def get_training(container: ContainerDep) -> Training:
    """The use cases."""
    return container.training


def get_store(container: ContainerDep) -> TrainerStore:
    """The store, for the read-only routes (jobs, decisions, alias moves)."""
    return container.store


TrainingDep = Annotated[Training, Depends(get_training)]
StoreDep = Annotated[TrainerStore, Depends(get_store)]
