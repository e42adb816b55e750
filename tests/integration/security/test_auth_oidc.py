"""Tokens of an external OpenID Connect issuer, checked against its JWKS.

The issuer is a small app served on a real port with a discovery document and a JWKS
(an RSA key made here); the service finds the keys through the discovery document as
it would at a real provider.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI

from driftloop_bus.embedded import free_port
from driftloop_kit.testing import ServedApp, app_client
from driftloop_tracking.entrypoints.app import create_app
from driftloop_tracking.settings import TrackingSettings

pytestmark = pytest.mark.integration

AUDIENCE = "driftloop-suite"
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def issuer() -> Iterator[str]:
    app = FastAPI()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(KEY.public_key()))

    @app.get("/.well-known/openid-configuration")
    async def discovery() -> dict[str, Any]:
        return {"issuer": url, "jwks_uri": f"{url}/keys"}

    @app.get("/keys")
    async def keys() -> dict[str, Any]:
        return {"keys": [{**public, "kid": "k1", "use": "sig", "alg": "RS256"}]}

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {}

    server = ServedApp(app, host="127.0.0.1", port=port, name="issuer")
    server.start()
    try:
        yield url
    finally:
        server.stop()


def oidc_token(issuer: str, *, role: Any, audience: str = AUDIENCE, key: Any = KEY) -> str:
    now = int(time.time())
    claims = {"iss": issuer, "aud": audience, "sub": "alice@example.com", "iat": now}
    claims |= {"exp": now + 600, "driftloop_role": role}
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": "k1"})


async def test_tokens_of_the_oidc_issuer_are_checked_against_its_keys_and_carry_the_role(
    issuer: str, tmp_path: Path
) -> None:
    settings = TrackingSettings(
        home=tmp_path, auth_mode="oidc", oidc_issuer=issuer, oidc_audience=AUDIENCE
    )
    app = create_app(settings)
    create = "/api/2.0/mlflow/experiments/create"

    async def call(token: str) -> Any:
        headers = {"Authorization": f"Bearer {token}"}
        return await client.post(create, json={"name": f"e-{time.time_ns()}"}, headers=headers)

    async with app_client(app, role=None) as client:
        writer = await call(oidc_token(issuer, role="writer"))
        reader = await call(oidc_token(issuer, role=["reader", "unknown"]))
        wrong_audience = await call(oidc_token(issuer, role="admin", audience="another-app"))
        wrong_key = await call(oidc_token(issuer, role="admin", key=OTHER_KEY))
        no_role = await call(oidc_token(issuer, role="superuser"))
        other_issuer = await call(oidc_token("https://elsewhere.example", role="admin"))

    assert writer.status_code == 200, writer.text
    assert reader.status_code == 403
    assert "'alice@example.com' has role reader" in reader.json()["message"]
    for refused in (wrong_audience, wrong_key, no_role, other_issuer):
        assert refused.status_code == 401, refused.text
        assert refused.json()["error_code"] == "UNAUTHENTICATED"
