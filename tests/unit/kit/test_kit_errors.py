"""Errors: one hierarchy, one JSON body, never a bare 500 for bad input."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import pytest
from fastapi import FastAPI
from pydantic import BaseModel, Field

from driftloop_kit.auth import READER, WRITER
from driftloop_kit.errors import (
    AlreadyExists,
    Conflict,
    DriftloopError,
    InvalidInput,
    NotFound,
    Unavailable,
    install_error_handlers,
)
from driftloop_kit.testing import app_client, authenticator

pytestmark = pytest.mark.unit

ERRORS: dict[str, type[DriftloopError]] = {
    "internal": DriftloopError,
    "invalid": InvalidInput,
    "missing": NotFound,
    "exists": AlreadyExists,
    "conflict": Conflict,
    "unavailable": Unavailable,
}


class NewRun(BaseModel):
    name: str = Field(min_length=1)
    max_epochs: int


def build_app(**kwargs: Any) -> FastAPI:
    app = FastAPI()
    app.state.authenticator = authenticator()
    install_error_handlers(app, **kwargs)

    @app.get("/raise/{kind}", dependencies=[READER])
    async def raise_error(kind: str) -> None:
        raise ERRORS[kind](f"{kind} happened")

    @app.get("/bug", dependencies=[READER])
    async def bug() -> None:
        raise ZeroDivisionError("secret internals")

    @app.post("/runs", dependencies=[WRITER])
    async def create_run(run: NewRun, limit: int = 10) -> dict[str, str]:
        return {"name": run.name}

    return app


@pytest.mark.parametrize(
    ("kind", "status", "code"),
    [
        ("internal", 500, "INTERNAL_ERROR"),
        ("invalid", 400, "INVALID_PARAMETER_VALUE"),
        ("missing", 404, "RESOURCE_DOES_NOT_EXIST"),
        ("exists", 409, "RESOURCE_ALREADY_EXISTS"),
        ("conflict", 409, "INVALID_STATE"),
        ("unavailable", 503, "TEMPORARILY_UNAVAILABLE"),
    ],
)
async def test_each_error_class_becomes_its_status_and_code(
    kind: str, status: int, code: str
) -> None:
    async with app_client(build_app(), lifespan=False) as client:
        response = await client.get(f"/raise/{kind}")

    assert response.status_code == status
    assert response.json() == {"error_code": code, "message": f"{kind} happened"}


async def test_validation_error_is_a_400_naming_each_bad_field() -> None:
    async with app_client(build_app(), lifespan=False) as client:
        response = await client.post("/runs?limit=many", json={"name": ""})

    assert response.status_code == 400
    body = response.json()
    assert body["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "body 'name': String should have at least 1 character" in body["message"]
    assert "body 'max_epochs': Field required" in body["message"]
    assert "query parameter 'limit': Input should be a valid integer" in body["message"]


async def test_malformed_json_body_is_a_400_not_a_500() -> None:
    async with app_client(build_app(), lifespan=False) as client:
        response = await client.post(
            "/runs", content=b"{not json", headers={"content-type": "application/json"}
        )

    assert response.status_code == 400
    assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"


async def test_unhandled_exception_is_a_logged_500_json_without_internals(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.ERROR, logger="driftloop_kit.errors"):
        async with app_client(build_app(), lifespan=False) as client:
            response = await client.get("/bug")

    assert response.status_code == 500
    assert response.json() == {"error_code": "INTERNAL_ERROR", "message": "internal server error"}
    assert "secret internals" not in response.text
    record = next(r for r in caplog.records if r.name == "driftloop_kit.errors")
    assert record.exc_info is not None
    assert record.exc_info[0] is ZeroDivisionError


async def test_unknown_route_and_wrong_method_are_json_errors() -> None:
    async with app_client(build_app(), lifespan=False) as client:
        missing = await client.get("/nowhere")
        wrong_method = await client.delete("/runs")

    assert missing.status_code == 404
    assert missing.json()["error_code"] == "ENDPOINT_NOT_FOUND"
    assert wrong_method.status_code == 405
    assert wrong_method.headers["allow"] == "POST"
    assert wrong_method.json()["error_code"] == "ENDPOINT_NOT_FOUND"


async def test_an_app_can_replace_the_error_body_format() -> None:
    def kserve_body(error: DriftloopError) -> Mapping[str, Any]:
        return {"error": error.message}

    async with app_client(build_app(formatter=kserve_body), lifespan=False) as client:
        missing = await client.get("/raise/missing")
        invalid = await client.post("/runs", json={})
        bug = await client.get("/bug")

    assert missing.status_code == 404
    assert missing.json() == {"error": "missing happened"}
    assert invalid.status_code == 400
    assert set(invalid.json()) == {"error"}
    assert "max_epochs" in invalid.json()["error"]
    assert bug.status_code == 500
    assert bug.json() == {"error": "internal server error"}


def test_an_instance_can_override_status_and_code_without_changing_its_class() -> None:
    error = NotFound("gone", status_code=410, error_code="GONE")

    assert (error.status_code, error.error_code) == (410, "GONE")
    assert (NotFound.status_code, NotFound.error_code) == (404, "RESOURCE_DOES_NOT_EXIST")
    assert isinstance(error, DriftloopError)
