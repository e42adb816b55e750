"""MLflow's scoring protocol: ``/invocations``, ``/ping``, ``/health``, ``/version``.

``/invocations`` scores with the one served model, or the one named by the
``model`` query parameter when several are served (also at
``/models/{name}/invocations``). Answers are ``{"predictions": [...]}``, typed as
the model answered (string labels stay strings); errors are MLflow's
``{"error_code": "BAD_REQUEST", "message": ...}``, ``INVALID_PARAMETER_VALUE`` for
a column or value that does not fit the model's signature (the message names the
column and the row). The ``X-Model-Version`` and ``X-Route`` headers name what
answered.

A body's values are typed by the model's signature; a CSV body's cells are read as
text and parsed by it (an empty cell is a null). MLflow's scoring server has no
request-level way to ask for probabilities; driftloop takes
``"params": {"predict_method": "predict_proba"}`` (the names of MLflow's
``pyfunc_predict_fn``) and answers ``{"predictions": [[p0, p1, ...], ...]}``, one
probability per class in the order of the model's ``classes_``.

Instead of features, a body may carry entity keys only; their features are read
from the features service (see :mod:`driftloop_serving.domain.entities`)::

    {"dataframe_records": [{"flower_id": 1}, {"flower_id": 2}],
     "params": {"feature_service": "iris_classifier"}}

``params`` may be left out when the model has a feature service in the
``feature_services`` setting. The answer then also holds, per row, each feature's
event time in the store (RFC 3339 UTC, ``null`` where it held no fresh value)::

    {"predictions": ["setosa", "virginica"],
     "feature_event_times": [{"sepal_length": "2025-03-01T12:00:00Z", ...}, ...]}

a key beside ``predictions``, as MLflow's own servers add one (its stdin server's
``id``); MLflow's clients read ``predictions`` and ignore the rest
(``mlflow.deployments.PredictionsResponse``).

The ``/invocations`` routes are also served past FastAPI, by
:mod:`driftloop_serving.entrypoints.fast_routes`.
"""

from __future__ import annotations

import io
from typing import Any

import pandas as pd  # type: ignore[import-untyped]
import pydantic_core
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from driftloop_kit.auth import READER
from driftloop_kit.errors import DriftloopError
from driftloop_serving.domain.entities import TYPED_ENTITIES, mlflow_entities, requested_source
from driftloop_serving.domain.protocols import (
    BadRequest,
    InputMismatch,
    mlflow_batch,
    mlflow_matrix,
    mlflow_predict_method,
)
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
    times: list[dict[str, str | None]] | None = None
    if name is None:
        if len(names) != 1:
            return _error(
                400,
                "BAD_REQUEST",
                f"several models are served ({', '.join(names)}): name one with ?model=",
            )
        name = names[0]
    try:
        predictor = scorer.resolve(name, None).predictor
        columns = [column.name for column in predictor.columns]
        body, csv = await _body(request, typed=predictor.typed)
        params = body.get("params") if isinstance(body, dict) else None
        proba = params is not None and mlflow_predict_method(params) == "predict_proba"
        requested = requested_source(params, "params")
        source = scorer.feature_source(name, requested)
        entities = (
            mlflow_entities(body, columns, named=requested is not None)
            if source is not None
            else None
        )
        if source is None or entities is None:
            inputs = (
                mlflow_batch(body, predictor.columns, text=csv)
                if predictor.typed
                else mlflow_matrix(body, columns)
            )
            answer = await scorer.infer(name, inputs, probabilities=proba)
        elif predictor.typed:
            raise BadRequest(TYPED_ENTITIES)
        else:
            online = await scorer.online_matrix(
                name, source=source, entities=entities, columns=columns
            )
            answer = await scorer.infer(
                name,
                online.matrix,
                entities=entities,
                feature_names=online.names,
                feature_times=online.times,
                probabilities=proba,
            )
            times = online.times_by_name()
    except UnknownModel as error:
        return _error(404, "RESOURCE_DOES_NOT_EXIST", str(error))
    except InputMismatch as error:
        return _error(400, "INVALID_PARAMETER_VALUE", str(error))
    except BadRequest as error:
        return _error(400, "BAD_REQUEST", str(error))
    except DriftloopError as error:
        return _error(error.status_code, error.error_code, error.message)
    predictions = answer.probabilities if proba else answer.predictions
    assert predictions is not None  # the scorer answers the probabilities it was asked for
    content: dict[str, Any] = {"predictions": _plain(predictions)}
    if times is not None:
        content["feature_event_times"] = times
    return Response(
        pydantic_core.to_json(content),
        media_type="application/json",
        headers={"X-Model-Version": str(answer.model.version), "X-Route": answer.route},
    )


async def _body(request: Request, *, typed: bool) -> tuple[Any, bool]:
    """The request's body (a CSV body as ``dataframe_split``), and whether it was CSV."""
    raw = await request.body()
    if request.headers.get("content-type", "").startswith("text/csv"):
        return {"dataframe_split": _csv(raw, text=typed)}, True
    try:
        return pydantic_core.from_json(raw), False
    except ValueError as error:
        raise BadRequest(f"the body is not valid JSON: {error}") from None


def _csv(raw: bytes, *, text: bool) -> dict[str, Any]:
    """A CSV body as ``dataframe_split``: for a typed model every cell as text (parsed
    by the signature; only an empty cell is a null), else as pandas reads it."""
    try:
        frame = (
            pd.read_csv(io.BytesIO(raw), dtype=str, keep_default_na=False, na_values=[""])
            if text
            else pd.read_csv(io.BytesIO(raw))
        )
    except (ValueError, pd.errors.ParserError) as error:
        raise BadRequest(f"the CSV body cannot be read: {error}") from None
    if text:
        frame = frame.astype(object).where(frame.notna(), None)
    split: dict[str, Any] = frame.to_dict(orient="split")
    split.pop("index", None)
    return split


def _plain(predictions: Any) -> Any:
    """The answer as JSON values: strings stay strings, pandas' objects become values."""
    if predictions.dtype.kind == "M":
        return [str(v) for v in predictions.tolist()]
    values = predictions.tolist()
    if predictions.dtype.kind == "O":
        return [v.decode() if isinstance(v, bytes) else v for v in values]
    return values


@router.post("/invocations", dependencies=[READER])
async def invocations(request: Request, scorer: ScorerDep, model: str | None = None) -> Response:
    """Score ``dataframe_split``, ``dataframe_records``, ``instances`` or ``inputs``."""
    return await invocations_request(request, scorer, model)


@router.post("/models/{name}/invocations", dependencies=[READER])
async def model_invocations(name: str, request: Request, scorer: ScorerDep) -> Response:
    """The same, for a named model."""
    return await invocations_request(request, scorer, name)
