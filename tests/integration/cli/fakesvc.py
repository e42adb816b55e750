"""A minimal driftloop service used by the CLI tests (not collected by pytest).

The tests make it "installed" by writing a ``.dist-info`` with an entry point in a
temporary folder put on ``PYTHONPATH``, so ``driftloop run`` and ``driftloop up``
exercise the real plugin path before any real service exists.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import ClassVar

from fastapi import FastAPI

from driftloop_kit.service import ServiceDefinition
from driftloop_kit.settings import ServiceSettings


class FakeSettings(ServiceSettings):
    """Settings of the fake service (``DRIFTLOOP_FAKESVC_*``)."""

    service_name: ClassVar[str] = "fakesvc"
    default_port: ClassVar[int] = 18999

    fail_startup: bool = False
    #: Seconds after start-up at which the process dies hard (a crash loop under `up`).
    crash_after_seconds: float | None = None


def create_app(settings: FakeSettings) -> FastAPI:
    """An app with ``/healthz`` that records what it was started with."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.fail_startup:
            raise RuntimeError("fakesvc refuses to start")
        settings.home.mkdir(parents=True, exist_ok=True)
        started = {
            "home": str(settings.home),
            "kafka_bootstrap_servers": settings.kafka_bootstrap_servers,
            "port": settings.port,
            "pid": os.getpid(),
        }
        (settings.home / "fakesvc.started.json").write_text(json.dumps(started))
        if settings.crash_after_seconds is not None:
            asyncio.get_running_loop().call_later(settings.crash_after_seconds, os._exit, 9)
        yield
        # Proves the lifespan shutdown ran, i.e. the stop was graceful.
        (settings.home / "fakesvc.stopped").write_text("clean")

    app = FastAPI(lifespan=lifespan)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


SERVICE = ServiceDefinition(name="fakesvc", settings_cls=FakeSettings, create_app=create_app)
