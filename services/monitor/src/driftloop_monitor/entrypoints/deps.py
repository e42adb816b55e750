"""FastAPI dependencies of the monitor routers, as ``Annotated`` aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from driftloop_monitor.adapters.store import MonitorStore
from driftloop_monitor.service_layer.bootstrap import MonitorContainer
from driftloop_monitor.service_layer.monitor import Monitor


def get_container(request: Request) -> MonitorContainer:
    """The container ``create_app`` built."""
    container: MonitorContainer = request.app.state.container
    return container


def get_monitor(request: Request) -> Monitor:
    """The use cases."""
    return get_container(request).monitor


def get_store(request: Request) -> MonitorStore:
    """The SQL store (the routes' reads)."""
    return get_container(request).store


MonitorDep = Annotated[Monitor, Depends(get_monitor)]
StoreDep = Annotated[MonitorStore, Depends(get_store)]
