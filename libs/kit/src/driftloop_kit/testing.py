"""Helpers for testing apps built with the kit (async, no server, no thread)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import httpx
from fastapi import FastAPI

__all__ = ["app_client"]


@asynccontextmanager
async def app_client(
    app: FastAPI, *, lifespan: bool = True, base_url: str = "http://testserver"
) -> AsyncIterator[httpx.AsyncClient]:
    """An ``httpx.AsyncClient`` calling ``app`` in-process.

    Args:
        app: The application under test.
        lifespan: Run the app's lifespan (start resources) around the client.
        base_url: Base URL of the requests.

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
        client = httpx.AsyncClient(transport=transport, base_url=base_url)
        yield await stack.enter_async_context(client)
