"""Helpers shared by driftloop's benchmarks (see ``bench/README.md``).

The rules these helpers serve are in ``BENCHMARKS.md``: the server under test on core 0,
the load generator on core 1, a warm-up, then peer and driftloop alternated (A B A B ...)
at least three times, the median of each and the ratio per pair, one summary line.
Nothing here asserts on time: a benchmark prints figures.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Set on the re-exec'd process so that it does not re-exec again, and the cores the
# first process could use (the re-exec'd one sees only its own core).
PINNED_ENV = "DRIFTLOOP_BENCH_PINNED"
CORES_ENV = "DRIFTLOOP_BENCH_CORES"
SERVER_CORE = 0
LOADGEN_CORE = 1


def usable_cores() -> set[int]:
    """The CPUs the benchmark may use (cgroup and affinity limits applied).

    Read before pinning: once :func:`pin_this_process` re-executed the process, the
    cores seen by the first process are passed down in ``$DRIFTLOOP_BENCH_CORES``.
    """
    inherited = os.environ.get(CORES_ENV)
    if inherited:
        return {int(core) for core in inherited.split(",")}
    return _affinity()


def _affinity() -> set[int]:
    if hasattr(os, "sched_getaffinity"):
        return set(os.sched_getaffinity(0))
    return set(range(os.cpu_count() or 1))


def can_pin() -> bool:
    """Whether pinning makes sense: both the server and the load-generator core exist."""
    return {SERVER_CORE, LOADGEN_CORE} <= usable_cores()


def taskset_prefix(core: int | None) -> list[str]:
    """``["taskset", "-c", "<core>"]`` to prepend to a command, or ``[]`` when not pinning.

    Empty when ``core`` is ``None``, ``taskset`` is not installed or the machine has fewer
    than two usable cores (pinning both sides to one core would measure contention).
    """
    taskset = shutil.which("taskset")
    if core is None or taskset is None or not can_pin():
        return []
    return [taskset, "-c", str(core)]


def pin_this_process(core: int = LOADGEN_CORE) -> str:
    """Run the rest of this process on ``core`` only; say how (for the report header).

    With ``taskset`` the process re-executes itself under ``taskset -c <core>`` (this call
    then never returns in the first process), so every thread, including those started
    by libraries at import, is pinned. Without it, ``os.sched_setaffinity`` pins the
    calling thread and the threads it starts later.
    """
    if os.environ.get(PINNED_ENV) == str(core):
        return f"core {core} (taskset)"
    if not can_pin():
        return f"not pinned (usable cores: {sorted(usable_cores())})"
    prefix = taskset_prefix(core)
    if prefix:
        cores = ",".join(str(c) for c in sorted(usable_cores()))
        env = {**os.environ, PINNED_ENV: str(core), CORES_ENV: cores}
        # orig_argv keeps interpreter options (-X, -O); sys.executable keeps the venv.
        argv = [*prefix, sys.executable, *sys.orig_argv[1:]]
        sys.stdout.flush()
        os.execve(prefix[0], argv, env)
    os.sched_setaffinity(0, {core})
    return f"core {core} (sched_setaffinity)"


def environment_line() -> str:
    """One line naming the machine and interpreter, printed at the top of every report."""
    return (
        f"{platform.python_implementation()} {platform.python_version()} on "
        f"{platform.machine()}, {os.cpu_count()} cores (usable {sorted(usable_cores())}, "
        f"this process on {sorted(_affinity())})"
    )


def median(values: Sequence[float]) -> float:
    """The median of ``values`` (the mean of the middle two for an even count)."""
    return float(statistics.median(values))


@dataclass
class Pairs:
    """Figures of an A/B alternation: ``peer[i]`` and ``ours[i]`` ran back to back.

    Figures are "higher is better" (throughput); :attr:`ratios` is ``ours / peer``.
    """

    peer: list[float] = field(default_factory=list)
    ours: list[float] = field(default_factory=list)

    @property
    def ratios(self) -> list[float]:
        """``ours[i] / peer[i]`` for every completed pair."""
        return [o / p if p else float("nan") for p, o in zip(self.peer, self.ours, strict=False)]

    @property
    def peer_median(self) -> float:
        """Median of the peer's figures."""
        return median(self.peer)

    @property
    def ours_median(self) -> float:
        """Median of driftloop's figures."""
        return median(self.ours)

    @property
    def pair_ratio_median(self) -> float:
        """Median of the per-pair ratios: steadier than :attr:`ratio` when the machine drifts."""
        return median(self.ratios)

    @property
    def ratio(self) -> float:
        """Ratio of the medians, ``ours_median / peer_median``: the headline figure."""
        return self.ours_median / self.peer_median if self.peer_median else float("nan")


def alternate(
    rounds: int,
    peer: Callable[[int], float],
    ours: Callable[[int], float],
    *,
    report: Callable[[int, str, float], None] | None = None,
) -> Pairs:
    """Run ``peer`` then ``ours``, ``rounds`` times (A B A B ...), and collect the figures.

    Alternating spreads the drift of a shared machine (another job starting, the CPU
    clocking down) over both sides instead of charging it all to one.

    Args:
        rounds: Number of pairs; the rules ask for at least three.
        peer: Runs the peer once; takes the round number, returns its figure.
        ours: Runs driftloop once; same contract.
        report: Called after each run with ``(round, "peer" | "ours", figure)``, to
            print progress.
    """
    pairs = Pairs()
    for round_no in range(1, rounds + 1):
        for side, run, figures in (("peer", peer, pairs.peer), ("ours", ours, pairs.ours)):
            figure = run(round_no)
            figures.append(figure)
            if report is not None:
                report(round_no, side, figure)
    return pairs


def summary_line(
    name: str,
    *,
    ours: str,
    peer: str,
    ratio: float,
    target: str | None = None,
) -> str:
    """The one line a benchmark ends with, e.g.

    ``bus: driftloop 41200 ev/s | aiokafka 46100 msg/s | ratio 0.89 (target >= 0.8)``.

    Args:
        name: Benchmark name, e.g. ``"bus"``.
        ours: driftloop's figures, already formatted, e.g. ``"41200 ev/s"``.
        peer: The peer's name and figures, e.g. ``"aiokafka 46100 msg/s"``.
        ratio: The headline ratio.
        target: What the ratio should reach, e.g. ``">= 0.8"``.
    """
    line = f"{name}: driftloop {ours} | {peer} | ratio {ratio:.2f}"
    return f"{line} (target {target})" if target else line


# --- percentiles, peer environments and HTTP servers under test -------------------------
# (added for bench/tracking.py; usable by any benchmark that starts an HTTP server)


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of ``values``, interpolated linearly (numpy's default).

    With few samples the high percentiles sit between the largest values: the p99 of
    20 samples is 81 % of the way from the 19th to the 20th smallest.
    """
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def ensure_venv(path: Path, requirement: str, *, distribution: str, version: str) -> Path:
    """A virtual environment at ``path`` holding ``requirement``; created once, then reused.

    The peer of a benchmark is installed from PyPI into its own environment so that
    driftloop's dependencies never decide the peer's (``BENCHMARKS.md``). The environment
    is reused when ``distribution`` is already installed there at ``version``; otherwise
    it is created (``python3 -m venv``) if missing and ``requirement`` is pip-installed.

    Args:
        path: Where the environment lives, e.g. ``.driftloop/bench/mlflow-venv``.
        requirement: What pip installs, e.g. ``"mlflow==3.17.2"``; several requirements
            separated by spaces, e.g. ``"mlserver==1.7.1 mlserver-sklearn==1.7.1"``.
        distribution: The distribution whose version proves the install, e.g. ``"mlflow"``.
        version: The version it must have.

    Returns:
        The environment's ``bin`` folder.

    Raises:
        RuntimeError: ``venv`` or ``pip`` failed (their output is in the message).
    """
    bin_dir = path / "bin"
    python = bin_dir / "python"
    probe = f"import importlib.metadata as m; print(m.version({distribution!r}))"

    def installed() -> str | None:
        if not python.exists():
            return None
        done = subprocess.run([python, "-c", probe], capture_output=True, text=True, check=False)
        return done.stdout.strip() if done.returncode == 0 else None

    if installed() == version:
        return bin_dir
    if not python.exists():
        base = shutil.which("python3") or sys.executable
        _run_or_raise([base, "-m", "venv", str(path)], f"creating {path}")
    _run_or_raise(
        [
            python,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            *requirement.split(),
        ],
        f"pip install {requirement} into {path}",
    )
    if (found := installed()) != version:
        raise RuntimeError(f"{distribution} in {path} is {found!r} after install, not {version}")
    return bin_dir


def _run_or_raise(command: list[str | Path], what: str) -> None:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        output = (done.stdout + done.stderr).strip().splitlines()
        raise RuntimeError(f"{what} failed (exit {done.returncode}):\n" + "\n".join(output[-30:]))


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def group_cpu_seconds(pgid: int) -> float:
    """CPU time (user + system, every thread) of the live processes of group ``pgid``.

    Read from ``/proc`` (Linux; ``nan`` elsewhere), in clock ticks (10 ms): read it
    around a batch of calls, not one call. Unlike a latency, it does not grow when
    another job steals the server's core, so it is the steadier figure on a shared
    machine.
    """
    proc = Path("/proc")
    if not proc.is_dir():
        return float("nan")
    ticks = 0
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # the process ended meanwhile
            continue
        # Fields after the command name, which may itself hold spaces and parentheses.
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[2]) == pgid:  # pgrp; utime and stime follow at 11 and 12
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


class ServerStartError(RuntimeError):
    """A server under test exited or did not answer its readiness URL in time."""


@dataclass
class ServerProcess:
    """An HTTP server under test in its own process group, pinned with ``taskset``.

    Every process the server starts (workers, job runners) inherits the pinning and
    stops with it: :meth:`stop` signals the whole group.

    Args:
        name: Label for messages, e.g. ``"mlflow"``.
        command: The server's command line (without ``taskset``).
        ready_url: Polled until it answers 200, e.g. ``http://127.0.0.1:5000/health``.
        env: The server's environment (default: this process's).
        cwd: Its working directory.
        log_path: Where its stdout and stderr go (default: discarded).
        core: The core it is pinned to; ``None`` to not pin.
    """

    name: str
    command: list[str]
    ready_url: str
    env: dict[str, str] | None = None
    cwd: Path | None = None
    log_path: Path | None = None
    core: int | None = SERVER_CORE
    _proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    @property
    def full_command(self) -> list[str]:
        """The command line as started: ``taskset -c <core>`` (when pinning) + ``command``."""
        return [*taskset_prefix(self.core), *self.command]

    @property
    def pid(self) -> int | None:
        """The server's process id (also its process group id), once started."""
        return self._proc.pid if self._proc is not None else None

    def launch(self) -> None:
        """Start the process without waiting for it (see :meth:`wait_ready`)."""
        if self._proc is not None:
            return
        out: Any = subprocess.DEVNULL
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            out = self.log_path.open("ab")
        try:
            self._proc = subprocess.Popen(
                self.full_command,
                env=self.env,
                cwd=self.cwd,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, stopped as a whole
            )
        finally:
            if out is not subprocess.DEVNULL:
                out.close()  # the child holds its own descriptor

    def wait_ready(self, timeout: float = 120.0) -> None:
        """Poll :attr:`ready_url` (bounded) until it answers 200.

        Raises:
            ServerStartError: The process exited, or did not answer in ``timeout`` s.
        """
        if self._proc is None:
            raise ServerStartError(f"{self.name} was not launched")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise ServerStartError(
                    f"{self.name} exited with code {self._proc.returncode}{self._log_tail()}"
                )
            try:
                with urllib.request.urlopen(self.ready_url, timeout=2) as response:
                    if response.status == 200:
                        return
            except (OSError, http.client.HTTPException):
                pass
            time.sleep(0.2)
        self.stop()
        raise ServerStartError(f"{self.name} not ready at {self.ready_url} in {timeout:.0f} s")

    def start(self, timeout: float = 120.0) -> ServerProcess:
        """:meth:`launch` then :meth:`wait_ready`."""
        self.launch()
        self.wait_ready(timeout)
        return self

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM the process group, then SIGKILL it if it has not exited in ``timeout`` s.

        Returns:
            The server's exit code (``None`` if it was never started).
        """
        proc, self._proc = self._proc, None
        if proc is None:
            return None
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        # Workers left behind by a leader that exited first.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        return proc.returncode

    def cpu_seconds(self) -> float:
        """CPU seconds used so far by the server's live processes (:func:`group_cpu_seconds`)."""
        return group_cpu_seconds(self.pid) if self.pid is not None else float("nan")

    def _log_tail(self, lines: int = 25) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        tail = self.log_path.read_text(errors="replace").splitlines()[-lines:]
        return f"; last lines of {self.log_path}:\n" + "\n".join(tail)

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def admin_token(home: Path) -> str:
    """An admin token for the driftloop services sharing ``home``: signed with the key
    they generate there (authentication is on by default), made now if they have not."""
    from driftloop_kit.auth import Role, TokenSigner
    from driftloop_kit.settings import home_secret_key

    signer = TokenSigner(home_secret_key(home))
    return signer.issue(subject="bench", role=Role.ADMIN, ttl_seconds=86_400)
