"""The suite the demo runs against: ``driftloop up`` in a child process, on embedded defaults."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

from driftloop_cli.up import free_port, wiring_env
from driftloop_kit.service import installed_services

__all__ = [
    "LOOP_SERVICES",
    "Suite",
    "SuiteError",
    "attach_suite",
    "free_port",
    "start_suite",
    "wiring_env",
]

#: Every service the loop needs.
LOOP_SERVICES = ("tracking", "registry", "features", "monitor", "trainer", "serving")


class SuiteError(RuntimeError):
    """The suite could not be started."""


@dataclass
class Suite:
    """A running ``driftloop up``: where everything listens, and how to stop it.

    ``process`` is None for a suite the demo attached to (:func:`attach_suite`): the
    demo neither started it nor stops it.
    """

    home: Path
    process: subprocess.Popen[bytes] | None
    broker: str
    urls: dict[str, str]

    def stop(self, timeout: float = 30.0) -> int:
        """Ctrl-C the suite and wait for it; kills it after ``timeout``."""
        if self.process is None:
            return 0
        return _stop(self.process, timeout)


def _stop(process: subprocess.Popen[bytes], timeout: float = 30.0) -> int:
    """Ctrl-C ``driftloop up`` and wait for it; kill it after ``timeout``."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


def start_suite(
    home: Path,
    *,
    env: Mapping[str, str],
    broker_port: int,
    timeout: float,
    echo: Callable[[str], None],
) -> Suite:
    """Start ``driftloop up`` with ``env`` and wait until every service answers.

    Raises:
        SuiteError: A service is missing, the suite exited, or it was not up in time.
    """
    installed = installed_services()
    missing = [name for name in LOOP_SERVICES if name not in installed]
    if missing:
        raise SuiteError(f"the demo needs every service; not installed: {', '.join(missing)}")
    up_file = home / "up.json"
    up_file.unlink(missing_ok=True)
    log = (home / "up.log").open("wb")
    argv = [sys.executable, "-m", "driftloop_cli", "up", "--home", str(home)]
    argv += ["--broker-port", str(broker_port), "--timeout", str(timeout)]
    process = subprocess.Popen(
        argv,
        env={**os.environ, **env},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    started = time.monotonic()
    last_report = 0.0
    while not up_file.exists():
        if process.poll() is not None:
            tail = (home / "up.log").read_text(errors="replace")[-3000:]
            raise SuiteError(f"driftloop up exited with code {process.returncode}:\n{tail}")
        waited = time.monotonic() - started
        if waited > timeout + 30:
            _stop(process)
            raise SuiteError(f"the suite was not up after {waited:.0f} s (logs in {home}/logs)")
        if waited - last_report >= 10:
            last_report = waited
            echo(f"  ... still starting ({waited:.0f} s): {_pending(home)}")
        time.sleep(0.5)
    info = json.loads(up_file.read_text())
    return Suite(home=home, process=process, broker=info["broker"], urls=info["services"])


def attach_suite(home: Path, description: Path, *, timeout: float) -> Suite:
    """A suite that already runs (a compose deployment, a cluster), described by a JSON
    file of ``driftloop up``'s form: ``{"broker": "host:port", "services": {name: url}}``.
    Waits (bounded by ``timeout``) until every service of the loop is ready.

    Raises:
        SuiteError: The file is not such a description, or a service is not ready.
    """
    try:
        info = json.loads(description.read_text())
        broker = info["broker"]
        urls = {name: str(info["services"][name]).rstrip("/") for name in LOOP_SERVICES}
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise SuiteError(
            f"{description} does not describe a suite ({error!r}): it needs "
            f'"broker" and "services" with {", ".join(LOOP_SERVICES)}'
        ) from None
    if not isinstance(broker, str) or not broker:
        raise SuiteError(f'{description}: "broker" must be "host:port"')
    deadline = time.monotonic() + timeout
    for name, url in urls.items():
        # Serving is ready once it has a champion: the demo makes the first one.
        path = "/healthz" if name == "serving" else "/readyz"
        if not wait_ready(f"{url}{path}", max(deadline - time.monotonic(), 1.0)):
            raise SuiteError(f"{name} at {url} was not ready within {timeout:.0f} s")
    return Suite(home=home, process=None, broker=broker, urls=urls)


def _pending(home: Path) -> str:
    """Which services have not written 'startup complete' to their logs yet."""
    waiting = []
    for name in LOOP_SERVICES:
        path = home / "logs" / f"{name}.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        if "Application startup complete" not in text:
            waiting.append(name)
    return ", ".join(waiting) or "the last health checks"


def wait_ready(url: str, timeout: float) -> bool:
    """Poll ``GET url`` until it answers 200."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2.0, trust_env=False).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    return False
