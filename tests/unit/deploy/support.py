"""What the deploy tests compare deploy/ and docker-compose.yml with.

The settings classes are found the way ``driftloop config`` finds them (the
services installed under the ``driftloop.services`` entry points) but imported
from ``driftloop_<name>.settings`` alone: loading the whole apps would take half
a minute, the settings modules a second or two.
"""

from __future__ import annotations

import functools
import importlib
import re
import shlex
from collections.abc import Mapping
from pathlib import Path

from driftloop_kit.service import SERVICE_NAMES, installed_names
from driftloop_kit.settings import ServiceSettings

ROOT = Path(__file__).resolve().parents[3]
DEPLOY = ROOT / "deploy"
DOCKERFILE = DEPLOY / "Dockerfile"
COMPOSE_FILE = ROOT / "docker-compose.yml"

#: Values that stand in for the secrets a deployment supplies.
TEST_SECRETS = {
    "DRIFTLOOP_SECRET_KEY": "a-real-secret-of-the-deploy-tests",
    "POSTGRES_PASSWORD": "pg-password",
    **{
        f"{name.upper()}_DB_PASSWORD": f"{name}-db-password"
        for name in ("tracking", "registry", "features", "monitor", "trainer", "serving")
    },
}


@functools.cache
def settings_classes() -> dict[str, type[ServiceSettings]]:
    """The settings class of every service of the suite, by service name."""
    names = installed_names()
    missing = set(SERVICE_NAMES) - set(names)
    assert not missing, f"services not installed in this environment: {sorted(missing)}"
    classes: dict[str, type[ServiceSettings]] = {}
    for name in SERVICE_NAMES:
        module = importlib.import_module(f"driftloop_{name}.settings")
        found = [
            value
            for value in vars(module).values()
            if isinstance(value, type)
            and issubclass(value, ServiceSettings)
            and value is not ServiceSettings
            and value.service_name == name
        ]
        assert len(found) == 1, f"driftloop_{name}.settings defines {len(found)} settings classes"
        classes[name] = found[0]
    return classes


@functools.cache
def shared_variables() -> frozenset[str]:
    """The ``DRIFTLOOP_<FIELD>`` variables every service reads."""
    names = (ServiceSettings.shared_env_name(field) for field in ServiceSettings.model_fields)
    return frozenset(name for name in names if name is not None)


@functools.cache
def service_variables(service: str) -> frozenset[str]:
    """Every variable the settings of ``service`` read: its own and the shared ones."""
    cls = settings_classes()[service]
    return frozenset(cls.env_name(field) for field in cls.model_fields) | shared_variables()


def loopback_settings(settings: ServiceSettings) -> dict[str, str]:
    """The settings whose value points at this machine (defaults meant for one laptop).

    In a container or a pod, ``127.0.0.1`` is the container itself: every URL and
    server of another service must be set.
    """
    return {
        field: str(value)
        for field in type(settings).model_fields
        if field != "host"
        and isinstance(value := getattr(settings, field), str)
        and "127.0.0.1" in value
    }


# --- docker-compose interpolation ---------------------------------------------------

_INTERPOLATION = re.compile(
    r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
)


class InterpolationError(ValueError):
    """A required variable (``${NAME:?message}``) is not set."""


def interpolate(value: str, environ: Mapping[str, str]) -> str:
    """``value`` with ``${NAME}``, ``${NAME:-default}``, ``${NAME:?error}`` ... resolved.

    The same rules as docker compose: with a colon, an empty variable counts as unset.
    """

    def resolve(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"], match["arg"] or ""
        present = name in environ and (environ[name] != "" or not (op or "").startswith(":"))
        if op in (":-", "-"):
            return environ[name] if present else arg
        if op in (":?", "?"):
            if not present:
                raise InterpolationError(f"{name}: {arg}")
            return environ[name]
        return environ.get(name, "")

    return _INTERPOLATION.sub(resolve, value.replace("$$", "\0")).replace("\0", "$")


def interpolated_variables(value: str) -> list[tuple[str, str | None]]:
    """The variables ``value`` interpolates, with their operator (``:-``, ``:?`` ... or None)."""
    return [(m["name"], m["op"]) for m in _INTERPOLATION.finditer(value)]


# --- the Dockerfile -----------------------------------------------------------------


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """The Dockerfile's instructions as ``(INSTRUCTION, arguments)``, continuations joined."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        keyword, _, arguments = line.partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
    return instructions


def stages(text: str) -> list[list[tuple[str, str]]]:
    """The instructions of each build stage (each starts with its FROM)."""
    result: list[list[tuple[str, str]]] = []
    for instruction in dockerfile_instructions(text):
        if instruction[0] == "FROM":
            result.append([])
        if result:
            result[-1].append(instruction)
    return result


def env_of_stage(stage: list[tuple[str, str]]) -> dict[str, str]:
    """The ``ENV key=value`` pairs a stage sets (build-arg references left as they are)."""
    env: dict[str, str] = {}
    for keyword, arguments in stage:
        if keyword == "ENV":
            for pair in shlex.split(arguments):
                key, _, value = pair.partition("=")
                env[key] = value
    return env
