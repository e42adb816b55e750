"""``driftloop up``: the embedded broker and every installed service on one machine."""

from __future__ import annotations

import json
import os
import socket
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from driftloop_cli.credentials import ADMIN_TOKEN_FILE, ensure_admin_token, secret_key
from driftloop_cli.serve import http_url, port_is_free
from driftloop_cli.supervisor import (
    ChildFailedError,
    ChildSpec,
    RestartPolicy,
    StopRequestedError,
    Supervisor,
)

if TYPE_CHECKING:
    from driftloop_kit.service import ServiceDefinition

#: File in the home folder that tells other tools where everything listens.
UP_FILE = "up.json"
BROKER_HOST = "127.0.0.1"

Echo = Callable[[str], None]


class UpError(RuntimeError):
    """``driftloop up`` cannot start (port conflict, already running, no broker)."""


@dataclass(frozen=True)
class Endpoint:
    """Where one service listens."""

    name: str
    host: str
    port: int
    #: The other ports it listens on, by setting (serving's ``grpc_port``).
    other_ports: tuple[tuple[str, int], ...] = ()

    @property
    def url(self) -> str:
        """Base URL reachable from this machine."""
        return http_url(self.host, self.port)


def http_ready(url: str, timeout: float = 1.0) -> Callable[[], bool]:
    """A readiness probe that passes when ``GET url`` answers 200."""

    def probe() -> bool:
        try:
            # trust_env=False: a proxy from the environment must not see local health checks.
            response = httpx.get(url, timeout=timeout, trust_env=False)
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    return probe


def tcp_ready(host: str, port: int) -> Callable[[], bool]:
    """A readiness probe that passes when ``host:port`` accepts TCP connections."""
    from driftloop_bus.embedded import port_accepts

    return lambda: port_accepts(host, port, timeout=0.2)


def broker_spec(*, host: str, port: int, log_path: Path | None) -> ChildSpec:
    """The embedded tansu broker as a supervised child."""
    from driftloop_bus.embedded import EmbeddedBroker

    env = {**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn")}
    return ChildSpec(
        name="broker",
        argv=EmbeddedBroker(host=host, port=port).command(),
        ready=tcp_ready(host, port),
        log_path=log_path,
        env=env,
        startup_timeout=20.0,
    )


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wiring_env(
    services: Mapping[str, ServiceDefinition], ports: Mapping[str, int]
) -> dict[str, str]:
    """Environment that moves the services to ``ports`` and points each at the others.

    Every ``<other>_url`` setting of a service that points at the local suite by
    default (e.g. serving's ``registry_url``, ``http://127.0.0.1:5001``) is set to where
    ``other`` listens, so the suite stays wired whatever the ports. Settings of the
    same name that mean something else (the features service's ``registry_url`` is
    Feast's registry, unset by default) are left alone.
    """
    env: dict[str, str] = {}
    for name, definition in services.items():
        settings = definition.settings_cls
        if name in ports:
            env[settings.env_name("port")] = str(ports[name])
            # Its other ports (serving's gRPC port) on whatever port is free when it binds.
            for other_port in settings.other_port_fields:
                env[settings.env_name(other_port)] = "0"
        for other, port in ports.items():
            field = settings.model_fields.get(f"{other}_url")
            if field is not None and str(field.default).startswith("http://127.0.0.1:"):
                env[settings.env_name(f"{other}_url")] = f"http://127.0.0.1:{port}"
    return env


def service_endpoints(
    definitions: Sequence[ServiceDefinition],
    *,
    home: Path,
    bootstrap_servers: str,
    ports: Mapping[str, int] | None = None,
) -> list[Endpoint]:
    """Host and port of each service, from its settings as its child process will see them."""
    endpoints = []
    for definition in definitions:
        given: dict[str, Any] = {"home": home, "kafka_bootstrap_servers": bootstrap_servers}
        if ports and definition.name in ports:
            given["port"] = ports[definition.name]
            given |= dict.fromkeys(definition.settings_cls.other_port_fields, 0)
        settings = definition.settings_cls(**given)
        others = tuple(settings.other_ports().items())
        endpoints.append(Endpoint(definition.name, settings.host, settings.port, others))
    return endpoints


def service_spec(
    endpoint: Endpoint, *, env: Mapping[str, str], log_path: Path, startup_timeout: float
) -> ChildSpec:
    """One service as a supervised ``driftloop run`` child."""
    argv = [sys.executable, "-m", "driftloop_cli", "run", endpoint.name]
    argv += ["--host", endpoint.host, "--port", str(endpoint.port)]
    return ChildSpec(
        name=endpoint.name,
        argv=argv,
        ready=http_ready(f"{endpoint.url}/healthz"),
        log_path=log_path,
        env=env,
        startup_timeout=startup_timeout,
    )


def check_ports(claims: Sequence[tuple[str, str, int, str]]) -> None:
    """Refuse to start when a port is taken or claimed twice.

    Args:
        claims: ``(owner, host, port, how to move it)`` for the broker and every port of
            every service (its variable, e.g. ``DRIFTLOOP_SERVING_GRPC_PORT``).

    Raises:
        UpError: Naming the owner, the port and how to move it.
    """
    seen: dict[int, str] = {}
    for owner, host, port, mover in claims:
        if port in seen:
            raise UpError(f"{owner} and {seen[port]} are both configured for port {port}")
        seen[port] = owner
        if not port_is_free(host, port):
            hint = "use --broker-port" if owner == "broker" else f"set {mover} to another port"
            raise UpError(
                f"port {port} on {host} (for {owner}) is already in use; stop what listens "
                f"there or {hint}"
            )


def running_pid(up_file: Path) -> int | None:
    """The pid recorded in an ``up.json`` if that process is still alive."""
    try:
        pid = int(json.loads(up_file.read_text())["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    return pid


def write_state(path: Path, state: Mapping[str, object]) -> None:
    """Write ``up.json`` atomically, so a reader never sees half a file."""
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(state, indent=2) + "\n")
    tmp.replace(path)


def format_table(rows: Sequence[tuple[str, str]]) -> str:
    """Two left-aligned columns."""
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"  {name.ljust(width)}  {where}" for name, where in rows)


def run_up(
    *,
    home: Path,
    definitions: Sequence[ServiceDefinition],
    bootstrap_servers: str | None,
    broker_port: int,
    startup_timeout: float,
    grace: float,
    echo: Echo,
    echo_err: Echo,
    free_ports: bool = False,
    restart: RestartPolicy | None = None,
) -> int:
    """Start the broker (unless given one) and the services; block until stopped.

    Args:
        home: The DRIFTLOOP_HOME every service shares; logs go to ``home/logs``.
        definitions: The services to start, in start-up order.
        bootstrap_servers: An existing Kafka cluster; None starts the embedded broker.
        broker_port: Port of the embedded broker.
        startup_timeout: Seconds each service has to answer ``/healthz``.
        grace: Seconds between SIGTERM and SIGKILL when stopping.
        echo: Writes a line to stdout.
        echo_err: Writes a line to stderr.
        free_ports: Start the broker and the services on free ports (``broker_port`` and
            the services' port settings are ignored) and wire each service's URLs of
            the others to them.
        restart: How a crashed child is restarted and when it is given up on.

    Returns:
        The exit code: 0 after a requested stop, 1 if something failed.

    Raises:
        UpError: Nothing was started because of a conflict.
    """
    home = home.resolve()
    pid = running_pid(home / UP_FILE)
    if pid is not None and pid != os.getpid():
        raise UpError(f"driftloop is already running with home {home} (pid {pid})")
    own_broker = bootstrap_servers is None
    ports: dict[str, int] = {}
    if free_ports:
        ports = {d.name: free_port() for d in definitions}
        if own_broker:
            broker_port = free_port()
    broker = bootstrap_servers or f"{BROKER_HOST}:{broker_port}"
    if not own_broker and not any(_reachable(addr) for addr in broker.split(",")):
        raise UpError(f"no Kafka broker accepts connections at {broker}")
    endpoints = service_endpoints(definitions, home=home, bootstrap_servers=broker, ports=ports)
    settings_of = {d.name: d.settings_cls for d in definitions}
    claims = []
    for e in endpoints:
        claims.append((e.name, e.host, e.port, settings_of[e.name].env_name("port")))
        claims += [
            (f"{e.name} ({field})", e.host, port, settings_of[e.name].env_name(field))
            for field, port in e.other_ports
        ]
    if own_broker:
        claims.insert(0, ("broker", BROKER_HOST, broker_port, "--broker-port"))
    check_ports(claims)

    specs = []
    if own_broker:
        specs.append(
            broker_spec(host=BROKER_HOST, port=broker_port, log_path=home / "logs" / "broker.log")
        )
    key = secret_key(home, create=True)
    token, made = ensure_admin_token(home, key)
    env = {
        **os.environ,
        # Every service signs and checks tokens with the same key.
        "DRIFTLOOP_SECRET_KEY": key,
        "DRIFTLOOP_HOME": str(home),
        "DRIFTLOOP_KAFKA_BOOTSTRAP_SERVERS": broker,
        # Logs reach the file as they are written, not when a buffer fills.
        "PYTHONUNBUFFERED": "1",
        **wiring_env({d.name: d for d in definitions}, ports),
    }
    tracking = next((e for e in endpoints if e.name == "tracking"), None)
    if tracking is not None and "DRIFTLOOP_AUTH_URL" not in os.environ:
        # Where every service reads revoked tokens and stored users: this suite's tracking.
        env["DRIFTLOOP_AUTH_URL"] = tracking.url
    specs += [
        service_spec(
            e, env=env, log_path=home / "logs" / f"{e.name}.log", startup_timeout=startup_timeout
        )
        for e in endpoints
    ]
    if not endpoints:
        if not own_broker:
            echo("no service is installed in this environment; nothing to start")
            return 0
        echo("no service is installed in this environment; running the broker only")
    admin = home / ADMIN_TOKEN_FILE
    if made:
        echo(f"an admin token was written to {admin} (shown once; keep it secret):")
        echo(f"  {token}")
    echo(f"calls need a token: export MLFLOW_TRACKING_TOKEN=$(cat {admin})")
    echo("  (driftloop token create --role reader|writer|deployer|admin makes others)")
    suite = _Suite(home=home, broker=broker, endpoints=endpoints, echo=echo, echo_err=echo_err)
    supervisor = Supervisor(
        startup_timeout=startup_timeout, grace=grace, restart=restart or RestartPolicy()
    )
    return suite.run(supervisor, specs)


@dataclass
class _Suite:
    """Drives the supervisor for ``up`` and tells the user what happens."""

    home: Path
    broker: str
    endpoints: Sequence[Endpoint]
    echo: Echo
    echo_err: Echo

    @property
    def up_file(self) -> Path:
        return self.home / UP_FILE

    def run(self, supervisor: Supervisor, specs: Sequence[ChildSpec]) -> int:
        code = 0
        supervisor.notify = self._notify
        with supervisor.handle_signals():
            try:
                where = {"broker": self.broker} | {e.name: e.url for e in self.endpoints}
                for spec in specs:
                    self.echo(f"starting {spec.name} on {where[spec.name]}")
                for endpoint in self.endpoints:
                    for field, port in endpoint.other_ports:
                        self.echo(f"  {endpoint.name} {field}: {endpoint.host}:{port}")
                # The broker first: every service connects to it on start-up. The
                # services need nothing of each other to start, so they start together.
                first = [s for s in specs if s.name == "broker"]
                if first:
                    supervisor.start(first[0])
                supervisor.start_many([s for s in specs if s.name != "broker"])
                self._announce(supervisor)
                # From here on a crash restarts the child; up.json follows every change.
                supervisor.on_change = lambda: self._write(supervisor)
                supervisor.watch()
            except StopRequestedError:
                pass
            except ChildFailedError as exc:
                self._report(exc)
                code = 1
            finally:
                self.echo("stopping...")
                supervisor.stop()
                if running_pid(self.up_file) == os.getpid():
                    self.up_file.unlink(missing_ok=True)
        self.echo("stopped")
        return code

    def _write(self, supervisor: Supervisor) -> None:
        logs = self.home / "logs"
        where = {"broker": self.broker} | {e.name: e.url for e in self.endpoints}
        children = {
            name: {**state, "url": where.get(name, ""), "log": str(logs / f"{name}.log")}
            for name, state in supervisor.states.items()
        }
        state = {
            "broker": self.broker,
            "services": {e.name: e.url for e in self.endpoints},
            "pid": os.getpid(),
            "pids": supervisor.pids,
            "children": children,
            "home": str(self.home),
            "logs": str(logs),
        }
        write_state(self.up_file, state)

    def _announce(self, supervisor: Supervisor) -> None:
        logs = self.home / "logs"
        self._write(supervisor)
        rows = [("broker", self.broker)] + [(e.name, e.url) for e in self.endpoints]
        self.echo(f"driftloop is up (home {self.home}, logs in {logs}):")
        self.echo(format_table(rows))
        self.echo("press Ctrl-C to stop")

    def _notify(self, name: str, message: str) -> None:
        stamp = datetime.now(UTC).strftime("%H:%M:%S")
        self.echo_err(f"{stamp} {name} {message}")

    def _report(self, exc: ChildFailedError) -> None:
        self.echo_err(f"error: {exc.name} {exc.reason}")
        if exc.log_tail:
            self.echo_err(f"--- last lines of {self.home / 'logs' / (exc.name + '.log')} ---")
            self.echo_err(exc.log_tail.rstrip("\n"))
            self.echo_err("---")


def _reachable(address: str) -> bool:
    from driftloop_bus.embedded import port_accepts

    # Accept "host:port" as well as listener-style "PLAINTEXT://host:port".
    host, _, port = address.strip().split("://")[-1].rpartition(":")
    if not port.isdigit():
        return False
    return port_accepts(host.strip("[]") or "127.0.0.1", int(port), timeout=1.0)
