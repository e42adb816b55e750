"""One error hierarchy for every service, and the handlers that turn it into JSON.

Domain and handler code raises :class:`NotFound`, :class:`InvalidInput` ...;
:func:`install_error_handlers` turns them (and bad requests, and bugs) into a JSON
body. The default body is MLflow's ``{"error_code": ..., "message": ...}``; an app
can pass its own ``formatter`` (the V2 inference protocol wants ``{"error": ...}``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "AlreadyExists",
    "Conflict",
    "DriftloopError",
    "ErrorFormatter",
    "InvalidInput",
    "NotFound",
    "Unavailable",
    "install_error_handlers",
    "mlflow_error_body",
    "validation_message",
]

logger = logging.getLogger(__name__)


class DriftloopError(Exception):
    """Base of all errors a service reports to its clients.

    Subclasses set :attr:`status_code` and :attr:`error_code`; a single instance
    may override them (used to wrap framework errors).

    Args:
        message: Human-readable explanation, returned to the client.
        status_code: HTTP status overriding the class's.
        error_code: Error code overriding the class's.
    """

    status_code: int = 500
    error_code: str = "INTERNAL_ERROR"

    def __init__(
        self, message: str, *, status_code: int | None = None, error_code: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        if status_code is not None:
            self.status_code = status_code
        if error_code is not None:
            self.error_code = error_code

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


class InvalidInput(DriftloopError):
    """The request is malformed or a value is out of range (400)."""

    status_code = 400
    error_code = "INVALID_PARAMETER_VALUE"


class NotFound(DriftloopError):
    """The resource does not exist (404)."""

    status_code = 404
    error_code = "RESOURCE_DOES_NOT_EXIST"


class AlreadyExists(DriftloopError):
    """A resource with that identity exists already (409)."""

    status_code = 409
    error_code = "RESOURCE_ALREADY_EXISTS"


class Conflict(DriftloopError):
    """The resource is in a state that forbids the operation (409)."""

    status_code = 409
    error_code = "INVALID_STATE"


class Unavailable(DriftloopError):
    """A dependency is down or the service is not ready; retry later (503)."""

    status_code = 503
    error_code = "TEMPORARILY_UNAVAILABLE"


#: Builds the response body for an error.
ErrorFormatter = Callable[[DriftloopError], Mapping[str, Any]]


def mlflow_error_body(error: DriftloopError) -> Mapping[str, Any]:
    """MLflow's error body: ``{"error_code": ..., "message": ...}``."""
    return {"error_code": error.error_code, "message": error.message}


_LOCATIONS = {
    "body": "body",
    "query": "query parameter",
    "path": "path parameter",
    "header": "header",
    "cookie": "cookie",
}


def validation_message(errors: Sequence[Any]) -> str:
    """Render pydantic/FastAPI validation errors as one readable sentence per error.

    Example: ``query parameter 'max_results': Input should be a valid integer``.
    """
    parts = []
    for error in errors:
        loc = [str(p) for p in error.get("loc", ())]
        where = _LOCATIONS.get(loc[0], loc[0]) if loc else "request"
        field = ".".join(loc[1:])
        target = f"{where} '{field}'" if field else where
        parts.append(f"{target}: {error.get('msg', 'invalid value')}")
    return "; ".join(parts) or "invalid request"


# Error codes for errors raised by the framework itself (unknown route, wrong method ...).
_HTTP_CODES = {
    400: "INVALID_PARAMETER_VALUE",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "ENDPOINT_NOT_FOUND",
    405: "ENDPOINT_NOT_FOUND",
    409: "INVALID_STATE",
    413: "INVALID_PARAMETER_VALUE",
    415: "INVALID_PARAMETER_VALUE",
    422: "INVALID_PARAMETER_VALUE",
    429: "REQUEST_LIMIT_EXCEEDED",
    503: "TEMPORARILY_UNAVAILABLE",
}


def install_error_handlers(
    app: FastAPI,
    *,
    formatter: ErrorFormatter = mlflow_error_body,
    formats: Mapping[str, ErrorFormatter] | None = None,
) -> None:
    """Make every error of ``app`` a JSON response built by ``formatter``.

    - :class:`DriftloopError` → its status and code.
    - Request validation errors → 400 ``INVALID_PARAMETER_VALUE`` naming the field.
    - ``HTTPException`` (unknown route, wrong method) → its status.
    - Anything else → 500 ``INTERNAL_ERROR``, logged with its traceback.

    Args:
        app: The application.
        formatter: Builds the body from the error; :func:`mlflow_error_body` by default.
        formats: Another formatter for the paths under a prefix (``{"/v2/": v2_body}``):
            one app may speak two protocols.
    """
    by_prefix = sorted((formats or {}).items(), key=lambda item: -len(item[0]))

    def respond(
        error: DriftloopError, request: Request, headers: Mapping[str, str] | None = None
    ) -> JSONResponse:
        path = request.url.path
        chosen = next((f for prefix, f in by_prefix if path.startswith(prefix)), formatter)
        return JSONResponse(dict(chosen(error)), status_code=error.status_code, headers=headers)

    async def on_driftloop_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, DriftloopError)
        if exc.status_code >= 500:
            logger.error(
                "%s %s failed: %s",
                request.method,
                request.url.path,
                exc.message,
                exc_info=exc,
            )
        return respond(exc, request)

    async def on_validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return respond(InvalidInput(validation_message(exc.errors())), request)

    async def on_http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        code = _HTTP_CODES.get(exc.status_code, "INTERNAL_ERROR")
        error = DriftloopError(str(exc.detail), status_code=exc.status_code, error_code=code)
        return respond(error, request, headers=exc.headers)

    app.add_exception_handler(DriftloopError, on_driftloop_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    # Not an ``Exception`` handler: Starlette re-raises after running that one, so
    # servers would log every bug twice and test clients would raise.
    app.add_middleware(UnhandledErrorMiddleware, formatter=formatter)


class UnhandledErrorMiddleware:
    """Turns an exception no handler caught into a 500 JSON response, and logs it."""

    def __init__(self, app: ASGIApp, *, formatter: ErrorFormatter = mlflow_error_body) -> None:
        self.app = app
        self.formatter = formatter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_tracking(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, send_tracking)
        except Exception as exc:
            logger.exception(
                "unhandled error in %s %s", scope.get("method"), scope.get("path"), exc_info=exc
            )
            if started:
                # Too late for an error body; let the server drop the connection.
                raise
            error = DriftloopError("internal server error")
            response = JSONResponse(dict(self.formatter(error)), status_code=error.status_code)
            await response(scope, receive, send)
