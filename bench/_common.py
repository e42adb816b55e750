"""Helpers shared by driftloop's benchmarks (see ``bench/README.md``).

The rules these helpers serve are in ``BENCHMARKS.md``: the server under test on core 0,
the load generator on core 1, a warm-up, then peer and driftloop alternated (A B A B ...)
at least three times, the median of each and the ratio per pair, one summary line.
Nothing here asserts on time: a benchmark prints figures.
"""

from __future__ import annotations

import os
import platform
import shutil
import statistics
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

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
