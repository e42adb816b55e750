"""``driftloop up`` with the whole suite: every installed service started, wired, supervised
and stopped, for real (each test starts the broker and the seven services as processes:
a minute or more each, so they run with the end-to-end tests, ``make test-e2e``)."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from driftloop_bus.embedded import free_port, port_accepts
from driftloop_cli.serve import port_is_free
from driftloop_kit.service import installed_services

from .test_cli_commands import (
    Alive,
    Launch,
    Run,
    Wait,
    _healthz,
    _status,
    _stop,
    _wait_for_up_file,
)

pytestmark = pytest.mark.e2e


def test_up_runs_the_broker_and_every_installed_service_and_stops_all_on_sigint(
    launch: Launch, cli_env: dict[str, str], wait_until: Wait, is_alive: Alive
) -> None:
    env = dict(cli_env)
    # Free ports for whatever services are installed, so nothing collides with this machine.
    installed = installed_services()
    for definition in installed.values():
        env[definition.settings_cls.env_name("port")] = str(free_port())
        for other in definition.settings_cls.other_port_fields:  # serving's gRPC port
            env[definition.settings_cls.env_name(other)] = str(free_port())
    broker_port = free_port()
    home = Path(env["DRIFTLOOP_HOME"])

    proc = launch("up", "--broker-port", str(broker_port), env=env)
    state = _wait_for_up_file(home, proc, wait_until)

    assert state["broker"] == f"127.0.0.1:{broker_port}"
    assert port_accepts("127.0.0.1", broker_port)
    services = state["services"]
    assert isinstance(services, dict)
    assert set(services) == set(installed)
    for url in services.values():
        assert _healthz(url) == 200
    assert (home / "logs" / "broker.log").exists()
    for name in installed:
        assert (home / "logs" / f"{name}.log").exists()
    pids = state["pids"]
    assert isinstance(pids, dict)
    assert set(pids) == {"broker", *installed}
    assert all(is_alive(pid) for pid in pids.values())

    code, out, err = _stop(proc, signal.SIGINT)

    assert code == 0, err
    assert "stopped" in out
    assert not any(is_alive(pid) for pid in pids.values())
    assert not (home / "up.json").exists()
    assert port_is_free("127.0.0.1", broker_port)


def test_up_with_free_ports_picks_them_and_wires_every_service_to_the_others(
    launch: Launch, cli_env: dict[str, str], wait_until: Wait
) -> None:
    home = Path(cli_env["DRIFTLOOP_HOME"])
    installed = installed_services()

    proc = launch("up", "--free-ports", env=cli_env)
    try:
        state = _wait_for_up_file(home, proc, wait_until)
        services = state["services"]
        assert isinstance(services, dict)
        assert set(services) == set(installed)
        ports = {name: int(url.rsplit(":", 1)[1]) for name, url in services.items()}
        defaults = {name: d.settings_cls.default_port for name, d in installed.items()}
        assert all(ports[name] != defaults[name] for name in ports)
        assert state["broker"] != "127.0.0.1:9092"
        for url in services.values():
            assert _healthz(url) == 200
        # Each service was told where the others listen: serving's registry, say.
        pids = state["pids"]
        assert isinstance(pids, dict)
        if {"serving", "registry"} <= set(installed):
            environ = Path(f"/proc/{pids['serving']}/environ").read_bytes().split(b"\0")
            wired = f"DRIFTLOOP_SERVING_REGISTRY_URL={services['registry']}".encode()
            assert wired in environ
    finally:
        code, _, err = _stop(proc, signal.SIGINT)
    assert code == 0, err


def test_up_refuses_to_start_twice_in_the_same_home(
    launch: Launch, cli: Run, cli_env: dict[str, str], wait_until: Wait
) -> None:
    home = Path(cli_env["DRIFTLOOP_HOME"])
    env = {**cli_env, "DRIFTLOOP_TRACKING_PORT": str(free_port())}  # one light service
    first = launch("up", "--only", "tracking", "--broker-port", str(free_port()), env=env)
    state = _wait_for_up_file(home, first, wait_until)

    second = cli("up", "--broker-port", str(free_port()), env=env)

    assert second.returncode == 1
    assert f"already running with home {home.resolve()} (pid {state['pid']})" in second.stderr
    code, _, _ = _stop(first, signal.SIGINT)
    assert code == 0


def test_a_detached_suite_restarts_a_killed_service_and_status_logs_and_down_work(
    cli: Run, cli_env: dict[str, str], wait_until: Wait, is_alive: Alive
) -> None:
    env = cli_env
    home = Path(env["DRIFTLOOP_HOME"])
    # One real service (the lightest) keeps the test short; the broker is the other child.
    started = cli("up", "tracking", "--detach", "--free-ports", "--restart-delay", "0.2", env=env)
    assert started.returncode == 0, started.stdout + started.stderr
    try:
        assert "running in the background" in started.stdout
        before = _status(cli, env)
        assert {name: row["health"] for name, row in before.items()} == {
            "broker": "healthy",
            "tracking": "healthy",
        }
        os.kill(int(str(before["tracking"]["pid"])), signal.SIGKILL)

        def back() -> bool:
            row = _status(cli, env)["tracking"]
            return row["restarts"] == 1 and row["health"] == "healthy"

        wait_until(back, timeout=180, what="tracking to be restarted and healthy")
        after = _status(cli, env)
        assert after["tracking"]["pid"] != before["tracking"]["pid"]
        assert after["broker"]["pid"] == before["broker"]["pid"]
        assert after["broker"]["restarts"] == 0
        assert _healthz(str(after["tracking"]["url"])) == 200

        up_log = cli("logs", "up", env=env, timeout=30)
        assert "tracking exited on SIGKILL; restarting in 0.2s" in up_log.stdout
        assert "tracking is ready again after restart 1" in up_log.stdout
        both = cli("logs", "tracking", "broker", "--tail", "3", env=env, timeout=30)
        assert both.returncode == 0
        assert any(line.startswith("tracking | ") for line in both.stdout.splitlines())
        unknown = cli("logs", "nosuch", env=env, timeout=30)
        assert unknown.returncode == 2
        assert "no log for 'nosuch'" in unknown.stderr
        again = cli("up", "tracking", "--detach", env=env, timeout=120)
        assert again.returncode == 1
        assert "already running" in again.stderr
    finally:
        stopped = cli("down", env=env, timeout=60)
    assert stopped.returncode == 0
    assert "stopped" in stopped.stdout
    assert not any(is_alive(int(str(row["pid"]))) for row in after.values())
    assert not (home / "up.json").exists()
    gone = cli("status", env=env, timeout=30)
    assert gone.returncode == 1
    assert "driftloop is not running" in gone.stderr


def test_a_service_in_a_crash_loop_is_given_up_on_and_the_broker_keeps_running(
    launch: Launch, cli: Run, fakesvc_env: dict[str, str], wait_until: Wait
) -> None:
    env = {
        **fakesvc_env,
        "DRIFTLOOP_FAKESVC_PORT": str(free_port()),
        "DRIFTLOOP_FAKESVC_CRASH_AFTER_SECONDS": "0.5",
    }
    home = Path(env["DRIFTLOOP_HOME"])
    args = ("--broker-port", str(free_port()), "--restart-delay", "0.1", "--max-restarts", "2")
    proc = launch("up", "fakesvc", *args, env=env)
    broker_pid = _wait_for_up_file(home, proc, wait_until)["pids"]

    def gave_up() -> bool:
        state = json.loads((home / "up.json").read_text())
        return bool(state["children"]["fakesvc"]["state"] == "gave up")

    wait_until(gave_up, timeout=120, what="up to give up on fakesvc")
    status = _status(cli, env)
    assert status["fakesvc"]["restarts"] == 2
    assert status["broker"]["health"] == "healthy"
    assert isinstance(broker_pid, dict)
    assert status["broker"]["pid"] == broker_pid["broker"]
    assert proc.poll() is None
    code, _, err = _stop(proc, signal.SIGINT)
    assert code == 0
    assert "fakesvc exited with code 9; gave up after 3 crashes within 120s" in err
