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

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
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
    "console",
)


@dataclass(frozen=True)
class ServiceDefinition:
    """What the CLI needs to know to run one service.

    Attributes:
        name: One of :data:`SERVICE_NAMES`.
        settings_cls: The service's settings class (env prefix ``DRIFTLOOP_<NAME>_``).
        create_app: App factory; it does no work until the app's lifespan starts.
        handlers: The service's ``entrypoints.consumers.HANDLERS`` table (event type ->
            handlers), empty for a service that consumes nothing; the docs' handler
            tables are generated from it.
    """

    name: str
    settings_cls: type[ServiceSettings]
    create_app: Callable[[Any], FastAPI]
    handlers: Mapping[Any, Sequence[Callable[..., Any]]] = field(default_factory=dict)


def installed_names() -> list[str]:
    """Names of the installed services, in start-up order, without importing any of them.

    An entry point's name is its service's name (``tracking = "...:SERVICE"``).
    """
    return sorted({ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)}, key=_order)


def load_service(name: str) -> ServiceDefinition:
    """Import one installed service's definition (and only that service's code).

    Raises:
        KeyError: If no service of that name is installed.
        TypeError: If its entry point is not a :class:`ServiceDefinition` of that name.
    """
    for ep in entry_points(group=ENTRY_POINT_GROUP, name=name):
        definition = ep.load()
        if not isinstance(definition, ServiceDefinition) or definition.name != name:
            raise TypeError(f"entry point {ep.value!r} is not the ServiceDefinition of {name!r}")
        return definition
    raise KeyError(name)


def installed_services() -> dict[str, ServiceDefinition]:
    """Every installed service's definition, by name, in start-up order (imports them all)."""
    return {name: load_service(name) for name in installed_names()}


def _order(name: str) -> int:
    return SERVICE_NAMES.index(name) if name in SERVICE_NAMES else len(SERVICE_NAMES)
