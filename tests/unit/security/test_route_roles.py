"""Every route of every service: 401 without a credential, 403 below its role, through with it.

Generated from each service's OpenAPI schema, so a route added without a declared role
(or with one the schema does not show) fails here; the app factory refuses such a route
outright (last test). Apps run without their lifespan: a call that passes the role
check may then fail for want of a database (any status but 401/403 passes), the checks
themselves need nothing started.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import APIRouter, FastAPI

from driftloop_kit.app import create_service_app
from driftloop_kit.auth import PUBLIC_PATHS, Role
from driftloop_kit.service import installed_services
from driftloop_kit.settings import ServiceSettings
from driftloop_kit.testing import app_client, auth_headers

pytestmark = pytest.mark.unit

SERVICES = sorted(installed_services())
METHODS = ("get", "post", "put", "patch", "delete")


def operations(app: FastAPI) -> Iterator[tuple[str, str, str]]:
    """``(method, path, scope)`` of every operation in the schema but the public three."""
    schema = app.openapi()
    for path, item in schema["paths"].items():
        for method in METHODS:
            operation = item.get(method)
            if operation is None or path in PUBLIC_PATHS:
                continue
            scopes = {
                s
                for requirement in operation.get("security", [])
                for s in requirement.values()
                for s in s
            }
            assert len(scopes) == 1, f"{method.upper()} {path} declares no single role: {scopes}"
            yield method, path, scopes.pop()


def concrete(path: str) -> str:
    path = re.sub(r"\{[^}]+:path\}", "a/b", path)
    return re.sub(r"\{[^}]+\}", "1", path)


def build(name: str, home: Path) -> FastAPI:
    definition = installed_services()[name]
    settings: ServiceSettings = definition.settings_cls(home=home)
    return definition.create_app(settings)


@pytest.mark.parametrize("name", SERVICES)
async def test_every_route_refuses_no_credential_and_a_lower_role_and_lets_its_role_through(
    name: str, tmp_path: Path
) -> None:
    app = build(name, tmp_path)
    key = app.state.settings.secret_key.get_secret_value()
    checked = 0
    async with app_client(app, lifespan=False, role=None) as client:
        for method, path, scope in operations(app):
            url = concrete(path)

            async def call(headers: dict[str, str], method: str = method, url: str = url) -> Any:
                return await client.request(method.upper(), url, headers=headers)

            anonymous = await call({})
            assert anonymous.status_code == 401, (method, path, anonymous.text)
            forged = await call(auth_headers(Role.ADMIN, secret="another-suite's-key-" + "x" * 20))
            assert forged.status_code == 401, (method, path, forged.text)
            if scope == "job":
                for role in Role:
                    denied = await call(auth_headers(role, secret=key))
                    assert denied.status_code == 403, (method, path, role, denied.text)
                other_job = await call(auth_headers(Role.WRITER, secret=key, job="2"))
                assert other_job.status_code == 403, (method, path, other_job.text)
                allowed = await call(auth_headers(Role.WRITER, secret=key, job="1"))
            else:
                needed = Role.parse(scope)
                for role in Role:
                    if role < needed:
                        denied = await call(auth_headers(role, secret=key))
                        assert denied.status_code == 403, (method, path, role, denied.text)
                allowed = await call(auth_headers(needed, secret=key))
            assert allowed.status_code not in (401, 403), (method, path, allowed.text)
            checked += 1
    assert checked >= 5


@pytest.mark.parametrize("name", SERVICES)
async def test_a_denied_call_is_in_the_protocol_error_format(name: str, tmp_path: Path) -> None:
    app = build(name, tmp_path)
    async with app_client(app, lifespan=False, role=None) as client:
        method, path, _ = next(
            (m, p, s) for m, p, s in operations(app) if name != "serving" or p.startswith("/v2/")
        )
        answer = await client.request(method.upper(), concrete(path))
    body = answer.json()
    assert answer.status_code == 401
    if name == "serving":  # the V2 protocol's error body
        assert set(body) == {"error"}
        assert "credential" in body["error"]
    else:
        assert body["error_code"] == "UNAUTHENTICATED"
        assert "credential" in body["message"]


def test_an_app_with_a_route_that_declares_no_role_is_refused(tmp_path: Path) -> None:
    router = APIRouter()

    @router.get("/open")
    async def open_route() -> dict[str, str]:
        return {}

    class Settings(ServiceSettings):
        pass

    with pytest.raises(RuntimeError, match=r"routes without a declared role.*GET /open"):
        create_service_app(settings=Settings(home=tmp_path), title="x", routers=[router])
