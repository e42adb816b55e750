"""The viewer's credential: a token pasted once on the login page, kept in a cookie.

The cookie is ``HttpOnly`` (no script reads it) and ``SameSite=Strict`` (no other site's
page sends it); :class:`CookieCredential` turns it into the ``Authorization`` header
every route's role check reads and every upstream call forwards. The console has no
credential of its own: what a viewer sees and does is what their token allows.
"""

from __future__ import annotations

import time
from http.cookies import SimpleCookie
from urllib.parse import parse_qs, urlsplit

from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import MutableHeaders
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from driftloop_kit.auth import Role, Unauthenticated, authorize

__all__ = ["COOKIE", "CookieCredential", "LoginRoute", "safe_next"]

#: Name of the cookie holding the viewer's token.
COOKIE = "driftloop_console_token"
#: Longest a login lasts (the token's own expiry may end it sooner).
MAX_LOGIN_SECONDS = 7 * 86_400
#: Largest login form accepted.
_MAX_FORM_BYTES = 16 * 1024
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class CookieCredential:
    """ASGI middleware: the login cookie as the ``Authorization`` header (a header sent
    by the client wins), and a cross-site form post refused.

    Args:
        app: The app.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = MutableHeaders(scope=scope)
        if scope["method"] not in _SAFE_METHODS and not _same_origin(headers):
            response = PlainTextResponse("cross-site request refused", status_code=403)
            await response(scope, receive, send)
            return
        if "authorization" not in headers and "cookie" in headers:
            jar: SimpleCookie = SimpleCookie()
            try:
                jar.load(headers["cookie"])
            except Exception:  # a malformed Cookie header is as none
                jar = SimpleCookie()
            token = jar.get(COOKIE)
            if token is not None and token.value:
                headers["authorization"] = f"Bearer {token.value}"
        await self.app(scope, receive, send)


def _same_origin(headers: MutableHeaders) -> bool:
    # Browsers send Origin on every cross-site POST; a missing one is a non-browser client.
    origin = headers.get("origin")
    if not origin or origin == "null":
        return origin is None
    return urlsplit(origin).netloc == headers.get("host", "")


def safe_next(target: str | None) -> str:
    """A local path to go to after logging in; anything else is ``/``."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


class LoginRoute(Route):
    """``POST /login``: the form's token checked, then kept in the cookie.

    Like every route it needs a role, ``reader``; its credential comes in the form
    instead of the header (there is no cookie yet).
    """

    role = Role.READER

    def __init__(self, path: str = "/login") -> None:
        super().__init__(path, self.login, methods=["POST"], include_in_schema=False)

    @staticmethod
    async def login(request: Request) -> Response:
        body = await _bounded_body(request)
        form = parse_qs(body.decode(errors="replace"))
        token = (form.get("token") or [""])[0].strip()
        target = safe_next((form.get("next") or ["/"])[0])
        authenticator = request.app.state.authenticator
        if not token:
            raise Unauthenticated("paste a token (driftloop token create --role reader)")
        principal = await authenticator.authenticate(f"Bearer {token}")
        authorize(principal, Role.READER)
        response = RedirectResponse(target, status_code=303)
        seconds = int(min(principal.expires_at - time.time(), MAX_LOGIN_SECONDS))
        response.set_cookie(
            COOKIE,
            token,
            max_age=max(seconds, 1),
            httponly=True,
            samesite="strict",
            secure=request.app.state.settings.cookie_secure,
            path="/",
        )
        return response


async def _bounded_body(request: Request) -> bytes:
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > _MAX_FORM_BYTES:
            raise Unauthenticated("the login form is too large")
        chunks.append(chunk)
    return b"".join(chunks)
