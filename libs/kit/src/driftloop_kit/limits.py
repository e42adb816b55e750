"""Bounds on what a caller sends: the request body's size, checked while it is read.

:class:`BodyLimitMiddleware` wraps the whole app, so FastAPI's routes and the services'
fast routes are bounded alike. The body is counted as the app reads it (a lying or
missing ``Content-Length`` changes nothing; a declared length over the limit fails the
first read, before any byte is taken), and the read that passes the limit raises
:class:`PayloadTooLarge`: an ``HTTPException`` (FastAPI passes those through its body
parsing), answered 413 in the service's own error format by the app's handlers, with
nothing stored. Paths that stream large files to disk (artifact uploads) are exempt by
prefix.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["BodyLimitMiddleware", "PayloadTooLarge"]


class PayloadTooLarge(HTTPException):
    """The request body is larger than the service accepts (413)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than {limit} bytes")


class BodyLimitMiddleware:
    """Refuses request bodies over ``max_bytes`` (except below ``exempt`` prefixes).

    Args:
        app: The ASGI app.
        max_bytes: The largest body accepted.
        exempt: Path prefixes whose bodies are not bounded here (streamed to disk).
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int, exempt: Sequence[str] = ()) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.exempt = tuple(exempt)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or str(scope.get("path", "")).startswith(self.exempt):
            await self.app(scope, receive, send)
            return
        declared = 0
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = self.max_bytes + 1  # unreadable: refused as too large
        await self.app(scope, self._bounded(receive, declared), send)

    def _bounded(self, receive: Receive, declared: int) -> Receive:
        seen = declared if declared > self.max_bytes else 0
        limit = self.max_bytes

        async def bounded() -> Message:
            nonlocal seen
            if seen > limit:
                raise PayloadTooLarge(limit)
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise PayloadTooLarge(limit)
            return message

        return bounded
