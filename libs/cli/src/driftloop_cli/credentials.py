"""The command line's credentials: the suite's key, the admin token, tokens on demand.

``driftloop up`` (and so ``make demo``) runs with authentication on. The key every
service signs and checks tokens with is ``DRIFTLOOP_SECRET_KEY`` when set, else the
one generated once in ``<home>/secret_key``; an admin token is kept in
``<home>/admin.token`` (both readable by the owner only) and printed when it is made.
The CLI's own calls (``driftloop lineage``, the demo) send ``DRIFTLOOP_TOKEN``, else
``MLFLOW_TRACKING_TOKEN``, else that admin token.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any

from driftloop_kit.auth import Role, TokenSigner, Unauthenticated
from driftloop_kit.settings import SECRET_KEY_FILE, home_secret_key

__all__ = [
    "ADMIN_TOKEN_FILE",
    "ensure_admin_token",
    "issue_token",
    "parse_ttl",
    "secret_key",
    "user_token",
]

#: The file under the home folder holding the admin token ``driftloop up`` made.
ADMIN_TOKEN_FILE = "admin.token"
#: Lifetime of the admin token ``driftloop up`` makes.
ADMIN_TTL_SECONDS = 90 * 86_400

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400}


def parse_ttl(text: str) -> int:
    """``90s``, ``15m``, ``12h``, ``30d`` or plain seconds, as seconds (at most 366 days).

    Raises:
        ValueError: Anything else.
    """
    match = re.fullmatch(r"\s*(\d+)\s*([smhd]?)\s*", text)
    if not match:
        raise ValueError(f"a lifetime is a number with s, m, h or d (30d, 12h), not {text!r}")
    seconds = int(match.group(1)) * _UNITS[match.group(2) or "s"]
    if not 1 <= seconds <= 366 * 86_400:
        raise ValueError(f"a lifetime is between 1 s and 366 days, not {text!r}")
    return seconds


def secret_key(home: Path, *, create: bool = False) -> str:
    """``DRIFTLOOP_SECRET_KEY``, else the key in ``home/secret_key`` (made if ``create``).

    Raises:
        FileNotFoundError: No key is set and none was generated under ``home``.
    """
    given = os.environ.get("DRIFTLOOP_SECRET_KEY", "").strip()
    if given:
        return given
    if not create and not (home / SECRET_KEY_FILE).exists():
        raise FileNotFoundError(
            f"no key: DRIFTLOOP_SECRET_KEY is not set and {home / SECRET_KEY_FILE} does not "
            "exist (driftloop up makes it; or pass --home)"
        )
    return home_secret_key(home)


def issue_token(
    home: Path, *, role: Role, subject: str, ttl_seconds: int, job: str | None = None
) -> str:
    """A token signed with the suite's key (see :func:`secret_key`)."""
    signer = TokenSigner(secret_key(home))
    return signer.issue(subject=subject, role=role, ttl_seconds=ttl_seconds, job=job)


def ensure_admin_token(home: Path, key: str) -> tuple[str, bool]:
    """The admin token in ``home/admin.token``; a new one when it is missing, no longer
    checks with ``key`` or expires within a day.

    Returns:
        The token, and whether it was made now.
    """
    path = home / ADMIN_TOKEN_FILE
    signer = TokenSigner(key)
    if path.exists():
        token = path.read_text().strip()
        try:
            claims = signer.decode(token)
        except Exception:
            claims = None
        fresh = claims is not None and float(claims["exp"]) - time.time() > 86_400
        if fresh and claims is not None and claims.get("role") == Role.ADMIN.label:
            return token, False
    token = signer.issue(subject="admin", role=Role.ADMIN, ttl_seconds=ADMIN_TTL_SECONDS)
    home.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(token + "\n")
    return token, True


def user_token(home: Path) -> str | None:
    """The token the CLI's own calls send: ``DRIFTLOOP_TOKEN``, ``MLFLOW_TRACKING_TOKEN``,
    else ``home/admin.token``; None when there is none."""
    for variable in ("DRIFTLOOP_TOKEN", "MLFLOW_TRACKING_TOKEN"):
        value = os.environ.get(variable, "").strip()
        if value:
            return value
    path = home / ADMIN_TOKEN_FILE
    if path.exists():
        return path.read_text().strip() or None
    return None


def auth_header(home: Path) -> dict[str, str]:
    """``{"Authorization": "Bearer ..."}`` of :func:`user_token`, or ``{}``."""
    token = user_token(home)
    return {"Authorization": f"Bearer {token}"} if token else {}


def service_url(home: Path, service: str) -> str | None:
    """Where ``service`` of the suite ``driftloop up`` runs with ``home`` listens (its
    up.json), None without a running suite."""
    import json

    try:
        state = json.loads((home / "up.json").read_text())
        url = state["services"][service]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return str(url).rstrip("/") if isinstance(url, str) else None


def tracking_url(home: Path) -> str | None:
    """The tracking service of the suite ``driftloop up`` runs with ``home`` (its up.json)."""
    return service_url(home, "tracking")


class ApiError(Exception):
    """The tracking service refused or could not be reached."""


def call_api(
    home: Path, method: str, path: str, *, url: str | None = None, **kwargs: Any
) -> dict[str, Any]:
    """Call the tracking service's credential routes with the CLI's token.

    Raises:
        ApiError: No suite to call, or it answered an error (its message).
    """
    import httpx

    from driftloop_kit.auth import CREDENTIALS_API

    base = url or tracking_url(home)
    if base is None:
        raise ApiError(f"no running suite in {home} (up.json); pass --tracking-url")
    try:
        response = httpx.request(
            method,
            f"{base.rstrip('/')}{CREDENTIALS_API}{path}",
            headers=auth_header(home),
            timeout=30,
            trust_env=False,
            **kwargs,
        )
    except httpx.HTTPError as error:
        raise ApiError(f"cannot reach the tracking service at {base}: {error}") from error
    body = response.json() if response.content else {}
    if response.status_code >= 400:
        raise ApiError(str(body.get("message") or f"answered {response.status_code}"))
    return dict(body)


def describe(token: str, home: Path) -> dict[str, object]:
    """The claims of a token signed with the suite's key.

    Raises:
        Unauthenticated: It does not check.
    """
    try:
        return dict(TokenSigner(secret_key(home)).decode(token))
    except Exception as error:
        raise Unauthenticated(f"the token does not check with this suite's key: {error}") from None
