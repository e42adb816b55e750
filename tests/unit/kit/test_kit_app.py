"""App factory: lifespan order, rollback of a failed start-up, standard endpoints."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Mapping
from typing import ClassVar, cast

import pytest
from fastapi import APIRouter, FastAPI, Request, Response
from pydantic import BaseModel

from driftloop_kit.app import Resource, create_service_app
from driftloop_kit.auth import READER, WRITER, Role
from driftloop_kit.db import Database
from driftloop_kit.errors import NotFound
from driftloop_kit.fast_routes import body_route
from driftloop_kit.health import Check
from driftloop_kit.settings import ServiceSettings
from driftloop_kit.testing import app_client

pytestmark = pytest.mark.unit


class DemoSettings(ServiceSettings):
    service_name: ClassVar[str] = "demo"
    default_port: ClassVar[int] = 5999


class FakeResource:
    """Records its lifecycle in a shared journal; can be told to fail."""

    def __init__(self, name: str, journal: list[str], *, fail_on_start: bool = False) -> None:
        self.name = name
        self.journal = journal
        self.fail_on_start = fail_on_start

    async def start(self) -> None:
        if self.fail_on_start:
            raise ConnectionError(f"{self.name} unreachable")
        self.journal.append(f"start {self.name}")

    async def stop(self) -> None:
        self.journal.append(f"stop {self.name}")


class FakeDatabase:
    """Stands in for Database in lifecycle tests (no engine, no I/O)."""

    def __init__(self, journal: list[str], *, up: bool = True) -> None:
        self.journal = journal
        self.up = up

    async def ping(self) -> None:
        if not self.up:
            raise OSError("database is down")

    async def dispose(self) -> None:
        self.journal.append("dispose database")


def settings() -> DemoSettings:
    return DemoSettings(database_url="sqlite:///:memory:")


def build(
    journal: list[str],
    resources: list[FakeResource],
    *,
    database: FakeDatabase | None = None,
    checks: Mapping[str, Check] | None = None,
) -> FastAPI:
    async def started(app: FastAPI) -> None:
        journal.append("on_startup")

    async def stopping(app: FastAPI) -> None:
        journal.append("on_shutdown")

    return create_service_app(
        settings=settings(),
        title="demo",
        resources=resources,
        on_startup=[started],
        on_shutdown=[stopping],
        checks=checks,
        # The fake has Database's lifecycle surface (ping, dispose) and nothing else.
        database=cast(Database, database),
    )


def test_fake_resource_satisfies_the_resource_protocol() -> None:
    assert isinstance(FakeResource("x", []), Resource)


async def test_resources_start_in_order_and_stop_in_reverse_then_database_is_disposed() -> None:
    journal: list[str] = []
    resources = [FakeResource("producer", journal), FakeResource("consumer", journal)]
    app = build(journal, resources, database=FakeDatabase(journal))

    async with app_client(app):
        assert journal == ["start producer", "start consumer", "on_startup"]

    assert journal == [
        "start producer",
        "start consumer",
        "on_startup",
        "on_shutdown",
        "stop consumer",
        "stop producer",
        "dispose database",
    ]


async def test_a_failed_start_stops_the_resources_already_started() -> None:
    journal: list[str] = []
    resources = [
        FakeResource("producer", journal),
        FakeResource("cache", journal),
        FakeResource("consumer", journal, fail_on_start=True),
        FakeResource("never", journal),
    ]
    app = build(journal, resources, database=FakeDatabase(journal))

    with pytest.raises(ConnectionError, match="consumer unreachable"):
        async with app_client(app):
            pytest.fail("the app must not start")

    assert journal == [
        "start producer",
        "start cache",
        "stop cache",
        "stop producer",
        "dispose database",
    ]


async def test_standard_endpoints_and_settings_are_present() -> None:
    router = APIRouter(prefix="/api/things", tags=["things"])

    @router.get("/{thing_id}", dependencies=[READER])
    async def get_thing(thing_id: str) -> dict[str, str]:
        raise NotFound(f"thing {thing_id} does not exist")

    app = create_service_app(settings=settings(), title="demo", version="1.2.3", routers=[router])

    async with app_client(app) as client:
        health = await client.get("/healthz")
        ready = await client.get("/readyz")
        missing = await client.get("/api/things/t1")
        metrics = await client.get("/metrics")
        schema = (await client.get("/openapi.json")).json()
        docs = await client.get("/docs")

    assert app.state.settings.service_name == "demo"
    assert health.json() == {"status": "ok"}
    assert ready.status_code == 200
    assert missing.status_code == 404
    assert missing.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    assert 'route="/api/things/{thing_id}",service="demo",status="404"' in metrics.text
    assert schema["info"] == {"title": "demo", "version": "1.2.3"}
    assert {"/healthz", "/readyz", "/api/things/{thing_id}"} <= set(schema["paths"])
    assert docs.status_code == 200


async def test_database_check_is_added_to_readiness() -> None:
    journal: list[str] = []
    app = build(journal, [], database=FakeDatabase(journal, up=False))

    async with app_client(app) as client:
        response = await client.get("/readyz")

    assert response.status_code == 503
    assert response.json()["checks"] == {"database": "error: OSError"}


async def test_service_checks_join_the_database_check() -> None:
    async def kafka() -> None:
        return None

    app = build([], [], database=FakeDatabase([]), checks={"kafka": kafka})

    async with app_client(app) as client:
        response = await client.get("/readyz")

    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ok", "kafka": "ok"}


def test_building_the_app_starts_nothing() -> None:
    journal: list[str] = []

    build(journal, [FakeResource("producer", journal)], database=FakeDatabase(journal))

    assert journal == []


async def test_objects_alive_at_start_up_are_frozen_until_the_app_stops() -> None:
    app = build([], [])

    async with app_client(app):
        frozen = gc.get_freeze_count()

    assert frozen > 10_000  # the interpreter's and the libraries' objects at least
    assert gc.get_freeze_count() == 0


class Thing(BaseModel):
    name: str
    size: int


async def test_a_fast_route_answers_before_the_fastapi_route_and_checks_its_body() -> None:
    router = APIRouter()
    served_by: list[str] = []

    async def create_thing(body: Thing, owner: str) -> Response:
        return Response(f"{owner}:{body.name}:{body.size}")

    @router.post("/things", dependencies=[WRITER])
    async def create_thing_route(body: Thing) -> Response:
        served_by.append("fastapi")
        return await create_thing(body, "fastapi")

    async def owner(request: Request) -> str:
        served_by.append("fast")
        return "fast"

    app = create_service_app(
        settings=settings(),
        title="demo",
        routers=[router],
        fast_routes=[body_route("/things", create_thing, Thing, owner, role=Role.WRITER)],
    )

    async with app_client(app) as client:
        created = await client.post("/things", json={"name": "a", "size": 2})
        bad = await client.post("/things", json={"name": "a", "size": "big"})
        not_json = await client.post("/things", content=b"{")
        form = await client.post(
            "/things",
            content=b'{"name": "a", "size": 2}',
            headers={"content-type": "text/plain"},
        )
        metrics = await client.get("/metrics")
        schema = (await client.get("/openapi.json")).json()

    assert created.text == "fast:a:2"
    assert served_by == ["fast"]  # the bad bodies were refused before the dependency
    assert bad.status_code == 400
    assert bad.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert bad.json()["message"].startswith("body 'size': Input should be a valid integer")
    assert not_json.status_code == 400
    # A cross-site form post (text/plain) is not JSON, even if its text is.
    assert form.status_code == 400
    assert "a JSON body is expected" in form.json()["message"]
    assert 'route="/things",service="demo",status="200"' in metrics.text
    assert "/things" in schema["paths"]  # documented by the FastAPI route


def test_fast_routes_were_checked_against_this_starlette_and_fastapi() -> None:
    """:mod:`driftloop_kit.fast_routes` relies on Starlette's ``Route.matches`` and on
    ``app.router.routes`` being the list FastAPI matches in order; a new major or minor
    release may change either."""
    import fastapi
    import starlette

    checked = {"starlette": "1.10", "fastapi": "0.165"}
    found = {"starlette": starlette.__version__, "fastapi": fastapi.__version__}
    for name, version in checked.items():
        assert found[name].startswith(version + "."), (
            f"{name} is {found[name]}; driftloop_kit.fast_routes was checked against "
            f"{version}.x: re-run the fast route tests, re-read the module, update this pin"
        )
    router = FastAPI().router
    assert isinstance(router.routes, list), "create_service_app inserts fast routes first"


async def test_a_body_over_the_limit_is_a_413_while_it_is_read_on_every_kind_of_route() -> None:
    router = APIRouter()
    stored: list[str] = []

    async def create_thing(body: Thing, owner: str) -> Response:
        stored.append(body.name)
        return Response("ok")

    @router.post("/things", dependencies=[WRITER])
    async def create_thing_route(body: Thing) -> Response:
        return await create_thing(body, "fastapi")

    @router.post("/plain", dependencies=[WRITER])
    async def plain(body: Thing) -> Response:
        stored.append(body.name)
        return Response("ok")

    @router.put("/uploads/{name}", dependencies=[WRITER])
    async def upload(name: str, request: Request) -> Response:
        return Response(str(len(await request.body())))

    async def owner(request: Request) -> str:
        return "fast"

    app = create_service_app(
        settings=DemoSettings(max_body_bytes=2048),
        title="demo",
        routers=[router],
        fast_routes=[body_route("/things", create_thing, Thing, owner, role=Role.WRITER)],
        unbounded_paths=("/uploads/",),
    )
    big = {"name": "x" * 4000, "size": 1}

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it comes
        for _ in range(10):
            yield b" " * 1000

    async with app_client(app) as client:
        fast = await client.post("/things", json=big)
        slow = await client.post("/plain", json=big)
        streamed = await client.post(
            "/plain", content=chunks(), headers={"content-type": "application/json"}
        )
        small = await client.post("/plain", json={"name": "a", "size": 1})
        uploaded = await client.put("/uploads/f", content=b"y" * 10_000)

    for refused in (fast, slow, streamed):
        assert refused.status_code == 413, refused.text
        assert "larger than 2048 bytes" in refused.json()["message"]
    assert stored == ["a"]  # nothing over the limit was handled
    assert (small.status_code, uploaded.text) == (200, "10000")


async def test_hosts_outside_the_allow_list_are_refused_and_cors_answers_allowed_origins() -> None:
    app = create_service_app(
        settings=DemoSettings(
            allowed_hosts=["demo.internal"], cors_allowed_origins=["https://console.example"]
        ),
        title="demo",
    )
    async with app_client(app) as client:
        wrong_host = await client.get("/healthz", headers={"host": "attacker.example"})
        right_host = await client.get("/healthz", headers={"host": "demo.internal"})
        preflight = await client.options(
            "/healthz",
            headers={
                "host": "demo.internal",
                "origin": "https://console.example",
                "access-control-request-method": "GET",
            },
        )
        other_origin = await client.get(
            "/healthz", headers={"host": "demo.internal", "origin": "https://evil.example"}
        )
    assert wrong_host.status_code == 400
    assert right_host.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "https://console.example"
    assert "access-control-allow-origin" not in other_origin.headers
