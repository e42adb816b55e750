"""deploy/Dockerfile, its health check, .dockerignore and the PostgreSQL init script."""

from __future__ import annotations

import fnmatch
import importlib.util
import io
import re
import shlex
import shutil
import subprocess
import tomllib
import urllib.error
from email.message import Message
from types import ModuleType
from typing import Any

import pytest

from driftloop_kit.service import SERVICE_NAMES
from tests.unit.deploy.support import (
    DEPLOY,
    DOCKERFILE,
    ROOT,
    dockerfile_instructions,
    env_of_stage,
    settings_classes,
    stages,
)

pytestmark = pytest.mark.unit

HEALTHCHECK = DEPLOY / "docker" / "healthcheck.py"
INIT_SCRIPT = DEPLOY / "postgres" / "init-databases.sh"


def runs(stage: list[tuple[str, str]]) -> list[str]:
    return [arguments for keyword, arguments in stage if keyword == "RUN"]


def uv_syncs() -> list[list[str]]:
    build = stages(DOCKERFILE.read_text())[0]
    return [
        shlex.split(command.split("uv sync", 1)[1])
        for command in runs(build)
        if "uv sync" in command
    ]


def load_healthcheck() -> ModuleType:
    spec = importlib.util.spec_from_file_location("driftloop_deploy_healthcheck", HEALTHCHECK)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- the Dockerfile -----------------------------------------------------------------


def test_the_image_is_built_in_two_stages_from_the_same_base() -> None:
    froms = [a for k, a in dockerfile_instructions(DOCKERFILE.read_text()) if k == "FROM"]
    assert froms == ["${PYTHON_IMAGE} AS build", "${PYTHON_IMAGE} AS runtime"]
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", DOCKERFILE.read_text(), re.M)
    assert base is not None
    assert re.fullmatch(r"python:3\.11[.\d]*-slim-\w+", base.group(1)), base.group(1)


def test_the_workspace_is_installed_from_the_lock_file_without_dev_dependencies() -> None:
    syncs = uv_syncs()
    assert len(syncs) == 2
    for arguments in syncs:
        assert "--locked" in arguments
        assert "--no-dev" in arguments
        packages = [arguments[i + 1] for i, a in enumerate(arguments) if a == "--package"]
        assert packages == ["driftloop-${SERVICE}", "driftloop-cli"]
    # Dependencies first (cached layer), then the members as wheels.
    assert "--no-install-workspace" in syncs[0]
    assert "--no-editable" in syncs[1]


def test_every_service_package_is_named_after_its_folder() -> None:
    # The Dockerfile installs `driftloop-${SERVICE}`: that must be the service's package.
    folders = sorted(p.parent.name for p in (ROOT / "services").glob("*/pyproject.toml"))
    assert folders == sorted(SERVICE_NAMES)
    for folder in folders:
        project = tomllib.loads((ROOT / "services" / folder / "pyproject.toml").read_text())
        assert project["project"]["name"] == f"driftloop-{folder}"
        entry_points = project["project"]["entry-points"]["driftloop.services"]
        assert list(entry_points) == [folder]
    cli = tomllib.loads((ROOT / "libs" / "cli" / "pyproject.toml").read_text())
    assert cli["project"]["name"] == "driftloop-cli"
    assert "driftloop" in cli["project"]["scripts"]
    build_runs = " ".join(runs(stages(DOCKERFILE.read_text())[0]))
    allowed = re.search(r'case "\$\{SERVICE\}" in\s+([\w|]+)\)', build_runs)
    assert allowed is not None
    assert allowed.group(1).split("|") == list(SERVICE_NAMES)


def test_every_workspace_member_is_copied_before_the_locked_sync() -> None:
    # `uv sync --locked` checks the lock against every member's pyproject.toml.
    build = stages(DOCKERFILE.read_text())[0]
    copied: set[str] = set()
    for keyword, arguments in build:
        if keyword == "RUN" and "uv sync" in arguments:
            break
        if keyword == "COPY":
            *sources, _ = shlex.split(arguments)
            copied |= set(sources)
    members = {
        str(p.relative_to(ROOT))
        for p in [*ROOT.glob("libs/*/pyproject.toml"), *ROOT.glob("services/*/pyproject.toml")]
    }
    assert {"pyproject.toml", "uv.lock"} | members <= copied


def test_uv_is_the_version_the_makefile_installs() -> None:
    makefile = re.search(r"^UV_VERSION := (\S+)$", (ROOT / "Makefile").read_text(), re.M)
    dockerfile = re.search(r"^ARG UV_VERSION=(\S+)$", DOCKERFILE.read_text(), re.M)
    assert makefile is not None
    assert dockerfile is not None
    assert dockerfile.group(1) == makefile.group(1)


def test_the_runtime_stage_runs_the_service_unprivileged_with_a_healthcheck() -> None:
    runtime = stages(DOCKERFILE.read_text())[-1]
    keywords = [keyword for keyword, _ in runtime]
    users = [arguments for keyword, arguments in runtime if keyword == "USER"]
    assert users, "the runtime stage has no USER"
    uid = users[-1].split(":")[0]
    assert uid not in ("0", "root")
    # USER comes before what runs: the health check and the command.
    assert keywords.index("USER") < keywords.index("HEALTHCHECK") < keywords.index("CMD")
    (healthcheck,) = [a for k, a in runtime if k == "HEALTHCHECK"]
    assert healthcheck.startswith("--interval=")
    assert '"/opt/driftloop/healthcheck.py"' in healthcheck
    copies = [shlex.split(a) for k, a in runtime if k == "COPY"]
    assert ["deploy/docker/healthcheck.py", "/opt/driftloop/healthcheck.py"] in copies
    assert ["--from=build", "/opt/venv", "/opt/venv"] in copies
    (command,) = [a for k, a in runtime if k == "CMD"]
    assert command == '["sh", "-c", "exec driftloop run \\"${SERVICE}\\""]'
    env = env_of_stage(runtime)
    assert env["SERVICE"] == "${SERVICE}"
    assert env["DRIFTLOOP_HOST"] == "0.0.0.0"
    assert env["PATH"].startswith("/opt/venv/bin:")


def test_dockerignore_keeps_local_state_out_and_what_the_build_copies_in() -> None:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert not [p for p in patterns if p.startswith("!")], "negations are not checked here"

    def ignored(path: str) -> bool:
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        return any(
            fnmatch.fnmatch(prefix, pattern.removeprefix("**/"))
            or fnmatch.fnmatch(parts[i], pattern.removeprefix("**/"))
            for pattern in patterns
            for i, prefix in enumerate(prefixes)
        )

    for local in (".venv", ".tools", ".driftloop", ".git", "libs/kit/src/x/__pycache__"):
        assert ignored(local), local
    for keyword, arguments in dockerfile_instructions(DOCKERFILE.read_text()):
        if keyword == "COPY" and "--from=" not in arguments:
            *sources, _ = shlex.split(arguments)
            for source in sources:
                assert not ignored(source), f"{source} is copied but ignored"
                assert (ROOT / source).exists(), source


# --- the health check ---------------------------------------------------------------


def test_the_healthcheck_knows_the_default_port_of_every_service() -> None:
    healthcheck = load_healthcheck()
    assert {
        name: cls.default_port for name, cls in settings_classes().items()
    } == healthcheck.DEFAULT_PORTS


def test_the_healthcheck_probes_the_port_the_service_is_configured_with() -> None:
    healthcheck = load_healthcheck()
    assert healthcheck.probe_url("serving", {}) == "http://127.0.0.1:8080/readyz"
    assert (
        healthcheck.probe_url("serving", {"DRIFTLOOP_SERVING_PORT": "9000"}, "/healthz")
        == "http://127.0.0.1:9000/healthz"
    )
    with pytest.raises(ValueError, match="not a TCP port"):
        healthcheck.probe_url("serving", {"DRIFTLOOP_SERVING_PORT": "70000"})


class _Answer:
    def __init__(self, status: int) -> None:
        self.status = status

    def __enter__(self) -> _Answer:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


@pytest.mark.parametrize(
    ("answer", "code"),
    [
        (_Answer(200), 0),
        (_Answer(204), 1),
        (urllib.error.HTTPError("u", 503, "not ready", Message(), io.BytesIO(b"{}")), 1),
        (urllib.error.URLError("connection refused"), 1),
        (TimeoutError("timed out"), 1),
    ],
)
def test_the_healthcheck_passes_only_on_a_200(
    answer: Any, code: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    healthcheck = load_healthcheck()
    asked: list[str] = []

    def urlopen(url: str, timeout: float) -> Any:
        asked.append(url)
        if isinstance(answer, BaseException):
            raise answer
        return answer

    monkeypatch.setattr(healthcheck.urllib.request, "urlopen", urlopen)
    environ = {"SERVICE": "tracking", "DRIFTLOOP_TRACKING_PORT": "5100"}
    assert healthcheck.main(["healthcheck.py"], environ) == code
    assert asked == ["http://127.0.0.1:5100/readyz"]


def test_the_healthcheck_fails_for_an_unknown_service(monkeypatch: pytest.MonkeyPatch) -> None:
    healthcheck = load_healthcheck()
    monkeypatch.setattr(healthcheck.urllib.request, "urlopen", pytest.fail)
    assert healthcheck.main(["healthcheck.py"], {"SERVICE": "nope"}) == 1
    assert healthcheck.main(["healthcheck.py"], {}) == 1


# --- the PostgreSQL init script -----------------------------------------------------


def test_the_init_script_is_valid_bash_that_stops_at_the_first_error() -> None:
    bash = shutil.which("bash")
    if bash is None:  # pragma: no cover - bash is everywhere the suite runs
        pytest.skip("bash is not installed")
    subprocess.run([bash, "-n", str(INIT_SCRIPT)], check=True)
    text = INIT_SCRIPT.read_text()
    assert text.startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in text
    assert "ON_ERROR_STOP=1" in text
    # Names and the password reach SQL as psql variables, never pasted into it.
    assert "${password}" not in text.split("<<'SQL'", 1)[1]
    assert INIT_SCRIPT.stat().st_mode & 0o111, "the script is executable"


def test_the_init_script_closes_each_database_to_the_other_services() -> None:
    sql = INIT_SCRIPT.read_text().split("<<'SQL'", 1)[1]
    assert 'REVOKE ALL ON DATABASE :"database" FROM PUBLIC;' in sql
    assert re.search(r"CREATE DATABASE %I OWNER %I", sql)
    assert "WHERE NOT EXISTS" in sql


def test_every_file_in_deploy_is_used_or_documented() -> None:
    readme = (DEPLOY / "README.md").read_text()
    for path in DEPLOY.rglob("*"):
        if path.is_file() and path.parent.name not in ("base", "production"):
            relative = str(path.relative_to(DEPLOY))
            assert relative in readme or path.name == "README.md", relative
