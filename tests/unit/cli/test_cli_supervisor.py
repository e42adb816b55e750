"""The supervisor's ordering and stop logic, with trivial real child processes."""

from __future__ import annotations

import os
import signal
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from driftloop_cli.supervisor import (
    ChildFailedError,
    ChildSpec,
    RestartPolicy,
    StopRequestedError,
    Supervisor,
    log_tail,
)

pytestmark = pytest.mark.unit


def _python(code: str) -> list[str]:
    return [sys.executable, "-c", textwrap.dedent(code)]


def _exists(path: Path) -> Callable[[], bool]:
    return path.exists


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
    return True


def _recording_child(name: str, tmp_path: Path) -> ChildSpec:
    """A child that appends its name to ``stops.txt`` on SIGTERM; ready once its handler is set."""
    ready = tmp_path / f"{name}.ready"
    code = f"""
        import signal, sys, time
        def stop(*_):
            with open({str(tmp_path / "stops.txt")!r}, "a") as fh:
                fh.write({name!r} + "\\n")
            sys.exit(0)
        signal.signal(signal.SIGTERM, stop)
        open({str(ready)!r}, "w").close()
        time.sleep(60)
    """
    return ChildSpec(name=name, argv=_python(code), ready=_exists(ready))


@pytest.fixture
def supervisor() -> Iterator[Supervisor]:
    sup = Supervisor(startup_timeout=20.0, grace=5.0, poll_interval=0.02)
    yield sup
    sup.stop()


def test_each_child_starts_only_after_the_previous_one_is_ready(
    supervisor: Supervisor, tmp_path: Path
) -> None:
    first_ready = tmp_path / "first.ready"
    first = ChildSpec(
        name="first",
        # Slow on purpose: the second would find no file if started too early.
        argv=_python(
            f"import time; time.sleep(0.5); open({str(first_ready)!r}, 'w').close(); time.sleep(60)"
        ),
        ready=_exists(first_ready),
    )
    second_ready = tmp_path / "second.ready"
    second = ChildSpec(
        name="second",
        argv=_python(
            f"import os, sys, time; sys.exit(7) if not os.path.exists({str(first_ready)!r}) "
            f"else open({str(second_ready)!r}, 'w').close(); time.sleep(60)"
        ),
        ready=_exists(second_ready),
    )

    supervisor.start(first)
    supervisor.start(second)

    assert list(supervisor.pids) == ["first", "second"]
    assert all(_alive(pid) for pid in supervisor.pids.values())


def test_stop_terminates_children_last_started_first(
    supervisor: Supervisor, tmp_path: Path
) -> None:
    for name in ("broker", "tracking", "registry"):
        supervisor.start(_recording_child(name, tmp_path))
    pids = supervisor.pids

    codes = supervisor.stop()

    assert (tmp_path / "stops.txt").read_text().split() == ["registry", "tracking", "broker"]
    assert list(codes) == ["registry", "tracking", "broker"]
    assert set(codes.values()) == {0}
    assert not any(_alive(pid) for pid in pids.values())
    assert supervisor.pids == {}


def test_a_child_that_ignores_sigterm_is_killed_after_the_grace_period(tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    stubborn = ChildSpec(
        name="stubborn",
        argv=_python(
            f"import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
            f"open({str(ready)!r}, 'w').close(); time.sleep(60)"
        ),
        ready=_exists(ready),
    )
    sup = Supervisor(grace=0.5, poll_interval=0.02)
    pid = sup.start(stubborn)

    began = time.monotonic()
    codes = sup.stop()

    assert codes == {"stubborn": -signal.SIGKILL}
    assert 0.4 < time.monotonic() - began < 5
    assert not _alive(pid)


def test_a_second_stop_request_kills_without_waiting_for_the_grace_period(
    tmp_path: Path,
) -> None:
    ready = tmp_path / "ready"
    stubborn = ChildSpec(
        name="stubborn",
        argv=_python(
            f"import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
            f"open({str(ready)!r}, 'w').close(); time.sleep(60)"
        ),
        ready=_exists(ready),
    )
    sup = Supervisor(grace=30.0, poll_interval=0.02)
    sup.start(stubborn)
    sup.request_stop()
    sup.request_stop()

    began = time.monotonic()
    codes = sup.stop()

    assert codes == {"stubborn": -signal.SIGKILL}
    assert time.monotonic() - began < 5


def test_stop_reaches_the_grandchildren_in_a_childs_process_group(
    supervisor: Supervisor, tmp_path: Path
) -> None:
    pid_file = tmp_path / "grandchild.pid"
    parent = ChildSpec(
        name="parent",
        argv=_python(
            f"""
            import subprocess, sys, time
            child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
            with open({str(pid_file)!r} + ".tmp", "w") as fh:
                fh.write(str(child.pid))
            import os; os.replace({str(pid_file)!r} + ".tmp", {str(pid_file)!r})
            time.sleep(60)
            """
        ),
        ready=_exists(pid_file),
    )
    supervisor.start(parent)
    grandchild = int(pid_file.read_text())
    assert _alive(grandchild)

    supervisor.stop()

    assert _wait_until(lambda: not _alive(grandchild))


def test_a_child_that_exits_during_startup_fails_with_its_log_tail(
    supervisor: Supervisor, tmp_path: Path
) -> None:
    log = tmp_path / "logs" / "crashy.log"
    crashy = ChildSpec(
        name="crashy",
        argv=_python("import sys; print('boom: no database'); sys.exit(3)"),
        ready=lambda: False,
        log_path=log,
    )

    with pytest.raises(ChildFailedError) as failure:
        supervisor.start(crashy)

    assert failure.value.name == "crashy"
    assert "exited with code 3" in failure.value.reason
    assert "boom: no database" in failure.value.log_tail


def test_a_child_that_never_becomes_ready_fails_after_its_timeout(
    supervisor: Supervisor,
) -> None:
    slow = ChildSpec(
        name="slow",
        argv=_python("import time; time.sleep(60)"),
        ready=lambda: False,
        startup_timeout=0.3,
    )

    began = time.monotonic()
    with pytest.raises(ChildFailedError, match=r"did not become ready within 0\.3s"):
        supervisor.start(slow)

    assert time.monotonic() - began < 5
    pid = supervisor.pids["slow"]
    supervisor.stop()
    assert not _alive(pid)


def test_watch_fails_when_the_only_child_dies_and_restarts_are_off(tmp_path: Path) -> None:
    supervisor = Supervisor(poll_interval=0.02, restart=RestartPolicy(max_restarts=0))
    ready = tmp_path / "ready"
    short = ChildSpec(
        name="short",
        argv=_python(f"import time; open({str(ready)!r}, 'w').close(); time.sleep(0.3)"),
        ready=_exists(ready),
    )
    supervisor.start(short)

    with pytest.raises(ChildFailedError, match="short exited with code 0; nothing is left"):
        supervisor.watch()
    supervisor.stop()


def _sleeper(name: str, tmp_path: Path) -> ChildSpec:
    """A child that writes its pid to NAME.pid (its readiness) and sleeps."""
    pid_file = tmp_path / f"{name}.pid"

    def ready() -> bool:
        return pid_file.exists() and pid_file.read_text() != ""

    code = f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(60)"
    return ChildSpec(name=name, argv=_python(code), ready=ready, log_path=tmp_path / f"{name}.log")


def _watch_in_background(supervisor: Supervisor) -> threading.Thread:
    thread = threading.Thread(target=supervisor.watch, daemon=True)
    thread.start()
    return thread


def test_a_killed_child_is_restarted_counted_and_logged_while_the_others_run_on(
    tmp_path: Path,
) -> None:
    told: list[tuple[str, str]] = []
    supervisor = Supervisor(
        poll_interval=0.02,
        restart=RestartPolicy(initial_delay=0.1),
        notify=lambda name, what: told.append((name, what)),
    )
    supervisor.start_many([_sleeper("one", tmp_path), _sleeper("two", tmp_path)])
    before = supervisor.pids
    thread = _watch_in_background(supervisor)
    try:
        (tmp_path / "one.pid").write_text("")
        os.kill(before["one"], signal.SIGKILL)

        assert _wait_until(
            lambda: (
                supervisor.states["one"]["state"] == "running"
                and supervisor.pids["one"] != before["one"]
            )
        )
        assert supervisor.states["one"]["restarts"] == 1
        assert supervisor.pids["two"] == before["two"]
        assert _alive(supervisor.pids["one"])
        assert ("one", "exited on SIGKILL; restarting in 0.1s") in told
        assert "--- restarted by driftloop up ---" in (tmp_path / "one.log").read_text()
    finally:
        supervisor.request_stop()
        thread.join(10)
        supervisor.stop()


def test_a_crash_loop_is_given_up_on_with_a_message_and_the_others_keep_running(
    tmp_path: Path,
) -> None:
    told: list[tuple[str, str]] = []
    supervisor = Supervisor(
        poll_interval=0.02,
        restart=RestartPolicy(initial_delay=0.05, max_restarts=2, window=60),
        notify=lambda name, what: told.append((name, what)),
    )
    ready = tmp_path / "crashy.ready"
    crashy = ChildSpec(
        name="crashy",
        # Ready at once, then dies: every start crashes again.
        argv=_python(
            f"import sys, time; open({str(ready)!r}, 'w').close(); time.sleep(0.2); sys.exit(3)"
        ),
        ready=_exists(ready),
    )
    supervisor.start_many([crashy, _sleeper("steady", tmp_path)])
    steady = supervisor.pids["steady"]
    thread = _watch_in_background(supervisor)
    try:
        assert _wait_until(lambda: supervisor.states["crashy"]["state"] == "gave up")
        assert supervisor.states["crashy"]["restarts"] == 2
        assert told[-1][0] == "crashy"
        assert "gave up after 3 crashes within 60s" in told[-1][1]
        assert thread.is_alive()
        assert supervisor.pids["steady"] == steady
        assert _alive(steady)
    finally:
        supervisor.request_stop()
        thread.join(10)
        supervisor.stop()


def test_the_restart_delay_doubles_up_to_its_bound() -> None:
    policy = RestartPolicy(initial_delay=1.0, max_delay=5.0)

    assert [policy.delay(n) for n in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 5.0]


def test_a_restart_policy_with_a_negative_bound_is_refused() -> None:
    with pytest.raises(ValueError, match="max_restarts must be >= 0"):
        RestartPolicy(max_restarts=-1)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_a_stop_signal_to_the_supervisor_ends_watch_and_handlers_are_restored_after(
    supervisor: Supervisor, tmp_path: Path, sig: signal.Signals
) -> None:
    supervisor.start(_recording_child("svc", tmp_path))
    before = signal.getsignal(sig)
    timer = threading.Timer(0.2, os.kill, (os.getpid(), sig))

    with supervisor.handle_signals():
        timer.start()
        supervisor.watch()

    timer.join()
    assert supervisor.stop_requested
    assert signal.getsignal(sig) is before


def test_a_stop_request_during_startup_interrupts_the_readiness_wait(
    supervisor: Supervisor,
) -> None:
    never = ChildSpec(
        name="never", argv=_python("import time; time.sleep(60)"), ready=lambda: False
    )
    timer = threading.Timer(0.2, supervisor.request_stop)
    timer.start()

    began = time.monotonic()
    with pytest.raises(StopRequestedError):
        supervisor.start(never)

    timer.join()
    assert time.monotonic() - began < 5
    with pytest.raises(StopRequestedError):
        supervisor.start(never)
    assert list(supervisor.pids) == ["never"]


def test_log_tail_keeps_only_the_last_lines(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    log.write_text("".join(f"line {i}\n" for i in range(100)))

    assert log_tail(log, lines=3) == "line 97\nline 98\nline 99\n"
    assert log_tail(tmp_path / "missing.log") == ""
    assert log_tail(None) == ""
