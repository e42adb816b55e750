"""KServe's V2 Open Inference Protocol (REST): health, model metadata, readiness, infer.

Errors are V2's ``{"error": "..."}`` with a 4xx status (503/502 when the features
service is down or failing). The response's ``model_version`` and
``parameters.route`` name the version and route that answered.

``infer`` takes the model's features, or entity keys whose features are read from
the features service (see :mod:`driftloop_serving.domain.entities`)::

    {"parameters": {"feature_service": "iris_classifier"},
     "inputs": [{"name": "flower_id", "shape": [2], "datatype": "INT64", "data": [1, 2]}]}

``parameters`` may be left out when the model has a feature service in the
``feature_services`` setting; the response's ``parameters.feature_service`` then
names the one used. The response's ``parameters.feature_event_times`` holds, per row,
each feature's event time in the store (RFC 3339 UTC, ``null`` where it held no
fresh value), e.g. ``[{"sepal_length": "2025-03-01T12:00:00Z", ...}, ...]``: the
extension point V2 gives a response, which clients that do not know the key ignore
(over gRPC it is the same JSON in a ``string_param``, as a parameter holds scalars).

Inputs are typed by the model's signature (INT32/INT64/FP32/FP64/BOOL, ``BYTES`` for
strings, datetimes and, with ``parameters.content_type`` ``"base64"``, binary); a value
that does not fit its column is a 400 naming the column and the row. A request may ask
for the ``predict_proba`` output (``"outputs": [{"name": "predict_proba"}]``, as
MLServer names it) when the model offers it; ``/v2/models/{name}`` says so, and which
loader serves the model (``parameters.loader``).

``infer`` takes and answers tensors in binary after the JSON as well (V2's binary tensor
data extension, what ``tritonclient.http`` sends by default: the
``Inference-Header-Content-Length`` header, ``binary_data_size`` on an input,
``binary_data`` on a requested output or ``parameters.binary_data_output`` for all of
them; see :mod:`driftloop_serving.domain.binary_tensors`).

The ``infer`` routes are also served past FastAPI, by
:mod:`driftloop_serving.entrypoints.fast_routes`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pydantic_core
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from driftloop_kit.auth import READER
from driftloop_kit.errors import DriftloopError
from driftloop_serving.domain import binary_tensors
from driftloop_serving.domain.entities import TYPED_ENTITIES, requested_source, v2_entities
from driftloop_serving.domain.models import Column, Predictor
from driftloop_serving.domain.protocols import (
    BadRequest,
    v2_batch,
    v2_matrix,
    v2_outputs,
    v2_response,
)
from driftloop_serving.entrypoints.deps import ScorerDep
from driftloop_serving.service_layer.scoring import Answer, Scorer, UnknownModel

router = APIRouter(prefix="/v2", tags=["V2 inference protocol"])


def v2_error_body(error: DriftloopError) -> dict[str, Any]:
    """The V2 protocol's error body, ``{"error": "..."}``, for the app's error handlers."""
    return {"error": error.message}


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _version(value: str | None) -> int | None:
    if value is None:
        return None
    if not value.isdigit():
        raise BadRequest(f"version must be a positive integer, got {value!r}")
    return int(value)


@router.get("", dependencies=[READER])
async def server_metadata() -> dict[str, Any]:
    """Server name, version and protocol extensions."""
    return {
        "name": "driftloop-serving",
        "version": "0.1.0",
        "extensions": [binary_tensors.EXTENSION],
    }


@router.get("/health/live", dependencies=[READER])
async def live() -> dict[str, Any]:
    """The server process is up."""
    return {"live": True}


@router.get("/health/ready", dependencies=[READER])
async def ready(scorer: ScorerDep) -> Response:
    """Ready when every served model has its champion loaded."""
    missing = [n for n in scorer.names() if not scorer.versions(n)]
    if missing:
        return _error(503, f"not loaded yet: {', '.join(missing)}")
    return JSONResponse({"ready": True})


#: V2 datatypes of MLflow's column types (and of numpy's tensor dtypes, by kind).
_V2_TYPES = {
    "integer": "INT32",
    "long": "INT64",
    "float": "FP32",
    "double": "FP64",
    "boolean": "BOOL",
    "string": "BYTES",
    "binary": "BYTES",
    "datetime": "BYTES",
    "int32": "INT32",
    "int64": "INT64",
    "float32": "FP32",
    "float64": "FP64",
    "bool": "BOOL",
}


def _input(column: Column) -> dict[str, Any]:
    described: dict[str, Any] = {
        "name": column.name or "input-0",
        "datatype": _V2_TYPES.get(column.type, "BYTES"),
        "shape": list(column.shape) if column.shape is not None else [-1, 1],
    }
    if column.type in ("string", "datetime"):
        described["parameters"] = {"content_type": "str"}
    elif column.type == "binary":
        described["parameters"] = {"content_type": "base64"}
    if not column.required:
        described.setdefault("parameters", {})["optional"] = True
    return described


def _outputs(predictor: Predictor) -> list[dict[str, Any]]:
    kind = predictor.output_type
    if not kind and predictor.classes:
        kind = "string" if all(isinstance(c, str) for c in predictor.classes) else ""
    predict: dict[str, Any] = {
        "name": "predict",
        "datatype": _V2_TYPES.get(kind, "BYTES" if kind in ("str", "object") else "FP64"),
        "shape": [-1],
    }
    if predict["datatype"] == "BYTES":
        predict["parameters"] = {"content_type": "str"}
    outputs = [predict]
    if predictor.predict_proba is not None:
        proba: dict[str, Any] = {"name": "predict_proba", "datatype": "FP64", "shape": [-1, -1]}
        if predictor.classes:
            proba["parameters"] = {"classes": list(predictor.classes)}
        outputs.append(proba)
    return outputs


def model_metadata_of(scorer: Scorer, name: str, version: str | None) -> dict[str, Any]:
    """V2's model metadata of ``name`` (or one loaded version), as REST and gRPC answer it.

    Raises:
        UnknownModel: The model is not served, or the version not loaded.
        BadRequest: The version is not a positive integer.
    """
    model = scorer.resolve(name, _version(version))
    predictor = model.predictor
    served = scorer.catalog.get(name)
    # Which loader serves the version (a fast path, or mlflow.pyfunc), and whether its
    # requests are typed by its signature.
    parameters: dict[str, Any] = {
        "loader": predictor.loader or predictor.flavor,
        "flavor": predictor.flavor,
        "typed_inputs": predictor.typed,
    }
    if served is not None:
        # How requests are split, and which revision of the model's document said so.
        parameters |= {
            "canary_percent": served.traffic.canary_percent,
            "shadow": served.traffic.shadow,
            "challenger_alias": served.traffic.challenger_alias,
            "document_revision": served.revision,
        }
    return {
        "name": name,
        "versions": [str(v) for v in scorer.versions(name)],
        "platform": predictor.flavor,
        "inputs": [_input(c) for c in predictor.columns]
        or [{"name": "input-0", "datatype": "FP64", "shape": [-1, -1]}],
        "outputs": _outputs(predictor),
        "parameters": parameters,
    }


def _metadata(scorer: ScorerDep, name: str, version: str | None) -> Response:
    try:
        return JSONResponse(model_metadata_of(scorer, name, version))
    except UnknownModel as error:
        return _error(404, str(error))
    except BadRequest as error:
        return _error(400, str(error))


@router.get("/models/{name}", dependencies=[READER])
async def model_metadata(name: str, scorer: ScorerDep) -> Response:
    """The model's loaded versions, flavor, inputs and outputs."""
    return _metadata(scorer, name, None)


@router.get("/models/{name}/versions/{version}", dependencies=[READER])
async def version_metadata(name: str, version: str, scorer: ScorerDep) -> Response:
    """The same, for one loaded version."""
    return _metadata(scorer, name, version)


def _ready(scorer: ScorerDep, name: str, version: str | None) -> Response:
    try:
        scorer.resolve(name, _version(version))
    except UnknownModel as error:
        return _error(404, str(error))
    except BadRequest as error:
        return _error(400, str(error))
    return JSONResponse({"name": name, "ready": True})


@router.get("/models/{name}/ready", dependencies=[READER])
async def model_ready(name: str, scorer: ScorerDep) -> Response:
    """200 when the model's champion is loaded."""
    return _ready(scorer, name, None)


@router.get("/models/{name}/versions/{version}/ready", dependencies=[READER])
async def version_ready(name: str, version: str, scorer: ScorerDep) -> Response:
    """200 when that version is loaded."""
    return _ready(scorer, name, version)


#: The binary extension's header as ASGI gives header names (lower case bytes).
_SPLIT = binary_tensors.HEADER.lower().encode()


def _split_at(request: Request) -> str | None:
    # A scan of the ASGI headers: a fourth of ``request.headers.get``'s time, which a
    # 1-row JSON request (without the header) would otherwise pay on every call.
    for key, value in request.scope["headers"]:
        if key == _SPLIT:
            return str(value.decode("latin-1"))
    return None


async def _read(request: Request) -> tuple[Any, memoryview | None]:
    """The request's JSON, and the binary tensors after it (when its header says so)."""
    raw = await request.body()
    split = _split_at(request)
    binary = None
    if split is not None:
        raw, binary = binary_tensors.split_body(raw, split)
    try:
        return pydantic_core.from_json(raw), binary
    except ValueError as error:
        raise BadRequest(f"the body is not valid JSON: {error}") from None


def _answer(content: dict[str, Any], data: bytes, binary: bool) -> Response:
    header = pydantic_core.to_json(content)
    if not binary:
        return Response(header, media_type="application/json")
    return Response(
        header + data,
        media_type="application/octet-stream",
        headers={binary_tensors.HEADER: str(len(header))},
    )


@dataclass(frozen=True)
class Inferred:
    """A scored V2 request: the answer, and how the request asked for it.

    Attributes:
        outputs: The outputs asked for, in order.
        binary: Those to answer in binary (REST's binary tensor extension).
        feature_service: The feature service the inputs' entity keys were read from.
        feature_times: Per row, the event time of each feature read for the entity
            keys, by feature name (None when the request carried its features).
    """

    answer: Answer
    outputs: tuple[str, ...]
    binary: frozenset[str]
    feature_service: str | None
    feature_times: list[dict[str, str | None]] | None = None


async def infer_body(
    scorer: Scorer, name: str, version: str | None, body: Any, binary: memoryview | None
) -> Inferred:
    """Score a V2 ``infer`` request's body (and its binary tensors): what REST's and gRPC's
    ``infer`` share.

    Raises:
        UnknownModel: The model is not served, or the version not loaded.
        BadRequest: The request cannot be read, or does not fit the model.
        DriftloopError: Anything else the scorer refuses (with its status).
    """
    pinned = _version(version)
    served = scorer.resolve(name, pinned)  # 404 before looking at the body
    predictor = served.predictor
    columns = [column.name for column in predictor.columns]
    if binary is not None:
        binary_tensors.decode_inputs(body, binary)
    outputs = v2_outputs(body)
    binary_outputs = binary_tensors.binary_outputs(body, outputs)
    requested = (
        requested_source(body.get("parameters"), "parameters") if isinstance(body, dict) else None
    )
    source = scorer.feature_source(name, requested)
    entities = (
        v2_entities(body, columns, named=requested is not None) if source is not None else None
    )
    online = None
    if source is None or entities is None:
        matrix = v2_batch(body, predictor.columns) if predictor.typed else v2_matrix(body, columns)
    elif predictor.typed:
        raise BadRequest(TYPED_ENTITIES)
    else:
        online = await scorer.online_matrix(name, source=source, entities=entities, columns=columns)
        matrix = online.matrix
    request_id = str(body.get("id") or "") or None
    answer = await scorer.infer(
        name,
        matrix,
        version=pinned,
        request_id=request_id,
        entities=entities,
        feature_names=online.names if online else None,
        feature_times=online.times if online else None,
        probabilities="predict_proba" in outputs,
    )
    feature_service = source if entities is not None and isinstance(source, str) else None
    times = online.times_by_name() if online else None
    return Inferred(answer, outputs, binary_outputs, feature_service, times)


async def infer_request(
    request: Request, scorer: ScorerDep, name: str, version: str | None
) -> Response:
    """Answer an ``infer`` request (the FastAPI routes and the fast routes both call this)."""
    try:
        body, binary = await _read(request)
        inferred = await infer_body(scorer, name, version, body, binary)
    except UnknownModel as error:
        return _error(404, str(error))
    except BadRequest as error:
        return _error(400, str(error))
    except DriftloopError as error:
        return _error(error.status_code, error.message)
    answer = inferred.answer
    content, data = v2_response(
        model=name,
        version=answer.model.version,
        request_id=answer.request_id,
        predictions=answer.predictions,
        route=answer.route,
        probabilities=answer.probabilities,
        outputs=inferred.outputs,
        binary=inferred.binary,
    )
    if inferred.feature_service is not None:
        content["parameters"]["feature_service"] = inferred.feature_service
    if inferred.feature_times is not None:
        content["parameters"]["feature_event_times"] = inferred.feature_times
    return _answer(content, data, bool(inferred.binary))


@router.post("/models/{name}/infer", dependencies=[READER])
async def infer(name: str, request: Request, scorer: ScorerDep) -> Response:
    """Score with the champion (or the canary, per the model's traffic policy)."""
    return await infer_request(request, scorer, name, None)


@router.post("/models/{name}/versions/{version}/infer", dependencies=[READER])
async def infer_version(name: str, version: str, request: Request, scorer: ScorerDep) -> Response:
    """Score with one loaded version."""
    return await infer_request(request, scorer, name, version)
