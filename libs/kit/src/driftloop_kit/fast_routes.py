"""A service's hottest endpoints as plain Starlette routes, matched before FastAPI's.

FastAPI matches a request against its routes twice and solves each endpoint's
dependencies; for an endpoint that answers in a fraction of a millisecond that is
a measurable share of its CPU (bench/README.md has the figures). A fast route calls
the same endpoint function with the body parsed here; the FastAPI route stays, for
the OpenAPI schema and the docs.
Errors go through the app's handlers as from any route (see
:func:`~driftloop_kit.errors.install_error_handlers`): a body that is not the
model is a ``RequestValidationError``, a 400 naming the field.

Example::

    FAST_ROUTES = (
        body_route("/api/2.0/mlflow/runs/log-metric", log_metric, LogMetric, get_store),
    )
    create_service_app(..., fast_routes=FAST_ROUTES)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from starlette.routing import Match, Route
from starlette.types import Scope

from driftloop_kit.auth import Role, authorize, principal_of

__all__ = ["FastRoute", "body_route", "json_body"]

Body = TypeVar("Body", bound=BaseModel)
Dependency = TypeVar("Dependency")


class FastRoute(Route):
    """A Starlette route that names itself in the scope, as FastAPI's routes do.

    FastAPI's router sets ``scope["route"]`` for its own routes only; the request
    metrics label a request by it (else ``<unmatched>``).

    Args:
        path: As Starlette's.
        endpoint: ``async (request) -> response``; called once the caller is known to
            hold ``role``.
        role: The role the route needs (:mod:`driftloop_kit.auth`), as its FastAPI twin.
        methods: As Starlette's.
    """

    def __init__(
        self,
        path: str,
        endpoint: Callable[[Request], Awaitable[Response]],
        *,
        role: Role,
        methods: list[str] | None = None,
    ) -> None:
        self.role = role

        async def authorized(request: Request) -> Response:
            authorize(await principal_of(request), role)
            return await endpoint(request)

        super().__init__(path, authorized, methods=methods)

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child_scope = super().matches(scope)
        if match is not Match.NONE:
            child_scope["route"] = self
        return match, child_scope


async def json_body(request: Request, model: type[Body]) -> Body:
    """The request's JSON body as ``model``.

    A body sent with another media type is refused, as FastAPI's JSON routes do: a
    browser form (``text/plain``, ``application/x-www-form-urlencoded``) posted from
    another site cannot act for a user (CSRF). No ``Content-Type`` is accepted, as
    FastAPI accepts it.

    Raises:
        RequestValidationError: The body is not JSON or not a ``model``; the
            errors are located in ``body``, as FastAPI locates them.
    """
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media and media != "application/json" and not media.endswith("+json"):
        raise RequestValidationError(
            [
                {
                    "type": "model_attributes_type",
                    "loc": ("body",),
                    "msg": f"a JSON body is expected, not {media}",
                    "input": None,
                }
            ]
        )
    try:
        return model.model_validate_json(await request.body())
    except ValidationError as error:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in error.errors(include_url=False)]
        ) from None


def body_route(
    path: str,
    endpoint: Callable[[Body, Dependency], Awaitable[Response]],
    model: type[Body],
    dependency: Callable[[Request], Awaitable[Dependency]],
    *,
    role: Role,
) -> FastRoute:
    """``POST path``: ``endpoint(body, dependency(request))`` with the body parsed as ``model``."""

    async def handle(request: Request) -> Response:
        return await endpoint(await json_body(request, model), await dependency(request))

    return FastRoute(path, handle, role=role, methods=["POST"])
