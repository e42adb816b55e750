"""FastAPI dependencies of the trainer routers, as ``Annotated`` aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from driftloop_trainer.adapters.store import TrainerStore
from driftloop_trainer.service_layer.training import Training


def get_training(request: Request) -> Training:
    """The use cases built by ``bootstrap()``."""
    training: Training = request.app.state.training
    return training


def get_store(request: Request) -> TrainerStore:
    """The store built by ``bootstrap()``."""
    store: TrainerStore = request.app.state.store
    return store


TrainingDep = Annotated[Training, Depends(get_training)]
StoreDep = Annotated[TrainerStore, Depends(get_store)]
