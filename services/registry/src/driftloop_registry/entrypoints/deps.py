"""FastAPI dependencies of the registry routers, as ``Annotated`` aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from driftloop_registry.adapters.store import RegistryStore


def get_store(request: Request) -> RegistryStore:
    """The store built by ``create_app()``."""
    store: RegistryStore = request.app.state.store
    return store


StoreDep = Annotated[RegistryStore, Depends(get_store)]
