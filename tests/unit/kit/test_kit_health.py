"""Health: /healthz while the process runs, /readyz from concurrent, bounded checks."""

from __future__ import annotations

import asyncio

import pytest
from fastapi import FastAPI

from driftloop_kit.errors import Unavailable
from driftloop_kit.health import Readiness, health_router
from driftloop_kit.testing import app_client

pytestmark = pytest.mark.unit


async def passes() -> None:
    return None


async def fails() -> None:
    raise ConnectionRefusedError("connection refused")


async def hangs() -> None:
    await asyncio.Event().wait()


def build_app(readiness: Readiness) -> FastAPI:
    app = FastAPI()
    app.include_router(health_router(readiness))
    return app


async def test_healthz_is_ok_even_when_a_dependency_is_down() -> None:
    async with app_client(build_app(Readiness({"db": fails})), lifespan=False) as client:
        response = await client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_is_200_when_every_check_passes() -> None:
    readiness = Readiness({"database": passes, "kafka": passes})

    async with app_client(build_app(readiness), lifespan=False) as client:
        response = await client.get("/readyz")

    assert response.status_code == 200
    assert response.json() == {
        "status": "ready",
        "checks": {"database": "ok", "kafka": "ok"},
        "details": {},
    }


async def test_readyz_details_inform_without_deciding_readiness() -> None:
    readiness = Readiness({"database": passes})
    readiness.add_details("models", lambda: {"iris@champion": "load failure: corrupt"})
    report = await readiness.run()
    assert report.ready
    assert report.details == {"models": {"iris@champion": "load failure: corrupt"}}


async def test_readyz_is_503_naming_the_failing_check() -> None:
    readiness = Readiness({"database": passes, "kafka": fails})

    async with app_client(build_app(readiness), lifespan=False) as client:
        response = await client.get("/readyz")

    assert response.status_code == 503
    assert response.json() == {
        "status": "not ready",
        "checks": {"database": "ok", "kafka": "error: ConnectionRefusedError"},
        "details": {},
    }


async def test_a_hanging_check_fails_after_its_timeout() -> None:
    readiness = Readiness({"slow": hangs, "database": passes}, timeout=0.05)

    report = await readiness.run()

    assert not report.ready
    assert report.checks == {"slow": "error: timed out after 0.05s", "database": "ok"}


async def test_checks_run_concurrently() -> None:
    # Both checks must be running at once for either to finish.
    first, second = asyncio.Event(), asyncio.Event()

    async def check_a() -> None:
        first.set()
        await second.wait()

    async def check_b() -> None:
        second.set()
        await first.wait()

    report = await Readiness({"a": check_a, "b": check_b}, timeout=1.0).run()

    assert report.checks == {"a": "ok", "b": "ok"}


async def test_a_check_added_later_is_reported() -> None:
    readiness = Readiness({"database": passes})
    app = build_app(readiness)

    async def model_loaded() -> None:
        raise Unavailable("model churn-v3 failed to load: bad pickle")

    readiness.add("model", model_loaded)
    async with app_client(app, lifespan=False) as client:
        response = await client.get("/readyz")

    assert response.status_code == 503
    assert response.json()["checks"]["model"] == "error: model churn-v3 failed to load: bad pickle"


async def test_an_exception_without_message_is_reported_by_its_type() -> None:
    async def bare() -> None:
        raise LookupError

    report = await Readiness({"bare": bare}).run()

    assert report.checks == {"bare": "error: LookupError"}


async def test_a_drivers_error_text_is_not_shown_only_its_type() -> None:
    async def database() -> None:
        raise OSError("connection to postgresql://app:s3cret@db.internal:5432 refused")

    report = await Readiness({"database": database}).run()

    assert report.checks == {"database": "error: OSError"}  # no host, user or password
