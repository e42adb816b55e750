"""Tracking and registry served together on free ports, for tests of services that need both."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import mlflow

from driftloop_bus.embedded import free_port
from driftloop_kit.testing import ServedApp
from driftloop_registry.entrypoints.app import create_app as create_registry
from driftloop_registry.settings import RegistrySettings
from driftloop_tracking.entrypoints.app import create_app as create_tracking
from driftloop_tracking.settings import TrackingSettings


@dataclass
class Stack:
    """A tracking and a registry service, the registry reading from the tracking one."""

    tracking_url: str
    registry_url: str
    registry: RegistrySettings


def start_stack(
    *, home: Path, registry_database: str, bootstrap_servers: str
) -> tuple[Stack, list[ServedApp]]:
    """Start tracking (SQLite) and a registry on ``registry_database``; stop them after."""
    tracking_settings = TrackingSettings(
        home=home,
        database_url=f"sqlite:///{home / 'tracking.db'}",
        kafka_bootstrap_servers=bootstrap_servers,
        port=free_port(),
    )
    tracking = ServedApp(
        create_tracking(tracking_settings),
        host=tracking_settings.host,
        port=tracking_settings.port,
        name="tracking",
    )
    registry_settings = RegistrySettings(
        home=home,
        database_url=registry_database,
        kafka_bootstrap_servers=bootstrap_servers,
        port=free_port(),
        tracking_url=tracking.url,
        # The tracking service keeps the suite's revoked tokens and stored users.
        auth_url=tracking.url,
        auth_refresh_seconds=1,
    )
    registry = ServedApp(
        create_registry(registry_settings),
        host=registry_settings.host,
        port=registry_settings.port,
        name="registry",
    )
    servers = [tracking, registry]
    for server in servers:
        server.start()
    return Stack(tracking.url, registry.url, registry_settings), servers


@contextlib.contextmanager
def running_stack(
    *, home: Path, bootstrap_servers: str, registry_database: str | None = None
) -> Iterator[Stack]:
    """:func:`start_stack` for a ``with`` block (registry on SQLite in ``home`` by default)."""
    running, servers = start_stack(
        home=home,
        registry_database=registry_database or f"sqlite:///{home / 'registry.db'}",
        bootstrap_servers=bootstrap_servers,
    )
    try:
        yield running
    finally:
        for server in reversed(servers):
            server.stop()


def reset_mlflow_uris() -> None:
    """Point the mlflow client back at its default tracking and registry URIs.

    mlflow types the URI as ``str``, but ``None`` is what restores the default (the
    environment, then ``./mlruns``), as mlflow's own test fixtures do.
    """
    default = cast(str, None)
    mlflow.set_registry_uri(default)
    mlflow.set_tracking_uri(default)
