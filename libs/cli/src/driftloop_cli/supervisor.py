"""Process supervision for ``driftloop up`` and ``driftloop broker``.

A :class:`Supervisor` starts child processes one after the other, waits (bounded)
until each one reports ready, watches them, and stops them in reverse order:
SIGTERM, then SIGKILL after a grace period. Each child runs in its own process
group, so a Ctrl-C in the terminal reaches only the supervisor, which then stops
the children in order (services before the broker they talk to) and also reaches
any grandchildren a service may have spawned.

Once started, a child that exits on its own is restarted as compose's
``restart: unless-stopped`` would, after a backoff that doubles with each crash
(:class:`RestartPolicy`); the others keep running. A child that crashes
``max_restarts`` times within ``window`` seconds is given up on (left stopped) with
a message, and the others still keep running.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

#: Signals that ask the supervisor to stop everything. SIGHUP (terminal closed)
#: too, unless ignored (``nohup``), since the children would otherwise be orphaned.
STOP_SIGNALS: tuple[signal.Signals, ...] = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@dataclass(frozen=True)
class ChildSpec:
    """How to start one child process and how to tell it is ready.

    Attributes:
        name: Short name used in messages and as the key of :attr:`Supervisor.pids`.
        argv: Command line, without a shell.
        ready: Probe called repeatedly until it returns True; it must not block long.
        log_path: File that receives the child's stdout and stderr (truncated at
            start). None lets the child write to the supervisor's own streams.
        env: Full environment of the child; None inherits the supervisor's.
        startup_timeout: Seconds to wait for ``ready``; None uses the supervisor's.
    """

    name: str
    argv: Sequence[str]
    ready: Callable[[], bool]
    log_path: Path | None = None
    env: Mapping[str, str] | None = None
    startup_timeout: float | None = None


@dataclass(frozen=True)
class RestartPolicy:
    """When a crashed child is started again, and when it is given up on.

    Attributes:
        initial_delay: Seconds before the first restart; each further crash within
            ``window`` doubles it, up to ``max_delay``.
        max_delay: Longest wait before a restart.
        max_restarts: Crashes within ``window`` after which the child is given up on
            (0 never restarts; the child's exit is then final).
        window: Seconds over which crashes are counted; a child that stays up this
            long starts again from ``initial_delay``.
    """

    initial_delay: float = 1.0
    max_delay: float = 30.0
    max_restarts: int = 5
    window: float = 120.0

    def __post_init__(self) -> None:
        if self.initial_delay < 0 or self.max_delay < self.initial_delay:
            raise ValueError("restart delays must be >= 0 and max_delay >= initial_delay")
        if self.max_restarts < 0 or self.window <= 0:
            raise ValueError("max_restarts must be >= 0 and window > 0")

    def delay(self, recent_crashes: int) -> float:
        """Seconds to wait before restarting after the ``recent_crashes``-th crash."""
        return float(min(self.max_delay, self.initial_delay * 2 ** max(recent_crashes - 1, 0)))


#: What the supervisor tells its owner: (child name, what happened, in a sentence).
Notify = Callable[[str, str], None]


class ChildFailedError(RuntimeError):
    """A child exited, or did not become ready in time.

    Attributes:
        name: The child's name.
        reason: What went wrong, in a few words.
        log_tail: The last lines of the child's log ("" without a log file).
    """

    def __init__(self, name: str, reason: str, log_tail: str = "") -> None:
        super().__init__(f"{name} {reason}")
        self.name = name
        self.reason = reason
        self.log_tail = log_tail


class StopRequestedError(Exception):
    """A stop was requested (signal or :meth:`Supervisor.request_stop`) during start-up."""


@dataclass
class _Child:
    spec: ChildSpec
    proc: subprocess.Popen[bytes]
    #: running, starting (restarted, not ready yet), backoff (waiting to restart), gave up.
    state: str = "running"
    restarts: int = 0
    crashes: deque[float] = field(default_factory=deque)
    restart_at: float = 0.0
    started_at: float = 0.0
    last_exit: str = ""


@dataclass
class Supervisor:
    """Starts, watches and stops a set of child processes.

    Attributes:
        startup_timeout: Default seconds a child has to become ready.
        grace: Seconds between SIGTERM and SIGKILL when stopping a child.
        poll_interval: Seconds between readiness probes and liveness checks.
    """

    startup_timeout: float = 60.0
    grace: float = 10.0
    poll_interval: float = 0.1
    restart: RestartPolicy = field(default_factory=RestartPolicy)
    #: Called on every restart, give-up and recovery; and after the pids change.
    notify: Notify | None = None
    on_change: Callable[[], None] | None = None
    _children: list[_Child] = field(default_factory=list, init=False, repr=False)
    # A plain flag, not a threading.Event: Event.set() from a signal handler deadlocks
    # when the signal lands while the main thread holds the Event's lock in wait().
    _stop: bool = field(default=False, init=False, repr=False)
    _stop_requests: int = field(default=0, init=False, repr=False)

    @property
    def pids(self) -> dict[str, int]:
        """Process ids of the started children, by name, in start order."""
        return {child.spec.name: child.proc.pid for child in self._children}

    @property
    def states(self) -> dict[str, dict[str, object]]:
        """Each child's pid, state (running, starting, backoff, gave up) and restarts."""
        return {
            child.spec.name: {
                "pid": child.proc.pid,
                "state": child.state,
                "restarts": child.restarts,
            }
            for child in self._children
        }

    @property
    def stop_requested(self) -> bool:
        """Whether a stop has been requested."""
        return self._stop

    def request_stop(self) -> None:
        """Ask :meth:`start` and :meth:`watch` to return; a second request forces kills.

        Safe to call from a signal handler.
        """
        self._stop_requests += 1
        self._stop = True

    @contextlib.contextmanager
    def handle_signals(self) -> Iterator[None]:
        """Turn :data:`STOP_SIGNALS` into :meth:`request_stop` while the block runs."""

        def handler(signum: int, frame: FrameType | None) -> None:
            self.request_stop()

        previous = {
            sig: signal.signal(sig, handler)
            for sig in STOP_SIGNALS
            # SIGINT stays ours even when ignored (as for `cmd &` in a script), so
            # `kill -INT` always stops the suite; an ignored SIGHUP means nohup.
            if sig != signal.SIGHUP or signal.getsignal(sig) is not signal.SIG_IGN
        }
        try:
            yield
        finally:
            for sig, old in previous.items():
                signal.signal(sig, old)

    def start(self, spec: ChildSpec) -> int:
        """Start one child and wait until it is ready.

        Args:
            spec: What to start.

        Returns:
            The child's process id.

        Raises:
            ChildFailedError: The child exited or was not ready within its timeout
                (the child is left for :meth:`stop` to clean up).
            StopRequestedError: A stop was requested while waiting.
        """
        return self.start_many([spec])[spec.name]

    def start_many(self, specs: Sequence[ChildSpec]) -> dict[str, int]:
        """Start several children at once, then wait until every one is ready.

        Children that do not depend on each other start in parallel: their imports
        and migrations overlap instead of adding up.

        Returns:
            Each child's process id, by name.

        Raises:
            ChildFailedError: A child exited or was not ready within its timeout
                (all are left for :meth:`stop` to clean up).
            StopRequestedError: A stop was requested while waiting.
        """
        if self.stop_requested:
            raise StopRequestedError
        started = time.monotonic()
        waiting = []
        for spec in specs:
            child = _Child(spec, self._spawn(spec))
            self._children.append(child)
            waiting.append(child)
        while waiting:
            for child in list(waiting):
                spec, proc = child.spec, child.proc
                code = proc.poll()
                if code is not None:
                    raise ChildFailedError(
                        spec.name,
                        f"exited with code {code} while starting",
                        log_tail(spec.log_path),
                    )
                if spec.ready():
                    waiting.remove(child)
                    continue
                timeout = (
                    spec.startup_timeout
                    if spec.startup_timeout is not None
                    else self.startup_timeout
                )
                if time.monotonic() - started >= timeout:
                    raise ChildFailedError(
                        spec.name,
                        f"did not become ready within {timeout:g}s",
                        log_tail(spec.log_path),
                    )
            if waiting and self._stopped_within(self.poll_interval):
                raise StopRequestedError
        return {child.spec.name: child.proc.pid for child in self._children if child.spec in specs}

    def watch(self) -> None:
        """Keep the children running until a stop is requested.

        A child that exits is restarted after the policy's backoff; one that crashes
        too often is given up on. Either way the others keep running.

        Raises:
            ChildFailedError: Every child has been given up on (nothing is left to run).
        """
        while not self._stopped_within(self.poll_interval):
            for child in self._children:
                self._tend(child)
            if self._children and all(c.state == "gave up" for c in self._children):
                last = max(self._children, key=lambda c: c.crashes[-1] if c.crashes else 0.0)
                raise ChildFailedError(
                    last.spec.name,
                    f"{last.last_exit}; nothing is left running",
                    log_tail(last.spec.log_path),
                )

    def _tend(self, child: _Child) -> None:
        """One look at one child: notice a crash, restart it when due, see it ready."""
        now = time.monotonic()
        name = child.spec.name
        if child.state == "gave up":
            return
        if child.state == "backoff":
            if now >= child.restart_at:
                child.proc = self._spawn(child.spec, append=True)
                child.restarts += 1
                child.state = "starting"
                child.started_at = now
                self._tell(name, f"restarted (pid {child.proc.pid}, restart {child.restarts})")
                self._changed()
            return
        code = child.proc.poll()
        if code is None:
            if child.state == "starting":
                if child.spec.ready():
                    child.state = "running"
                    self._tell(name, f"is ready again after restart {child.restarts}")
                    self._changed()
                elif now - child.started_at >= self._timeout(child.spec):
                    # Hung on start-up: counts as a crash, like exiting would.
                    _signal_group(child.proc.pid, signal.SIGKILL)
                    child.proc.wait()
                    self._crashed(child, f"was not ready within {self._timeout(child.spec):g}s")
            return
        self._crashed(child, f"exited {_describe_exit(code)}")

    def _crashed(self, child: _Child, how: str) -> None:
        now = time.monotonic()
        policy = self.restart
        child.crashes.append(now)
        child.last_exit = how
        while child.crashes and now - child.crashes[0] > policy.window:
            child.crashes.popleft()
        recent = len(child.crashes)
        if recent > policy.max_restarts:
            child.state = "gave up"
            if policy.max_restarts == 0:
                self._tell(child.spec.name, how)
            else:
                self._tell(
                    child.spec.name,
                    f"{how}; gave up after {recent} crashes within {policy.window:g}s "
                    f"(the others keep running; see its log: {child.spec.log_path})",
                )
        else:
            delay = policy.delay(recent)
            child.state = "backoff"
            child.restart_at = now + delay
            self._tell(child.spec.name, f"{how}; restarting in {delay:g}s")
        self._changed()

    def _timeout(self, spec: ChildSpec) -> float:
        return spec.startup_timeout if spec.startup_timeout is not None else self.startup_timeout

    def _tell(self, name: str, message: str) -> None:
        if self.notify is not None:
            self.notify(name, message)

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    def _stopped_within(self, seconds: float) -> bool:
        """Sleep up to ``seconds`` in short steps; whether a stop was requested."""
        deadline = time.monotonic() + seconds
        while not self._stop:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            time.sleep(min(remaining, 0.02))
        return True

    def stop(self) -> dict[str, int]:
        """Stop every child, last started first; idempotent.

        Each child (its whole process group) gets SIGTERM, then SIGKILL if it is
        still alive after :attr:`grace` seconds or once a second stop request
        arrives (a second Ctrl-C).

        Returns:
            Exit codes by child name, in the order the children were stopped.
        """
        codes: dict[str, int] = {}
        while self._children:
            child = self._children.pop()
            codes[child.spec.name] = self._stop_child(child)
        return codes

    def _spawn(self, spec: ChildSpec, *, append: bool = False) -> subprocess.Popen[bytes]:
        env = dict(spec.env) if spec.env is not None else None
        if spec.log_path is None:
            return subprocess.Popen(
                list(spec.argv), stdin=subprocess.DEVNULL, env=env, process_group=0
            )
        spec.log_path.parent.mkdir(parents=True, exist_ok=True)
        # The child keeps its own copy of the descriptor; ours can close right away.
        # A restart appends, so the crash that caused it stays in the log.
        with spec.log_path.open("ab" if append else "wb") as log:
            if append:
                log.write(b"--- restarted by driftloop up ---\n")
                log.flush()
            return subprocess.Popen(
                list(spec.argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                process_group=0,
            )

    def _stop_child(self, child: _Child) -> int:
        proc = child.proc
        if proc.poll() is not None:
            return proc.returncode
        _signal_group(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + self.grace
        while proc.poll() is None:
            if time.monotonic() >= deadline or self._stop_requests >= 2:
                _signal_group(proc.pid, signal.SIGKILL)
                return proc.wait()
            time.sleep(min(self.poll_interval, 0.05))
        return proc.returncode


def _describe_exit(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"on {signal.Signals(-code).name}"
    return f"with code {code}"


def _signal_group(pid: int, sig: signal.Signals) -> None:
    # The group may already be gone if the child exited between poll() and here.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)


def log_tail(path: Path | None, lines: int = 40) -> str:
    """The last ``lines`` lines of a log file ("" if there is none)."""
    if path is None or not path.exists():
        return ""
    with path.open("r", encoding="utf-8", errors="replace") as fh:
        return "".join(deque(fh, maxlen=lines))
