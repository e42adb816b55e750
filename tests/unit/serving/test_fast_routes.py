"""The scoring routes past FastAPI answer exactly what the FastAPI routes answer.

``driftloop_serving.entrypoints.fast_routes`` skips FastAPI's routing and dependency
solving: the first test pins the FastAPI and Starlette versions it was checked against.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import fastapi
import httpx
import pytest
import starlette
from fastapi import FastAPI

from driftloop_kit.app import create_service_app
from driftloop_kit.fast_routes import FastRoute
from driftloop_kit.testing import app_client
from driftloop_serving.domain.models import Column, Predictor, ServedModel
from driftloop_serving.entrypoints.deps import get_scorer
from driftloop_serving.entrypoints.fast_routes import FAST_ROUTES
from driftloop_serving.entrypoints.routers import ROUTERS
from driftloop_serving.service_layer.scoring import Scorer
from driftloop_serving.settings import ServingSettings
from tests.fakes.serving import FakePredictionLog, FakeServedModels

pytestmark = pytest.mark.unit

REQUESTS: list[tuple[str, dict[str, Any]]] = [
    (
        "/v2/models/m/infer",
        {
            "id": "r1",
            "inputs": [{"name": "x", "shape": [2, 2], "datatype": "FP64", "data": [1, 2, 3, 4]}],
        },
    ),
    (
        "/v2/models/m/versions/3/infer",
        {
            "id": "r2",
            "inputs": [
                {"name": "a", "shape": [1], "datatype": "FP32", "data": [1]},
                {"name": "b", "shape": [1], "datatype": "FP32", "data": [2]},
            ],
        },
    ),
    ("/v2/models/m/versions/4/infer", {"id": "r3", "inputs": []}),
    ("/v2/models/other/infer", {"id": "r4", "inputs": []}),
    (
        "/v2/models/m/infer",
        {"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP64", "data": [1, 2, 3]}]},
    ),
    ("/invocations", {"dataframe_split": {"columns": ["b", "a"], "data": [[2, 1], [4, 3]]}}),
    ("/invocations?model=m", {"dataframe_records": [{"a": 1, "b": 2}]}),
    ("/invocations?model=other", {"instances": [[1, 2]]}),
    ("/models/m/invocations", {"inputs": {"a": [1, 5], "b": [2, 6]}}),
    ("/models/m/invocations", {"unknown": []}),
    # More rows than max_rows_per_request (3): refused, on both protocols.
    (
        "/v2/models/m/infer",
        {"inputs": [{"name": "x", "shape": [4, 2], "datatype": "FP64", "data": [1] * 8}]},
    ),
    ("/invocations", {"instances": [[1, 2]] * 4}),
]


def test_the_fast_routes_were_checked_against_this_fastapi_and_starlette() -> None:
    checked = {"fastapi": "0.165", "starlette": "1.10"}
    found = {"fastapi": fastapi.__version__, "starlette": starlette.__version__}
    for name, version in checked.items():
        assert found[name].startswith(version + "."), (
            f"{name} is {found[name]}; re-check driftloop_serving.entrypoints.fast_routes "
            f"against the new {name} (routing, request.app.state, path and query params) "
            "and update this pin"
        )


def app(tmp_path: Path, *, fast: bool, served_by: list[str]) -> FastAPI:
    predictor = Predictor(
        flavor="sklearn",
        columns=(Column("a", "double"), Column("b", "double")),
        predict=lambda m: m[:, 0] * 10 + m[:, 1],
    )
    model = ServedModel(name="m", version=3, run_id="r" * 32, alias="champion", predictor=predictor)
    settings = ServingSettings(home=tmp_path, models="m", max_rows_per_request=3)
    built = create_service_app(
        settings=settings,
        title="serving",
        routers=ROUTERS,
        fast_routes=FAST_ROUTES if fast else (),
    )
    built.state.scorer = Scorer(settings, FakeServedModels(model), FakePredictionLog())

    async def fastapi_scorer(request: fastapi.Request) -> Scorer:
        served_by.append("fastapi")
        return await get_scorer(request)

    built.dependency_overrides[get_scorer] = fastapi_scorer
    return built


async def answers(built: FastAPI) -> list[tuple[int, str, dict[str, str]]]:
    found = []
    async with app_client(built) as client:
        for path, body in REQUESTS:
            response: httpx.Response = await client.post(path, json=body)
            headers = {k: v for k, v in response.headers.items() if k.startswith("x-")}
            headers.pop("x-request-id", None)
            found.append((response.status_code, response.text, headers))
    return found


async def test_a_fast_route_answers_what_the_fastapi_route_answers(tmp_path: Path) -> None:
    by_fastapi: list[str] = []
    by_fast: list[str] = []
    expected = await answers(app(tmp_path / "a", fast=False, served_by=by_fastapi))
    found = await answers(app(tmp_path / "b", fast=True, served_by=by_fast))

    assert found == expected
    assert by_fastapi == ["fastapi"] * len(REQUESTS)  # the FastAPI routes answered here
    assert by_fast == []  # and the fast routes there
    statuses = [status for status, _, _ in found]
    assert statuses == [200, 200, 404, 404, 400, 200, 200, 404, 200, 400, 400, 400]
    assert "at most 3" in json.loads(found[-2][1])["error"]
    assert json.loads(found[0][1])["outputs"][0]["data"] == [12.0, 34.0]


def test_every_scoring_route_has_a_fast_route_in_front() -> None:
    paths = {route.path for route in FAST_ROUTES if isinstance(route, FastRoute)}
    assert paths == {
        "/v2/models/{name}/infer",
        "/v2/models/{name}/versions/{version}/infer",
        "/invocations",
        "/models/{name}/invocations",
    }
