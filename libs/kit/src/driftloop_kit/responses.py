"""JSON responses as MLflow writes them: unset fields left out, non-finite floats quoted.

Used by every MLflow-compatible endpoint (tracking, registry).

Proto3 JSON (which the mlflow client parses with) spells NaN and infinities as the
strings ``"NaN"``, ``"Infinity"`` and ``"-Infinity"``.
"""

from __future__ import annotations

import json
import math
from typing import Any

from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse


def _proto3(value: Any) -> Any:
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {k: _proto3(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_proto3(v) for v in value]
    return value


class MlflowJSONResponse(JSONResponse):
    """The JSON body of every MLflow-compatible endpoint."""

    def render(self, content: Any) -> bytes:
        return json.dumps(
            _proto3(jsonable_encoder(content, exclude_none=True, by_alias=True)),
            separators=(",", ":"),
            ensure_ascii=False,
        ).encode("utf-8")
