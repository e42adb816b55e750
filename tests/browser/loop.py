"""A closed loop left running for the console's browser tests: ``driftloop demo
--keep-running`` on free ports (the iris world), the console among the services
``driftloop up`` starts.

The demo exits its loop once v2 is champion after a drift alert and writes its
timeline; from then on the suite stays up (``--keep-running``) until Ctrl-C, which
:meth:`ClosedLoop.stop` sends.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from driftloop_bus.embedded import free_port
from driftloop_cli.credentials import ADMIN_TOKEN_FILE

__all__ = ["ClosedLoop", "attach_closed_loop", "start_closed_loop"]

#: Seconds the demo has to close its loop (its own bounds: 240 s to start, 240 s to close).
DEMO_TIMEOUT = 600.0


@dataclass
class ClosedLoop:
    """A suite whose loop closed: where its services listen and what the demo saw."""

    #: The demo's folder: its output (demo.log), its timeline, the suite's home (suite/).
    home: Path
    #: The demo's process; None for a loop this run attached to (and leaves running).
    process: subprocess.Popen[bytes] | None
    urls: dict[str, str] = field(default_factory=dict)
    broker: str = ""
    #: The admin token ``driftloop up`` made.
    token: str = ""
    result: dict[str, Any] = field(default_factory=dict)
    #: Seconds from the demo's start to its timeline (the loop closed).
    seconds: float = 0.0

    @property
    def console_url(self) -> str:
        return self.urls["console"]

    def events(self, kind: str, **facts: object) -> list[dict[str, Any]]:
        """The demo's timeline entries of ``kind`` with ``facts``."""
        return [
            e
            for e in self.result["timeline"]
            if e["kind"] == kind and all(e.get(k) == v for k, v in facts.items())
        ]

    def output(self) -> str:
        log = self.home / "demo.log"
        return log.read_text(errors="replace")[-6000:] if log.exists() else ""

    def stop(self, timeout: float = 60.0) -> None:
        """Ctrl-C the demo (which stops its suite) and wait; kill it after ``timeout``."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_closed_loop(home: Path) -> ClosedLoop:
    """Run the demo in ``home`` until its loop closed, and leave its suite running.

    Raises:
        AssertionError: The demo exited or did not close its loop in time (its output).
    """
    home.mkdir(parents=True, exist_ok=True)
    timeline = home / "timeline.json"
    suite_home = home / "suite"
    log = (home / "demo.log").open("wb")
    started = time.monotonic()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "driftloop_cli",
            "demo",
            "--world",
            "iris",
            "--free-ports",
            "--keep-running",
            "--home",
            str(suite_home),
            "--timeline-json",
            str(timeline),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        # The demo gives free ports to the loop's services; the console's too.
        env={**os.environ, "DRIFTLOOP_CONSOLE_PORT": str(free_port())},
    )
    loop = ClosedLoop(home, process)
    while not timeline.exists():
        if process.poll() is not None:
            raise AssertionError(f"the demo exited ({process.returncode}):\n{loop.output()}")
        if time.monotonic() - started > DEMO_TIMEOUT:
            loop.stop()
            raise AssertionError(
                f"the loop did not close in {DEMO_TIMEOUT:.0f} s:\n{loop.output()}"
            )
        time.sleep(0.5)
    time.sleep(0.2)  # the demo writes the file in one call; let it finish
    loop.seconds = time.monotonic() - started
    _read(loop)
    if not loop.result.get("closed"):
        loop.stop()
        raise AssertionError(f"the demo's loop did not close:\n{loop.output()}")
    return loop


def attach_closed_loop(home: Path) -> ClosedLoop:
    """A loop :func:`start_closed_loop` left running in ``home`` (by another process):
    ``DRIFTLOOP_BROWSER_LOOP=home`` lets the browser tests be rerun against it in seconds
    while a page is being worked on. Nothing is stopped at the end."""
    loop = ClosedLoop(home, None)
    _read(loop)
    return loop


def _read(loop: ClosedLoop) -> None:
    loop.result = json.loads((loop.home / "timeline.json").read_text())
    suite_home = loop.home / "suite"
    info = json.loads((suite_home / "up.json").read_text())
    loop.urls = {name: str(url).rstrip("/") for name, url in info["services"].items()}
    loop.broker = info["broker"]
    loop.token = (suite_home / ADMIN_TOKEN_FILE).read_text().strip()


if __name__ == "__main__":
    # python -m tests.browser.loop HOME: start a loop, print its folder, leave it running.
    started = start_closed_loop(Path(sys.argv[1]).resolve())
    print(f"the loop closed in {started.seconds:.0f} s; DRIFTLOOP_BROWSER_LOOP={started.home}")
