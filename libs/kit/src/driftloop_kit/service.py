"""How a service plugs into the ``driftloop`` command.

Each service package exposes one :class:`ServiceDefinition` under the entry-point
group ``driftloop.services``, e.g. in ``services/tracking/pyproject.toml``::

    [project.entry-points."driftloop.services"]
    tracking = "driftloop_tracking.entrypoints.app:SERVICE"

``driftloop run tracking`` then builds the settings from the environment, calls
``create_app(settings)`` and serves it with uvicorn; ``driftloop up`` does that
for every installed service.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

from fastapi import FastAPI

from driftloop_kit.settings import ServiceSettings

ENTRY_POINT_GROUP = "driftloop.services"

#: The services of the suite, in start-up order for ``driftloop up``.
SERVICE_NAMES: tuple[str, ...] = (
    "tracking",
    "registry",
    "features",
    "monitor",
    "trainer",
    "serving",
)


@dataclass(frozen=True)
class ServiceDefinition:
    """What the CLI needs to know to run one service.

    Attributes:
        name: One of :data:`SERVICE_NAMES`.
        settings_cls: The service's settings class (env prefix ``DRIFTLOOP_<NAME>_``).
        create_app: App factory; it does no work until the app's lifespan starts.
    """

    name: str
    settings_cls: type[ServiceSettings]
    create_app: Callable[[Any], FastAPI]


def installed_services() -> dict[str, ServiceDefinition]:
    """Service definitions registered under :data:`ENTRY_POINT_GROUP`, by name."""
    found: dict[str, ServiceDefinition] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        definition = ep.load()
        if not isinstance(definition, ServiceDefinition):
            raise TypeError(f"entry point {ep.value!r} is not a ServiceDefinition")
        found[definition.name] = definition
    return dict(sorted(found.items(), key=lambda kv: _order(kv[0])))


def _order(name: str) -> int:
    return SERVICE_NAMES.index(name) if name in SERVICE_NAMES else len(SERVICE_NAMES)
