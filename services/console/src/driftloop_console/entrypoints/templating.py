"""The Jinja2 environment of the pages: autoescaped, with the console's filters."""

from __future__ import annotations

import hashlib
import json
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from markupsafe import Markup

from driftloop_console.domain.values import iso_utc
from driftloop_kit.auth import Role

__all__ = ["STATIC_DIR", "render", "templates"]

PACKAGE = Path(__file__).resolve().parent.parent
TEMPLATES_DIR = PACKAGE / "templates"
STATIC_DIR = PACKAGE / "static"


@cache
def _digest(name: str) -> str:
    return hashlib.sha256((STATIC_DIR / name).read_bytes()).hexdigest()[:12]


def static_url(name: str) -> str:
    """``/static/<name>?v=<digest>``: cached for long, busted when the file changes."""
    return f"/static/{name}?v={_digest(name)}"


def with_query(url: str, **params: Any) -> str:
    """``url`` with ``params`` set in its query (those already there and not named kept)."""
    path, _, query = url.partition("?")
    pairs = [
        (k, v)
        for part in query.split("&")
        if part
        for k, _, v in [part.partition("=")]
        if k not in params
    ]
    kept = "&".join(f"{k}={v}" for k, v in pairs)
    added = urlencode({k: v for k, v in params.items() if v not in (None, "")})
    joined = "&".join(p for p in (kept, added) if p)
    return f"{path}?{joined}" if joined else path


def short(value: Any, length: int = 12) -> str:
    """A long id cut to ``length`` characters."""
    text = str(value or "")
    return text if len(text) <= length else text[:length] + "…"


def number(value: Any, digits: int = 4) -> str:
    """A figure with at most ``digits`` significant digits; ``—`` for none."""
    if value is None or value == "":
        return "—"
    try:
        return f"{float(value):.{digits}g}"
    except (TypeError, ValueError):
        return str(value)


def json_script(value: Any) -> Markup:
    """``value`` as JSON safe inside ``<script type="application/json">``."""
    text = json.dumps(value, separators=(",", ":"), default=str)
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return Markup(text)  # escaped above: safe inside a script element


templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
templates.env.filters.update(
    iso=iso_utc, with_query=with_query, short=short, number=number, json_script=json_script
)
templates.env.globals.update(static=static_url)


def render(
    request: Request, name: str, context: dict[str, Any], *, status_code: int = 200
) -> HTMLResponse:
    """Render page ``name`` with ``context`` and what every page shows (the viewer)."""
    state = request.app.state
    viewer = request.scope.get("driftloop.principal")
    base = {
        "viewer": viewer,
        # Only a role that the upstreams let act sees the actions (all of them: off).
        "can_act": viewer is not None and viewer.role >= Role.DEPLOYER,
        "auth_on": state.authenticator.enabled,
        "actions_enabled": state.settings.actions_enabled,
    }
    return templates.TemplateResponse(request, name, {**base, **context}, status_code=status_code)
