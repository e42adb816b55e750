"""The base URL a client reached a service at: Host, X-Forwarded-*, public_url."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from driftloop_kit.errors import InvalidInput
from driftloop_kit.public_urls import PublicBaseUrlDep, base_url_of

pytestmark = pytest.mark.unit


def test_without_forwarded_headers_the_host_the_client_called() -> None:
    assert base_url_of(scheme="http", host="registry:5001") == "http://registry:5001"
    assert base_url_of(scheme="http", host="127.0.0.1:5001") == "http://127.0.0.1:5001"
    assert (
        base_url_of(scheme="http", host="[::1]:5001", root_path="/api") == "http://[::1]:5001/api"
    )


def test_forwarded_headers_win_and_the_nearest_proxy_counts() -> None:
    url = base_url_of(
        scheme="http",
        host="registry:5001",
        forwarded_proto="HTTPS, http",
        forwarded_host="ml.example.com, proxy.internal",
        forwarded_prefix="/registry/, /other",
    )
    assert url == "https://ml.example.com/registry"


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("forwarded_host", "evil.example/path"),
        ("forwarded_host", "user@evil.example"),
        ("forwarded_host", "a" * 600),
        ("forwarded_proto", "ftp"),
        ("forwarded_prefix", "no-leading-slash"),
        ("forwarded_prefix", "/a/../b"),
        ("forwarded_prefix", "//evil.example"),
        ("forwarded_prefix", "/a?b=c"),
    ],
)
def test_a_forwarded_value_that_is_not_what_it_names_is_refused(header: str, value: str) -> None:
    with pytest.raises(InvalidInput, match="is not"):
        base_url_of(scheme="http", host="registry:5001", **{header: value})


def test_a_bad_host_header_is_refused() -> None:
    with pytest.raises(InvalidInput, match="Host"):
        base_url_of(scheme="http", host="a b")


class _Settings:
    def __init__(self, public_url: str | None) -> None:
        self.public_url = public_url


def _app(public_url: str | None) -> TestClient:
    app = FastAPI()
    app.state.settings = _Settings(public_url)

    @app.get("/where")
    async def where(base: PublicBaseUrlDep) -> dict[str, str]:
        return {"base": base}

    @app.exception_handler(InvalidInput)
    async def invalid(_request: object, error: InvalidInput) -> object:
        from fastapi.responses import JSONResponse

        return JSONResponse({"message": str(error)}, status_code=400)

    return TestClient(app, base_url="http://registry:5001")


def test_the_dependency_follows_the_request_unless_public_url_is_set() -> None:
    client = _app(None)
    assert client.get("/where").json() == {"base": "http://registry:5001"}
    assert client.get("/where", headers={"Host": "127.0.0.1:5001"}).json() == {
        "base": "http://127.0.0.1:5001"
    }
    forwarded = client.get("/where", headers={"X-Forwarded-Host": "ml.example.com"})
    assert forwarded.json() == {"base": "http://ml.example.com"}
    refused = client.get("/where", headers={"X-Forwarded-Proto": "gopher"})
    assert refused.status_code == 400
    pinned = _app("https://public.example.com/ml/")
    assert pinned.get("/where", headers={"X-Forwarded-Host": "other"}).json() == {
        "base": "https://public.example.com/ml"
    }
