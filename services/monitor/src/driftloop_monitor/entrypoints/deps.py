"""FastAPI dependencies of the monitor routers, as ``Annotated`` aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from driftloop_monitor.adapters.store import MonitorStore
from driftloop_monitor.service_layer.monitor import Monitor


def get_monitor(request: Request) -> Monitor:
    """The monitor built by ``create_app``."""
    monitor: Monitor = request.app.state.monitor
    return monitor


def get_store(request: Request) -> MonitorStore:
    """The store built by ``create_app``."""
    store: MonitorStore = request.app.state.store
    return store


MonitorDep = Annotated[Monitor, Depends(get_monitor)]
StoreDep = Annotated[MonitorStore, Depends(get_store)]
