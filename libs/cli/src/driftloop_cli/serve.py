"""Running one service in this process with uvicorn (``driftloop run``)."""

from __future__ import annotations

import errno
import logging
import signal
import socket
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from driftloop_kit.service import ServiceDefinition

#: Seconds an idle HTTP connection is kept open.
KEEP_ALIVE_SECONDS = 75

logger = logging.getLogger("driftloop.cli")


class ListenError(RuntimeError):
    """A TCP address cannot be listened on (usually: the port is already in use)."""


class ServeError(RuntimeError):
    """The service did not start (its lifespan start-up failed)."""


def bind_socket(host: str, port: int) -> socket.socket:
    """Bind a TCP socket on ``host:port`` the way uvicorn would.

    Binding before building the app turns a port conflict into one clear
    message instead of a stack trace after a slow start-up.

    Raises:
        ListenError: The address is taken or cannot be bound.
    """
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except OSError as exc:
        raise ListenError(f"cannot listen on {host}:{port}: {exc}") from exc
    sock = socket.socket(family, kind, proto)
    # Same option as uvicorn: a port in TIME_WAIT from a previous run is not a conflict.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ListenError(f"port {port} on {host} is already in use") from exc
        raise ListenError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    return sock


def port_is_free(host: str, port: int) -> bool:
    """Whether ``host:port`` can be bound right now."""
    try:
        bind_socket(host, port).close()
    except ListenError:
        return False
    return True


def connect_host(host: str) -> str:
    """The host a client on this machine should connect to for a listen address."""
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "::1"
    return host


def http_url(host: str, port: int) -> str:
    """``http://host:port`` reachable from this machine, IPv6 hosts in brackets."""
    target = connect_host(host)
    if ":" in target:
        target = f"[{target}]"
    return f"http://{target}:{port}"


def serve(
    definition: ServiceDefinition, *, host: str | None = None, port: int | None = None
) -> None:
    """Serve one service in this process until SIGINT or SIGTERM.

    Settings come from the environment (``definition.settings_cls()``); ``host``
    and ``port`` override them. Logging is configured from the settings and
    uvicorn keeps it (``log_config=None``).

    Args:
        definition: The service to run.
        host: Listen address overriding the settings.
        port: Listen port overriding the settings.

    Raises:
        ListenError: The port is already in use.
        ServeError: The app's start-up failed.
    """
    import uvicorn

    from driftloop_kit.logging import configure_logging

    overrides: dict[str, Any] = {}
    if host is not None:
        overrides["host"] = host
    if port is not None:
        overrides["port"] = port
    settings = definition.settings_cls(**overrides)
    configure_logging(level=settings.log_level, fmt=settings.log_format, service=definition.name)
    sock = bind_socket(settings.host, settings.port)
    started = False
    # uvicorn re-raises the signal that stopped it once it has shut down; turning
    # SIGTERM into KeyboardInterrupt lets both signals end in a clean return.
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        app = definition.create_app(settings)
        config = uvicorn.Config(
            app,
            workers=1,
            log_config=None,
            lifespan="on",
            # Longer than the idle timeout of the load balancers and clients in front
            # (60 s is common): the side that closes an idle connection first must be
            # the client, or a request sent as the server closes it fails.
            timeout_keep_alive=KEEP_ALIVE_SECONDS,
        )
        server = uvicorn.Server(config)
        logger.info("starting %s on %s", definition.name, http_url(settings.host, settings.port))
        server.run(sockets=[sock])
        started = server.started
    except KeyboardInterrupt:
        return
    except SystemExit as exc:
        # uvicorn exits (code 3) itself when the lifespan start-up fails.
        if exc.code not in (0, None):
            raise ServeError(
                f"service {definition.name!r} failed to start; see the log above"
            ) from None
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)
        sock.close()
    if not started:
        raise ServeError(f"service {definition.name!r} failed to start; see the log above")
