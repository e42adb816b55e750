"""docker-compose.yml: the suite on one host, healthy before anything depends on it."""

from __future__ import annotations

import functools
import os
import re
import shlex
from graphlib import CycleError, TopologicalSorter
from typing import Any
from urllib.parse import urlsplit

import pytest
import typer.main
import yaml

from driftloop_cli.main import app as cli
from driftloop_kit.service import SERVICE_NAMES
from tests.unit.deploy.support import (
    COMPOSE_FILE,
    DEPLOY,
    DOCKERFILE,
    TEST_SECRETS,
    InterpolationError,
    env_of_stage,
    interpolate,
    interpolated_variables,
    loopback_settings,
    service_variables,
    settings_classes,
    shared_variables,
    stages,
)

pytestmark = pytest.mark.unit

INFRASTRUCTURE = ("kafka", "postgres", "redis")
ONE_SHOT = ("kafka-topics",)
#: Services that own no database (the console reads the others).
WITHOUT_DATABASE = ("console",)
INIT_SCRIPT = DEPLOY / "postgres" / "init-databases.sh"
HEALTHCHECK_IN_IMAGE = "/opt/driftloop/healthcheck.py"


@functools.cache
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
    return loaded


def services() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose()["services"]
    return found


def environment(service: str, environ: dict[str, str] | None = None) -> dict[str, str]:
    """A service's environment as the container gets it (interpolated, image ENV first)."""
    definition = services()[service]
    raw = definition.get("environment", {})
    assert isinstance(raw, dict), f"{service}: write environment as a mapping"
    values = {k: interpolate(str(v), environ or TEST_SECRETS) for k, v in raw.items()}
    if "build" in definition:
        runtime = stages(DOCKERFILE.read_text())[-1]
        values = {**env_of_stage(runtime), **values}
    return values


def is_one_shot(definition: dict[str, Any]) -> bool:
    return definition.get("restart") == "no"


def test_the_suite_and_its_infrastructure_are_the_services_of_the_file() -> None:
    assert set(services()) == {*SERVICE_NAMES, *INFRASTRUCTURE, *ONE_SHOT}
    assert [n for n, d in services().items() if is_one_shot(d)] == list(ONE_SHOT)


@pytest.mark.parametrize("name", SERVICE_NAMES)
def test_each_service_runs_its_own_image_built_from_the_dockerfile(name: str) -> None:
    definition = services()[name]
    build = definition["build"]
    assert (COMPOSE_FILE.parent / build["context"]).resolve() == COMPOSE_FILE.parent
    assert (COMPOSE_FILE.parent / build["dockerfile"]).resolve() == DOCKERFILE
    assert build["args"] == {"SERVICE": name}
    assert definition["image"].startswith(f"driftloop/{name}:")
    # The image's CMD (`driftloop run $SERVICE`) starts it.
    assert "command" not in definition
    assert "entrypoint" not in definition


def test_every_long_running_container_has_a_healthcheck() -> None:
    for name, definition in services().items():
        if is_one_shot(definition):
            continue
        check = definition.get("healthcheck", {})
        assert not check.get("disable"), name
        assert check.get("test"), f"{name} has no healthcheck"
        assert check["test"][0] in ("CMD", "CMD-SHELL"), name
    for name in SERVICE_NAMES:
        test = services()[name]["healthcheck"]["test"]
        assert test[:3] == ["CMD", "python", HEALTHCHECK_IN_IMAGE], name
        assert test[3:] in ([], ["/readyz"]), name


def test_every_dependency_waits_until_it_is_healthy_or_done() -> None:
    graph: dict[str, set[str]] = {}
    for name, definition in services().items():
        depends_on = definition.get("depends_on", {})
        assert isinstance(depends_on, dict), f"{name}: depends_on without conditions"
        graph[name] = set(depends_on)
        for target, condition in depends_on.items():
            assert target in services(), f"{name} depends on unknown {target}"
            # A container that exits is never healthy: one-shots are waited for to end.
            expected = (
                "service_completed_successfully"
                if is_one_shot(services()[target])
                else "service_healthy"
            )
            assert condition == {"condition": expected}, f"{name} -> {target}"
    try:
        order = list(TopologicalSorter(graph).static_order())
    except CycleError as exc:  # pragma: no cover - the assertion reports it
        pytest.fail(f"depends_on has a cycle: {exc.args[1]}")
    for name in SERVICE_NAMES:
        needed = {"kafka-topics"} if name in WITHOUT_DATABASE else {"postgres", "kafka-topics"}
        assert needed <= graph[name], name
        assert order.index("kafka") < order.index(name)
    for name in WITHOUT_DATABASE:
        assert "postgres" not in graph[name], f"{name} has no database to wait for"
    assert "redis" in graph["features"]
    assert {"registry", "features"} <= graph["serving"]


@pytest.mark.parametrize("name", list(SERVICE_NAMES) + list(ONE_SHOT) + list(INFRASTRUCTURE))
def test_every_driftloop_variable_is_a_setting_of_its_service(name: str) -> None:
    variables = {k for k in environment(name) if k.startswith("DRIFTLOOP_")}
    if name in SERVICE_NAMES:
        allowed = service_variables(name)
    elif name in ONE_SHOT:
        allowed = shared_variables()
    else:
        allowed = frozenset()
    assert variables - allowed == set()


def test_the_image_env_sets_only_shared_settings() -> None:
    runtime = env_of_stage(stages(DOCKERFILE.read_text())[-1])
    assert {k for k in runtime if k.startswith("DRIFTLOOP_")} <= shared_variables()


@pytest.mark.parametrize("name", SERVICE_NAMES)
def test_each_service_starts_from_its_compose_environment(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in [k for k in os.environ if k.startswith("DRIFTLOOP_")]:
        monkeypatch.delenv(key)
    for key, value in environment(name).items():
        monkeypatch.setenv(key, value)
    cls = settings_classes()[name]
    settings = cls()
    assert settings.environment == "production"
    assert settings.host == "0.0.0.0"
    if name not in WITHOUT_DATABASE:
        assert settings.database_url.startswith("postgresql")
    assert settings.kafka_bootstrap_servers == "kafka:9092"
    assert settings.secret_key.get_secret_value() == TEST_SECRETS["DRIFTLOOP_SECRET_KEY"]
    published = {int(p.split(":")[-1]) for p in services()[name]["ports"]}
    assert published == {settings.port, *settings.other_ports().values()}
    assert str(settings.home) in {v.split(":", 1)[1] for v in services()[name]["volumes"]}
    assert loopback_settings(settings) == {}, "a container reaches no peer on loopback"


def test_ports_are_published_on_loopback_unless_told_otherwise() -> None:
    for name, definition in services().items():
        for port in definition.get("ports", []):
            address = interpolate(str(port), {}).rsplit(":", 2)[0]
            assert address == "127.0.0.1", f"{name} publishes {port}"
            opened = interpolate(str(port), {"DRIFTLOOP_BIND_ADDRESS": "0.0.0.0"})
            assert opened.startswith("0.0.0.0:") or name == "kafka", opened


def test_compose_refuses_to_start_without_the_secrets() -> None:
    required = {
        variable
        for definition in services().values()
        for value in definition.get("environment", {}).values()
        for variable, op in interpolated_variables(str(value))
        if op == ":?"
    }
    assert required == set(TEST_SECRETS)
    with pytest.raises(InterpolationError):
        environment("tracking", environ={"POSTGRES_PASSWORD": "pw"})
    # Any other variable has a default.
    for definition in services().values():
        for value in definition.get("environment", {}).values():
            for variable, op in interpolated_variables(str(value)):
                assert op in (":?", ":-"), variable


def database_urls() -> dict[str, list[str]]:
    """Per service, the PostgreSQL URLs in its environment."""
    return {
        name: [v for k, v in environment(name).items() if v.startswith("postgresql")]
        for name in SERVICE_NAMES
        if name not in WITHOUT_DATABASE
    }


def init_script_databases() -> dict[str, str]:
    """Database → owner, as POSTGRES_SERVICE_DATABASES tells the init script."""
    entries = environment("postgres")["POSTGRES_SERVICE_DATABASES"].split()
    return {e.partition(":")[0]: (e.partition(":")[2] or e) for e in entries}


def test_each_service_owns_the_databases_the_init_script_creates_for_it() -> None:
    databases = init_script_databases()
    used: set[str] = set()
    for name, urls in database_urls().items():
        assert urls, f"{name} has no PostgreSQL database"
        for url in urls:
            parts = urlsplit(url)
            database = parts.path.lstrip("/")
            assert parts.hostname == "postgres", url
            assert databases.get(database) == name, f"{name} uses {database}"
            assert parts.username == name
            # Its own role's password, the one the init script gives the role; never
            # the superuser's.
            assert parts.password == TEST_SECRETS[f"{name.upper()}_DB_PASSWORD"]
            assert parts.password == environment("postgres")[f"POSTGRES_PASSWORD_{name.upper()}"]
            assert parts.password != TEST_SECRETS["POSTGRES_PASSWORD"]
            used.add(database)
    assert used == set(databases)
    settings_url = environment("tracking")["DRIFTLOOP_TRACKING_DATABASE_URL"]
    assert settings_url.startswith("postgresql+psycopg://")


def test_the_init_script_is_mounted_and_defaults_to_the_same_databases() -> None:
    mounts = services()["postgres"]["volumes"]
    init = [m for m in mounts if m.split(":")[1].startswith("/docker-entrypoint-initdb.d/")]
    (mount,) = init
    source, target, mode = mount.split(":")
    assert (COMPOSE_FILE.parent / source).resolve() == INIT_SCRIPT
    assert target.endswith(".sh")
    assert mode == "ro"
    script = INIT_SCRIPT.read_text()
    default = re.search(r'databases="\$\{POSTGRES_SERVICE_DATABASES:-([^}]*)\}"', script)
    assert default is not None
    assert default.group(1) == environment("postgres")["POSTGRES_SERVICE_DATABASES"]


def test_service_urls_point_at_the_services_on_their_ports() -> None:
    ports = {name: cls.default_port for name, cls in settings_classes().items()}
    checked = 0
    for name in SERVICE_NAMES:
        for key, value in environment(name).items():
            if not (key.endswith("_URL") and value.startswith("http://")):
                continue
            parts = urlsplit(value)
            if parts.hostname == "localhost":  # a link opened by people on the host
                published = services()[name]["ports"]
                assert any(p.endswith(f":{parts.port}:{parts.port}") for p in published), key
                continue
            assert parts.hostname in ports, f"{key}={value}"
            assert parts.port == ports[parts.hostname], f"{key}={value}"
            checked += 1
    assert checked >= 9
    online = urlsplit(environment("features")["DRIFTLOOP_FEATURES_ONLINE_STORE_URL"])
    assert (online.scheme, online.hostname, online.port) == ("redis", "redis", 6379)


def test_kafka_runs_in_kraft_mode_from_a_pinned_official_image() -> None:
    kafka = services()["kafka"]
    image, _, tag = kafka["image"].partition(":")
    assert image == "apache/kafka"
    assert re.fullmatch(r"\d+\.\d+\.\d+", tag), tag
    env = environment("kafka")
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert not any("ZOOKEEPER" in k for k in env)
    node = env["KAFKA_NODE_ID"]
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"].startswith(f"{node}@kafka:")
    advertised = {
        urlsplit(listener).netloc for listener in env["KAFKA_ADVERTISED_LISTENERS"].split(",")
    }
    for name in (*SERVICE_NAMES, *ONE_SHOT):
        servers = environment(name)["DRIFTLOOP_KAFKA_BOOTSTRAP_SERVERS"].split(",")
        assert set(servers) <= advertised, name
    assert env["KAFKA_LOG_DIRS"] in {v.split(":")[1] for v in kafka["volumes"]}


def test_images_that_are_pulled_are_pinned() -> None:
    for name, definition in services().items():
        if "build" in definition:
            continue
        _, _, tag = definition["image"].partition(":")
        assert re.fullmatch(r"\d+(\.\d+)+(-[a-z0-9.]+)?", tag), f"{name}: {definition['image']}"


def test_named_volumes_are_declared() -> None:
    declared = set(compose()["volumes"])
    used = {
        volume.split(":")[0]
        for definition in services().values()
        for volume in definition.get("volumes", [])
        if not volume.startswith((".", "/"))
    }
    assert used == declared


def test_the_topics_init_creates_every_declared_topic_with_the_cli() -> None:
    definition = services()["kafka-topics"]
    command = definition["command"]
    if isinstance(command, str):
        command = shlex.split(command)
    assert command[:3] == ["driftloop", "topics", "--create"]
    assert definition["build"] == services()["tracking"]["build"]
    assert definition["healthcheck"] == {"disable": True}
    assert definition["depends_on"] == {"kafka": {"condition": "service_healthy"}}
    # Every option it passes is one the CLI has.
    topics = typer.main.get_command(cli).commands["topics"]  # type: ignore[attr-defined]
    options = {opt for param in topics.params for opt in param.opts}
    assert {c for c in command[2:] if c.startswith("--")} <= options
