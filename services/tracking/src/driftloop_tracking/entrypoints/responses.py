"""Response bodies rendered once, in MLflow's JSON form, for the hot endpoints.

FastAPI would validate a returned ``dict`` against the route's return type, run its
generic encoder over it, and :class:`~driftloop_kit.responses.MlflowJSONResponse`
would encode it again. pydantic-core writes plain data and models in one pass:
unset fields left out, NaN and infinities spelled as proto3 JSON does (``"NaN"``,
``"Infinity"``), which is what the mlflow client parses.
``tests/unit/tracking/test_tracking_shortcuts.py`` pins the pydantic-core version
this was checked against.
"""

from __future__ import annotations

from typing import Any

import pydantic_core
from fastapi import Response

__all__ = ["EMPTY", "json_response"]

#: The body of MLflow's endpoints that answer nothing: ``{}``.
EMPTY = b"{}"


def json_response(body: Any = None) -> Response:
    """``body`` (plain data and/or API models) as a JSON response; ``{}`` without one."""
    if body is None:
        return Response(content=EMPTY, media_type="application/json")
    content = pydantic_core.to_json(body, by_alias=True, exclude_none=True, inf_nan_mode="strings")
    return Response(content=content, media_type="application/json")
