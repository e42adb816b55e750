"""The suite in the background, as with docker compose: ``up --detach``, ``status``,
``logs`` and ``down``.

``driftloop up --detach`` starts ``driftloop up`` itself as a background process in its
own session (its output in ``<home>/logs/up.log``) and returns once the suite is up.
Everything else reads the state file that ``up`` keeps current, ``<home>/up.json``:
its own pid, each child's pid, state, restarts and URL, and where the logs are.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from driftloop_cli.supervisor import log_tail
from driftloop_cli.up import UP_FILE, UpError, running_pid

Echo = Callable[[str], None]

#: The background ``up``'s own output (its messages: restarts, give-ups, stop).
UP_LOG = "up.log"


class NotRunningError(RuntimeError):
    """No suite runs with this home."""


def detach(*, home: Path, argv: Sequence[str], echo: Echo, poll: float = 0.1) -> int:
    """Start ``driftloop up ARGV`` in the background; return once it is up or has failed.

    Args:
        home: The suite's home (where up.json and the logs go).
        argv: The ``up`` command's arguments, without ``--detach``.
        echo: Writes a line to stdout.
        poll: Seconds between looks at the state file.

    Returns:
        0 once the suite is up (its start-up output is echoed), 1 if ``up`` exited first
        (the tail of its output is echoed).

    Raises:
        UpError: A suite already runs with this home.
    """
    home = home.resolve()
    pid = running_pid(home / UP_FILE)
    if pid is not None:
        raise UpError(f"driftloop is already running with home {home} (pid {pid})")
    log = home / "logs" / UP_LOG
    log.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "DRIFTLOOP_HOME": str(home), "PYTHONUNBUFFERED": "1"}
    with log.open("wb") as out:
        # A session of its own: closing this terminal or Ctrl-C here does not reach it.
        proc = subprocess.Popen(
            [sys.executable, "-m", "driftloop_cli", "up", *argv],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    while proc.poll() is None:
        if running_pid(home / UP_FILE) == proc.pid:
            echo(log.read_text(errors="replace").rstrip("\n").replace("press Ctrl-C to stop", ""))
            echo(f"running in the background (pid {proc.pid}); its output goes to {log}")
            echo("driftloop status | driftloop logs [SERVICE] -f | driftloop down")
            return 0
        time.sleep(poll)
    echo(f"driftloop up exited with code {proc.returncode} while starting:")
    echo(log_tail(log).rstrip("\n"))
    return 1


def read_state(home: Path) -> dict[str, Any]:
    """The running suite's state (up.json).

    Raises:
        NotRunningError: No up.json, or the process that wrote it is gone.
    """
    up_file = home.resolve() / UP_FILE
    if running_pid(up_file) is None:
        raise NotRunningError(f"driftloop is not running with home {home.resolve()}")
    state: dict[str, Any] = json.loads(up_file.read_text())
    return state


@dataclass(frozen=True)
class ChildStatus:
    """One row of ``driftloop status``."""

    name: str
    pid: int
    state: str
    restarts: int
    health: str
    url: str


def health(name: str, url: str, timeout: float = 1.0) -> str:
    """``healthy``, ``unhealthy (CODE)`` or ``no answer``: /healthz, or TCP for the broker."""
    if name == "broker":
        from driftloop_bus.embedded import port_accepts

        host, _, port = url.split(",", maxsplit=1)[0].rsplit("://", maxsplit=1)[-1].rpartition(":")
        ok = port.isdigit() and port_accepts(host.strip("[]"), int(port), timeout=timeout)
        return "healthy" if ok else "no answer"
    try:
        response = httpx.get(f"{url}/healthz", timeout=timeout, trust_env=False)
    except httpx.HTTPError:
        return "no answer"
    return "healthy" if response.status_code == 200 else f"unhealthy ({response.status_code})"


def status(home: Path) -> list[ChildStatus]:
    """Each child of the running suite with its pid, state, restarts and health.

    Raises:
        NotRunningError: No suite runs with this home.
    """
    state = read_state(home)
    rows = []
    for name, child in state.get("children", {}).items():
        running = child["state"] in ("running", "starting")
        rows.append(
            ChildStatus(
                name=name,
                pid=int(child["pid"]),
                state=child["state"],
                restarts=int(child["restarts"]),
                health=health(name, child["url"]) if running else "-",
                url=child["url"],
            )
        )
    return rows


def format_status(rows: Sequence[ChildStatus]) -> str:
    """The rows as an aligned table with a header."""
    table = [("SERVICE", "PID", "STATE", "RESTARTS", "HEALTH", "URL")]
    table += [(r.name, str(r.pid), r.state, str(r.restarts), r.health, r.url) for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in table
    )


def log_files(home: Path) -> dict[str, Path]:
    """The suite's log files by child name (``up`` for the background ``up`` itself)."""
    logs = home.resolve() / "logs"
    if not logs.is_dir():
        return {}
    return {path.stem: path for path in sorted(logs.glob("*.log"))}


def _lines(path: Path, tail: int | None) -> list[str]:
    text = path.read_text(errors="replace")
    lines = text.splitlines()
    return lines if tail is None else lines[-tail:] if tail else []


def print_logs(
    home: Path,
    names: Sequence[str],
    *,
    tail: int | None,
    follow: bool,
    echo: Echo,
    poll: float = 0.2,
) -> None:
    """Print the logs of ``names`` (all when empty), each line prefixed when several.

    With ``follow``, keep printing what is appended until the suite stops or Ctrl-C; a
    log that shrinks (a new ``up`` truncated it) is read again from its start.

    Raises:
        KeyError: A name has no log file (the message lists those that do).
    """
    files = log_files(home)
    for name in names:
        if name not in files:
            have = ", ".join(files) or "none"
            raise KeyError(f"no log for {name!r} in {home.resolve() / 'logs'}; logs: {have}")
    chosen = {name: files[name] for name in names} if names else files
    width = max((len(n) for n in chosen), default=0)

    def show(name: str, line: str) -> None:
        echo(f"{name.ljust(width)} | {line}" if len(chosen) > 1 else line)

    offsets: dict[str, int] = {}
    for name, path in chosen.items():
        for line in _lines(path, tail):
            show(name, line)
        offsets[name] = path.stat().st_size
    if not follow:
        return
    up_file = home.resolve() / UP_FILE
    with contextlib.suppress(KeyboardInterrupt):
        while running_pid(up_file) is not None:
            time.sleep(poll)
            for name, path in chosen.items():
                for line in _appended(path, offsets, name):
                    show(name, line)


def _appended(path: Path, offsets: dict[str, int], name: str) -> Iterator[str]:
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return
    start = offsets.get(name, 0)
    if size < start:
        start = 0
    if size == start:
        return
    with path.open("rb") as fh:
        fh.seek(start)
        data = fh.read()
    # Only whole lines; a partial one waits for its end.
    complete = data.rfind(b"\n") + 1
    offsets[name] = start + complete
    yield from data[:complete].decode(errors="replace").splitlines()


def down(home: Path, *, timeout: float, echo: Echo, poll: float = 0.1) -> None:
    """Stop the suite: SIGTERM to ``up`` (which stops its children gracefully, in order),
    then, past ``timeout``, SIGKILL to ``up`` and to every child still alive.

    A suite whose ``up`` died without cleaning up (its children orphaned) is stopped too.
    Nothing running is not an error.
    """
    home = home.resolve()
    up_file = home / UP_FILE
    try:
        state = json.loads(up_file.read_text())
    except (OSError, ValueError):
        echo(f"driftloop is not running with home {home}")
        return
    children = {name: int(pid) for name, pid in state.get("pids", {}).items()}
    pid = running_pid(up_file)
    if pid is not None:
        echo(f"stopping driftloop (pid {pid})...")
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(poll)
        if _alive(pid):
            echo(f"driftloop did not stop within {timeout:g}s; killing it")
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    for name, child in reversed(children.items()):
        # Each child leads its own process group; the group outlives a killed `up`.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child, signal.SIGKILL)
            echo(f"killed {name} (pid {child})")
    up_file.unlink(missing_ok=True)
    echo("stopped")


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"
