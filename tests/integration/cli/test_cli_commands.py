"""The ``driftloop`` command, run for real as ``python -m driftloop_cli``."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from driftloop_bus.embedded import free_port, port_accepts
from driftloop_cli.serve import port_is_free
from driftloop_kit.service import SERVICE_NAMES, installed_services
from driftloop_kit.testing import auth_headers

pytestmark = pytest.mark.integration

Run = Callable[..., subprocess.CompletedProcess[str]]
Launch = Callable[..., "subprocess.Popen[str]"]
Wait = Callable[..., None]
Alive = Callable[[int], bool]


@pytest.fixture
def occupied_port() -> Iterator[int]:
    """A port on 127.0.0.1 held by a listening socket for the test's duration."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def _healthz(url: str) -> int:
    try:
        return httpx.get(
            f"{url}/healthz", timeout=1.0, trust_env=False, headers=auth_headers()
        ).status_code
    except httpx.HTTPError:
        return 0


def _stop(proc: subprocess.Popen[str], sig: signal.Signals) -> tuple[int, str, str]:
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=30)
    return proc.returncode, out, err


# --- broker --------------------------------------------------------------------------


async def test_broker_command_serves_kafka_clients_and_stops_cleanly_on_sigint(
    launch: Launch, cli_env: dict[str, str], wait_until: Wait
) -> None:
    port = free_port()
    proc = launch("broker", "--port", str(port), env=cli_env)
    wait_until(lambda: port_accepts("127.0.0.1", port), timeout=30, what="the broker port")

    admin = AIOKafkaAdminClient(bootstrap_servers=f"127.0.0.1:{port}")
    await admin.start()
    try:
        await admin.create_topics([NewTopic("cli.smoke", num_partitions=1, replication_factor=1)])
        topics = await admin.list_topics()
    finally:
        await admin.close()
    assert "cli.smoke" in topics

    code, out, _ = _stop(proc, signal.SIGINT)
    assert code == 0
    assert f"127.0.0.1:{port}" in out
    wait_until(lambda: port_is_free("127.0.0.1", port), timeout=5, what="the port to be freed")


def test_broker_command_on_a_port_in_use_exits_1_naming_the_port(
    cli: Run, cli_env: dict[str, str], occupied_port: int
) -> None:
    result = cli("broker", "--port", str(occupied_port), env=cli_env)

    assert result.returncode == 1
    assert f"port {occupied_port}" in result.stderr
    assert "already in use" in result.stderr


# --- run / services / config ----------------------------------------------------------


def test_run_of_an_unknown_service_exits_2_with_the_known_names(
    cli: Run, cli_env: dict[str, str]
) -> None:
    result = cli("run", "nosuch", env=cli_env)

    assert result.returncode == 2
    assert "unknown service 'nosuch'" in result.stderr
    assert "tracking" in result.stderr


def test_run_of_a_service_that_is_not_installed_says_so_and_exits_2(
    cli: Run, cli_env: dict[str, str]
) -> None:
    missing = [name for name in SERVICE_NAMES if name not in installed_services()]
    if not missing:
        pytest.skip("every service is installed here")

    result = cli("run", missing[0], env=cli_env)

    assert result.returncode == 2
    assert f"service '{missing[0]}' is not installed in this environment" in result.stderr
    assert "installed:" in result.stderr


def test_services_lists_all_six_with_their_install_state(cli: Run, cli_env: dict[str, str]) -> None:
    result = cli("services", env=cli_env)

    assert result.returncode == 0
    rows = {line.split()[0]: line.split()[1] for line in result.stdout.splitlines()[1:]}
    installed = installed_services()
    for name in SERVICE_NAMES:
        assert rows[name] == ("yes" if name in installed else "no")


def test_services_shows_an_installed_plugin_with_its_default_port(
    cli: Run, fakesvc_env: dict[str, str]
) -> None:
    result = cli("services", env=fakesvc_env)

    assert result.returncode == 0
    assert ["fakesvc", "yes", "18999"] in [line.split() for line in result.stdout.splitlines()]


def test_config_markdown_lists_the_variables_of_installed_services(
    cli: Run, fakesvc_env: dict[str, str]
) -> None:
    result = cli("config", "--markdown", env=fakesvc_env)

    assert result.returncode == 0
    assert result.stdout.startswith("| Variable |")
    assert "`DRIFTLOOP_KAFKA_BOOTSTRAP_SERVERS`" in result.stdout
    assert "`DRIFTLOOP_FAKESVC_FAIL_STARTUP`" in result.stdout


def test_run_serves_an_installed_service_and_stops_gracefully_on_sigterm(
    launch: Launch, fakesvc_env: dict[str, str], wait_until: Wait, tmp_path: Path
) -> None:
    port = free_port()
    proc = launch("run", "fakesvc", "--port", str(port), env=fakesvc_env)
    url = f"http://127.0.0.1:{port}"
    wait_until(lambda: _healthz(url) == 200 or proc.poll() is not None, what="/healthz")
    assert _healthz(url) == 200
    home = Path(fakesvc_env["DRIFTLOOP_HOME"])
    assert json.loads((home / "fakesvc.started.json").read_text())["port"] == port

    code, _, err = _stop(proc, signal.SIGTERM)

    assert code == 0, err
    assert (home / "fakesvc.stopped").read_text() == "clean"


def test_run_on_a_port_in_use_exits_1_naming_the_port(
    cli: Run, fakesvc_env: dict[str, str], occupied_port: int
) -> None:
    result = cli("run", "fakesvc", "--port", str(occupied_port), env=fakesvc_env)

    assert result.returncode == 1
    assert f"port {occupied_port} on 127.0.0.1 is already in use" in result.stderr


def test_run_of_a_service_whose_startup_fails_exits_1(
    cli: Run, fakesvc_env: dict[str, str]
) -> None:
    env = {**fakesvc_env, "DRIFTLOOP_FAKESVC_FAIL_STARTUP": "true"}

    result = cli("run", "fakesvc", "--port", str(free_port()), env=env)

    assert result.returncode == 1
    assert "fakesvc refuses to start" in result.stderr
    assert "failed to start" in result.stderr


# --- up --------------------------------------------------------------------------------


def _wait_for_up_file(
    home: Path, proc: subprocess.Popen[str], wait_until: Wait
) -> dict[str, object]:
    up_file = home / "up.json"
    wait_until(lambda: up_file.exists() or proc.poll() is not None, timeout=240, what="up.json")
    if not up_file.exists():
        _, err = proc.communicate()
        pytest.fail(f"driftloop up exited with {proc.returncode}: {err}")
    state: dict[str, object] = json.loads(up_file.read_text())
    return state


def test_up_passes_home_and_broker_to_services_and_stops_them_gracefully(
    launch: Launch, fakesvc_env: dict[str, str], wait_until: Wait, is_alive: Alive
) -> None:
    broker_port = free_port()
    env = {**fakesvc_env, "DRIFTLOOP_FAKESVC_PORT": str(free_port())}
    home = Path(env["DRIFTLOOP_HOME"])

    proc = launch("up", "--only", "fakesvc", "--broker-port", str(broker_port), env=env)
    state = _wait_for_up_file(home, proc, wait_until)

    services = state["services"]
    assert isinstance(services, dict)
    assert _healthz(services["fakesvc"]) == 200
    started = json.loads((home / "fakesvc.started.json").read_text())
    assert Path(started["home"]) == home.resolve()
    assert started["kafka_bootstrap_servers"] == f"127.0.0.1:{broker_port}"
    assert (home / "logs" / "fakesvc.log").read_text() != ""

    code, out, err = _stop(proc, signal.SIGTERM)

    assert code == 0, err
    assert "fakesvc" in out
    assert (home / "fakesvc.stopped").read_text() == "clean"
    assert not is_alive(started["pid"])


def test_up_with_a_service_that_fails_to_start_prints_its_log_and_stops_everything(
    cli: Run, fakesvc_env: dict[str, str], is_alive: Alive
) -> None:
    broker_port = free_port()
    env = {
        **fakesvc_env,
        "DRIFTLOOP_FAKESVC_PORT": str(free_port()),
        "DRIFTLOOP_FAKESVC_FAIL_STARTUP": "true",
    }

    result = cli("up", "--only", "fakesvc", "--broker-port", str(broker_port), env=env, timeout=120)

    assert result.returncode == 1
    assert "fakesvc exited with code 1 while starting" in result.stderr
    assert "fakesvc refuses to start" in result.stderr  # the tail of its log
    assert port_is_free("127.0.0.1", broker_port)
    assert not (Path(env["DRIFTLOOP_HOME"]) / "up.json").exists()


def test_up_reports_a_port_conflict_with_a_service_before_starting_anything(
    cli: Run, fakesvc_env: dict[str, str], occupied_port: int
) -> None:
    broker_port = free_port()
    env = {**fakesvc_env, "DRIFTLOOP_FAKESVC_PORT": str(occupied_port)}

    result = cli("up", "--only", "fakesvc", "--broker-port", str(broker_port), env=env)

    assert result.returncode == 1
    assert f"port {occupied_port} on 127.0.0.1 (for fakesvc) is already in use" in result.stderr
    assert "DRIFTLOOP_FAKESVC_PORT" in result.stderr
    assert not (Path(env["DRIFTLOOP_HOME"]) / "logs" / "broker.log").exists()


def test_up_reports_a_broker_port_in_use(
    cli: Run, cli_env: dict[str, str], occupied_port: int
) -> None:
    result = cli("up", "--broker-port", str(occupied_port), env=cli_env)

    assert result.returncode == 1
    assert f"port {occupied_port} on 127.0.0.1 (for broker) is already in use" in result.stderr


def test_up_with_an_unreachable_kafka_exits_1_without_starting_services(
    cli: Run, fakesvc_env: dict[str, str]
) -> None:
    dead = f"127.0.0.1:{free_port()}"

    result = cli("up", "--bootstrap-servers", dead, env=fakesvc_env)

    assert result.returncode == 1
    assert f"no Kafka broker accepts connections at {dead}" in result.stderr


def test_up_with_an_uninstalled_service_in_only_exits_2(cli: Run, cli_env: dict[str, str]) -> None:
    result = cli("up", "--only", "nosuch", env=cli_env)

    assert result.returncode == 2
    assert "unknown service 'nosuch'" in result.stderr


# --- up supervises; up --detach, status, logs, down ------------------------------------


def _status(cli: Run, env: dict[str, str]) -> dict[str, dict[str, object]]:
    result = cli("status", "--json", env=env, timeout=30)
    assert result.returncode == 0, result.stderr
    return {row["name"]: row for row in map(json.loads, result.stdout.splitlines())}
