"""Fixtures for the ``driftloop`` command tests: run the real command as a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).parent

Waiter = Callable[..., None]


def _wait_until(predicate: Callable[[], bool], *, timeout: float = 30.0, what: str = "") -> None:
    """Bounded retry: poll ``predicate`` until it holds or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
        time.sleep(0.05)


@pytest.fixture
def wait_until() -> Waiter:
    """The bounded-retry helper."""
    return _wait_until


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    """Environment for the command: a private DRIFTLOOP_HOME, no inherited DRIFTLOOP_*."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIFTLOOP_")}
    env["DRIFTLOOP_HOME"] = str(tmp_path / "home")
    env["PYTHONUNBUFFERED"] = "1"
    env["DRIFTLOOP_LOG_FORMAT"] = "console"
    return env


@pytest.fixture
def fakesvc_env(cli_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """``cli_env`` in which the test service ``fakesvc`` is installed (via an entry point)."""
    site = tmp_path / "site"
    dist = site / "driftloop_fakesvc-0.0.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: driftloop-fakesvc\nVersion: 0.0.0\n"
    )
    (dist / "entry_points.txt").write_text("[driftloop.services]\nfakesvc = fakesvc:SERVICE\n")
    path = [str(site), str(HERE), cli_env.get("PYTHONPATH", "")]
    return {**cli_env, "PYTHONPATH": os.pathsep.join(p for p in path if p)}


Launcher = Callable[..., "subprocess.Popen[str]"]


@pytest.fixture
def launch() -> Iterator[Launcher]:
    """Start ``python -m driftloop_cli ARGS`` in the background; killed at teardown if alive."""
    procs: list[subprocess.Popen[str]] = []

    def start(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [sys.executable, "-m", "driftloop_cli", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


@pytest.fixture
def cli() -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run ``python -m driftloop_cli ARGS`` to completion (bounded)."""

    def run(
        *args: str, env: dict[str, str], timeout: float = 240.0
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "driftloop_cli", *args],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout,
            check=False,
        )

    return run


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` is a live (not zombie) process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    # The state follows the parenthesised command name; Z is a zombie.
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.fixture
def is_alive() -> Callable[[int], bool]:
    """Whether a pid is a live (not zombie) process."""
    return pid_alive
