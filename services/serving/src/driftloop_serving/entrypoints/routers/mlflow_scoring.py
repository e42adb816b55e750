"""MLflow's scoring protocol: ``/invocations``, ``/ping``, ``/health``, ``/version``.

``/invocations`` scores with the one served model, or the one named by the
``model`` query parameter when several are served (also at
``/models/{name}/invocations``). Answers are ``{"predictions": [...]}``; errors
are MLflow's ``{"error_code": "BAD_REQUEST", "message": ...}``. The
``X-Model-Version`` and ``X-Route`` headers name what answered.

Instead of features, a body may carry entity keys only; their features are read
from the features service (see :mod:`driftloop_serving.domain.entities`)::

    {"dataframe_records": [{"flower_id": 1}, {"flower_id": 2}],
     "params": {"feature_service": "iris_classifier"}}

``params`` may be left out when the model has a feature service in the
``feature_services`` setting.

The ``/invocations`` routes are also served past FastAPI, by
:mod:`driftloop_serving.entrypoints.fast_routes`.
"""

from __future__ import annotations

import io

import pandas as pd  # type: ignore[import-untyped]
import pydantic_core
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from driftloop_kit.auth import READER
from driftloop_kit.errors import DriftloopError
from driftloop_serving.domain.entities import mlflow_entities, requested_source
from driftloop_serving.domain.protocols import BadRequest, mlflow_matrix
from driftloop_serving.entrypoints.deps import ScorerDep
from driftloop_serving.service_layer.scoring import UnknownModel

router = APIRouter(tags=["MLflow scoring protocol"])


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error_code": code, "message": message}, status_code=status)


@router.get("/ping", dependencies=[READER])
@router.get("/health", dependencies=[READER])
async def ping(scorer: ScorerDep) -> Response:
    """200 when every served model has a version loaded."""
    if all(scorer.versions(name) for name in scorer.names()):
        return Response("\n", media_type="application/json")
    return _error(503, "TEMPORARILY_UNAVAILABLE", "models are still loading")


@router.get("/version", dependencies=[READER])
async def version() -> Response:
    """The server's version."""
    return Response("driftloop-serving 0.1.0", media_type="text/plain")


async def invocations_request(request: Request, scorer: ScorerDep, name: str | None) -> Response:
    """Answer an ``/invocations`` request (the FastAPI routes and the fast routes call this)."""
    names = scorer.names()
    if name is None:
        if len(names) != 1:
            return _error(
                400,
                "BAD_REQUEST",
                f"several models are served ({', '.join(names)}): name one with ?model=",
            )
        name = names[0]
    try:
        columns = scorer.columns(name)
        raw = await request.body()
        if request.headers.get("content-type", "").startswith("text/csv"):
            try:
                frame = pd.read_csv(io.BytesIO(raw))
            except (ValueError, pd.errors.ParserError) as error:
                raise BadRequest(f"the CSV body cannot be read: {error}") from None
            body = {"dataframe_split": frame.to_dict(orient="split")}
            body["dataframe_split"].pop("index", None)
        else:
            try:
                body = pydantic_core.from_json(raw)
            except ValueError as error:
                raise BadRequest(f"the body is not valid JSON: {error}") from None
        requested = (
            requested_source(body.get("params"), "params") if isinstance(body, dict) else None
        )
        source = scorer.feature_source(name, requested)
        entities = (
            mlflow_entities(body, columns, named=requested is not None)
            if source is not None
            else None
        )
        if source is None or entities is None:
            answer = scorer.score(name, mlflow_matrix(body, columns))
        else:
            matrix, feature_names = await scorer.online_matrix(
                name, source=source, entities=entities, columns=columns
            )
            answer = scorer.score(name, matrix, entities=entities, feature_names=feature_names)
    except UnknownModel as error:
        return _error(404, "RESOURCE_DOES_NOT_EXIST", str(error))
    except BadRequest as error:
        return _error(400, "BAD_REQUEST", str(error))
    except DriftloopError as error:
        return _error(error.status_code, error.error_code, error.message)
    return Response(
        pydantic_core.to_json({"predictions": answer.predictions.tolist()}),
        media_type="application/json",
        headers={"X-Model-Version": str(answer.model.version), "X-Route": answer.route},
    )


@router.post("/invocations", dependencies=[READER])
async def invocations(request: Request, scorer: ScorerDep, model: str | None = None) -> Response:
    """Score ``dataframe_split``, ``dataframe_records``, ``instances`` or ``inputs``."""
    return await invocations_request(request, scorer, model)


@router.post("/models/{name}/invocations", dependencies=[READER])
async def model_invocations(name: str, request: Request, scorer: ScorerDep) -> Response:
    """The same, for a named model."""
    return await invocations_request(request, scorer, name)
