"""Helpers for testing apps built with the kit: in-process clients and served apps."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import httpx
import uvicorn
from fastapi import FastAPI

from driftloop_kit.auth import Authenticator, Role, TokenSigner

__all__ = ["ServedApp", "app_client", "auth_headers", "authenticator"]


def authenticator() -> Authenticator:
    """An authenticator checking tokens signed with ``DRIFTLOOP_SECRET_KEY`` (for an app
    built without the kit's factory: ``app.state.authenticator = authenticator()``)."""
    return Authenticator(TokenSigner(os.environ["DRIFTLOOP_SECRET_KEY"]))


def auth_headers(
    role: Role = Role.ADMIN,
    *,
    secret: str | None = None,
    subject: str = "tests",
    job: str | None = None,
) -> dict[str, str]:
    """``{"Authorization": "Bearer <token>"}`` with ``role``, signed with ``secret``
    (default: ``DRIFTLOOP_SECRET_KEY``)."""
    key = secret if secret is not None else os.environ["DRIFTLOOP_SECRET_KEY"]
    token = TokenSigner(key).issue(subject=subject, role=role, ttl_seconds=86_400, job=job)
    return {"Authorization": f"Bearer {token}"}


@asynccontextmanager
async def app_client(
    app: FastAPI,
    *,
    lifespan: bool = True,
    base_url: str = "http://testserver",
    role: Role | None = Role.ADMIN,
) -> AsyncIterator[httpx.AsyncClient]:
    """An ``httpx.AsyncClient`` calling ``app`` in-process.

    Args:
        app: The application under test.
        lifespan: Run the app's lifespan (start resources) around the client.
        base_url: Base URL of the requests.
        role: The client sends a token with this role, signed with the app's key;
            None sends none.

    Yields:
        The client; the lifespan is shut down when the block exits.

    Example::

        async with app_client(create_app(settings)) as client:
            assert (await client.get("/healthz")).status_code == 200
    """
    async with AsyncExitStack() as stack:
        if lifespan:
            await stack.enter_async_context(app.router.lifespan_context(app))
        transport = httpx.ASGITransport(app=app)
        headers = {}
        settings = getattr(app.state, "settings", None)
        if role is not None and settings is not None:
            headers = auth_headers(role, secret=settings.secret_key.get_secret_value())
        elif role is not None and "DRIFTLOOP_SECRET_KEY" in os.environ:
            headers = auth_headers(role)
        client = httpx.AsyncClient(transport=transport, base_url=base_url, headers=headers)
        yield await stack.enter_async_context(client)


class ServedApp:
    """An app served by uvicorn on a real port, in a background thread.

    For clients that need a URL (the mlflow client, another service). ``start()``
    returns once ``/healthz`` answers; ``stop()`` runs the app's shutdown.

    Args:
        app: The application.
        host: Interface to listen on.
        port: Port to listen on (pick one with ``driftloop_bus.embedded.free_port``).
        name: What the app is, for error messages.
    """

    def __init__(self, app: FastAPI, *, host: str, port: int, name: str = "server") -> None:
        self.name = name
        self.url = f"http://{host}:{port}"
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            log_config=None,
            lifespan="on",
            timeout_keep_alive=75,  # as `driftloop run` serves (see driftloop_cli.serve)
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self, timeout: float = 30.0) -> None:
        """Start serving and wait until ``/healthz`` answers 200.

        Raises:
            RuntimeError: If the server exits or does not answer within ``timeout``.
        """
        self.thread.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.server.started:
                try:
                    if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
            if not self.thread.is_alive():
                raise RuntimeError(f"{self.name} exited during start-up")
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} did not start in {timeout}s")

    def stop(self) -> None:
        """Shut the server down (lifespan shutdown included) and wait for its thread."""
        self.server.should_exit = True
        self.thread.join(timeout=30)
