"""Pins of the tracking service's speed shortcuts past its libraries.

- ``adapters/driver_sql.py`` compiles statements once and runs them through the
  driver, reading SQLAlchemy's compiled form (``positiontup``, ``params``) and
  aiosqlite's connection under SQLAlchemy's.
- ``entrypoints/fast_routes.py`` puts plain Starlette routes in front of FastAPI's.
- ``entrypoints/responses.py`` writes response bodies with pydantic-core directly.

When one of these libraries is upgraded these tests fail first: re-check the module
against the new version and update the pin.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aiosqlite
import fastapi
import pydantic_core
import pytest
import sqlalchemy
import starlette
from fastapi.routing import APIRoute
from sqlalchemy import Select, bindparam, insert, select
from sqlalchemy.dialects.postgresql.base import PGDialect
from sqlalchemy.dialects.sqlite.base import SQLiteDialect
from sqlalchemy.engine import Dialect
from starlette.routing import Match

from driftloop_kit.fast_routes import FastRoute
from driftloop_tracking.adapters.driver_sql import CompiledCache, Query
from driftloop_tracking.adapters.tables import metrics, runs
from driftloop_tracking.domain.model import Metric
from driftloop_tracking.entrypoints.fast_routes import FAST_ROUTES
from driftloop_tracking.entrypoints.responses import json_response
from driftloop_tracking.entrypoints.routers import ROUTERS

pytestmark = pytest.mark.unit


def recheck(module: str, library: str) -> str:
    return f"re-check {module} against the new {library} and update this pin"


def test_the_driver_statements_were_checked_against_sqlalchemy_2_1_and_aiosqlite_0_22() -> None:
    assert sqlalchemy.__version__.startswith("2.1."), recheck(
        "adapters/driver_sql.py", "SQLAlchemy"
    )
    assert aiosqlite.__version__.startswith("0.22."), recheck("adapters/driver_sql.py", "aiosqlite")


def test_the_fast_routes_were_checked_against_fastapi_0_165_and_starlette_1_10() -> None:
    assert fastapi.__version__.startswith("0.165."), recheck(
        "entrypoints/fast_routes.py", "FastAPI"
    )
    assert starlette.__version__.startswith("1.10."), recheck(
        "entrypoints/fast_routes.py", "Starlette"
    )


def test_the_response_bodies_were_checked_against_pydantic_core_2_50() -> None:
    assert pydantic_core.__version__.startswith("2.50."), recheck(
        "entrypoints/responses.py", "pydantic-core"
    )


def _dialect(name: str) -> Dialect:
    return SQLiteDialect() if name == "sqlite" else PGDialect()  # type: ignore[no-untyped-call]


def test_a_query_binds_by_position_on_sqlite_and_by_name_on_postgresql() -> None:
    query = Query(
        lambda _dialect: select(runs.c.status).where(
            runs.c.run_uuid == bindparam("run_id"), runs.c.lifecycle_stage == "active"
        )
    )
    sqlite = query._for(_dialect("sqlite"))
    assert sqlite.order is not None, "SQLAlchemy no longer gives the positional order"
    assert sqlite.bind({"run_id": "r1"}) == ("r1", "active")
    postgres = query._for(_dialect("postgresql"))
    assert postgres.order is None
    assert postgres.bind({"run_id": "r1"}) == {"run_id": "r1", "lifecycle_stage_1": "active"}


def test_an_insert_binds_its_rows_in_the_columns_order() -> None:
    columns = ("run_uuid", "key", "value", "timestamp", "step", "is_nan")
    query = Query(lambda _dialect: insert(metrics), columns)
    compiled = query._for(_dialect("sqlite"))
    row = {"run_uuid": "r", "key": "k", "value": 1.0, "timestamp": 2, "step": 3, "is_nan": False}
    assert compiled.bind_rows([row]) == [tuple(row[c] for c in compiled.order or ())]
    assert sorted(compiled.order or ()) == sorted(columns)


def test_every_fast_route_has_a_fastapi_route_for_the_schema_and_names_itself() -> None:
    schema_routes = {
        (route.path, method)
        for router in ROUTERS
        for route in router.routes
        if isinstance(route, APIRoute)
        for method in route.methods or set()
    }
    for route in FAST_ROUTES:
        assert isinstance(route, FastRoute)
        methods = route.methods or set()
        for method in methods:
            if method != "HEAD":
                assert (route.path, method) in schema_routes, route.path
        scope = {
            "type": "http",
            "path": route.path,
            "method": "GET" if "GET" in methods else "POST",
        }
        match, child = route.matches(scope)
        assert match is Match.FULL
        assert child["route"] is route, "the request metrics label requests by scope['route']"


def test_a_response_body_spells_nan_as_proto3_json_and_leaves_unset_fields_out() -> None:
    assert json_response({"value": float("nan")}).body == b'{"value":"NaN"}'
    response = json_response({"metric": Metric(key="loss", value=1.5)})
    assert response.body == b'{"metric":{"key":"loss","value":1.5,"timestamp":0,"step":0}}'
    assert json_response().body == b"{}"


def test_a_compiled_cache_compiles_a_key_once_and_empties_when_full() -> None:
    cache: CompiledCache[str] = CompiledCache(2)
    built: list[str] = []

    def build(name: str) -> Callable[[], Select[Any]]:
        def statement() -> Select[Any]:
            built.append(name)
            return select(runs.c.run_uuid).where(runs.c.name == name)

        return statement

    sqlite = _dialect("sqlite")
    first = cache.get("a", build("a"), sqlite)
    assert cache.get("a", build("a"), sqlite) is first
    assert built == ["a"]
    cache.get("b", build("b"), sqlite)
    cache.get("c", build("c"), sqlite)  # full: emptied, then kept
    cache.get("a", build("a"), sqlite)
    assert built == ["a", "b", "c", "a"]
