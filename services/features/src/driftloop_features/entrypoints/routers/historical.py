"""Historical retrieval for training: point-in-time-correct features for an entity frame.

``POST /get-historical-features`` takes the entity frame (join keys plus an
``event_timestamp`` column, and any other columns such as labels, which are passed
through) as JSON or as a Parquet file, and answers the training frame as Parquet
(default), an Arrow IPC stream, or JSON. Each row gets the latest value with an event
time at or before the row's own ``event_timestamp`` (and within the view's TTL):
nothing newer can leak in.
"""

from __future__ import annotations

import asyncio
import io
import json
from typing import Annotated, Any

import pandas as pd  # type: ignore[import-untyped]
import pyarrow as pa
import pyarrow.parquet as pq
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from driftloop_features.adapters.label_store import TrainingLabels
from driftloop_features.domain.labels import Scalar
from driftloop_features.entrypoints.deps import GatewayDep, LabelsDep
from driftloop_features.service_layer.labels import Labels
from driftloop_kit.auth import READER
from driftloop_kit.errors import InvalidInput, validation_message

router = APIRouter(tags=["historical"])

PARQUET = "application/vnd.apache.parquet"
ARROW_STREAM = "application/vnd.apache.arrow.stream"
JSON_TYPE = "application/json"
_PARQUET_TYPES = {
    PARQUET,
    "application/x-parquet",
    "application/parquet",
    "application/octet-stream",
}
TIMESTAMP_COLUMN = "event_timestamp"
_MAX_BODY = 512 * 1024 * 1024


class HistoricalFeaturesRequest(BaseModel):
    """JSON body of ``POST /get-historical-features``."""

    entities: dict[str, list[Any]] = Field(
        description=(
            "The entity frame, column -> values: the join keys, `event_timestamp` "
            "(ISO 8601; UTC when no offset is given) and any columns to pass through."
        ),
        examples=[
            {
                "flower_id": [1001, 1002],
                "event_timestamp": ["2025-03-01T12:00:00Z", "2025-03-01T13:00:00Z"],
                "species": ["setosa", "virginica"],
            }
        ],
    )
    features: list[str] = Field(default_factory=list, examples=[["iris_features:sepal_length"]])
    feature_service: str | None = Field(default=None, examples=["iris_classifier"])
    full_feature_names: bool = False


_OPENAPI_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            JSON_TYPE: {"schema": {"$ref": "#/components/schemas/HistoricalFeaturesRequest"}},
            PARQUET: {
                "schema": {"type": "string", "format": "binary"},
                "description": "The entity frame as Parquet; name the features in the query.",
            },
        },
    },
    "responses": {
        "200": {
            "description": "The training frame.",
            "content": {
                PARQUET: {"schema": {"type": "string", "format": "binary"}},
                ARROW_STREAM: {"schema": {"type": "string", "format": "binary"}},
                JSON_TYPE: {"schema": {"type": "object"}},
            },
        }
    },
}


@router.post(
    "/get-historical-features",
    summary="Point-in-time-correct training frame",
    openapi_extra=_OPENAPI_BODY,
    response_class=Response,
    dependencies=[READER],
)
async def get_historical_features(
    request: Request,
    gateway: GatewayDep,
    features: Annotated[list[str] | None, Query(description="With a Parquet body.")] = None,
    feature_service: Annotated[str | None, Query(description="With a Parquet body.")] = None,
    full_feature_names: Annotated[bool, Query(description="With a Parquet body.")] = False,
) -> Response:
    """Join feature values as of each entity row's ``event_timestamp``.

    Send JSON (``HistoricalFeaturesRequest``) or Parquet (``Content-Type:
    application/vnd.apache.parquet``, features in the query). ``Accept`` picks the
    answer: Parquet (default), ``application/vnd.apache.arrow.stream`` or JSON.
    """
    content_type = request.headers.get("content-type", JSON_TYPE).split(";")[0].strip().lower()
    body = await request.body()
    if len(body) > _MAX_BODY:
        raise InvalidInput("the entity frame is larger than 512 MiB; send it in parts")
    if content_type in _PARQUET_TYPES:
        entity_df = _read_parquet(body)
        refs = features or []
        service = feature_service
        full_names = full_feature_names
    elif content_type == JSON_TYPE:
        parsed = _parse_json(body)
        entity_df = _frame(parsed.entities)
        refs, service, full_names = (
            parsed.features,
            parsed.feature_service,
            parsed.full_feature_names,
        )
    else:
        raise InvalidInput(
            f"Content-Type {content_type!r} is not supported; send {JSON_TYPE} or {PARQUET}"
        )
    entity_df = _with_timestamps(entity_df)
    resolved = await asyncio.to_thread(gateway.resolve_features, refs, service)
    table = await asyncio.to_thread(
        gateway.get_historical_features,
        entity_df=entity_df,
        features=resolved,
        full_feature_names=full_names,
    )
    return _answer(table, request.headers.get("accept", ""))


def _parse_json(body: bytes) -> HistoricalFeaturesRequest:
    try:
        return HistoricalFeaturesRequest.model_validate_json(body)
    except ValidationError as error:
        errors = [{**e, "loc": ("body", *e.get("loc", ()))} for e in error.errors()]
        raise InvalidInput(validation_message(errors)) from error


def _frame(entities: dict[str, list[Any]]) -> pd.DataFrame:
    lengths = {name: len(values) for name, values in entities.items()}
    if len(set(lengths.values())) > 1:
        raise InvalidInput(f"entity columns have different lengths: {lengths}")
    return pd.DataFrame(entities)


def _read_parquet(body: bytes) -> pd.DataFrame:
    try:
        return pq.read_table(io.BytesIO(body)).to_pandas()
    except (pa.ArrowException, OSError, ValueError) as error:
        raise InvalidInput(f"the body is not a readable Parquet file: {error}") from error


def _with_timestamps(entity_df: pd.DataFrame) -> pd.DataFrame:
    if entity_df.empty:
        raise InvalidInput("the entity frame has no rows")
    if TIMESTAMP_COLUMN not in entity_df.columns:
        raise InvalidInput(
            f"the entity frame needs an {TIMESTAMP_COLUMN!r} column "
            f"(has: {', '.join(map(str, entity_df.columns))})"
        )
    column = entity_df[TIMESTAMP_COLUMN]
    if isinstance(column.dtype, pd.DatetimeTZDtype):
        return entity_df
    try:
        if pd.api.types.is_datetime64_dtype(column):
            converted = column.dt.tz_localize("UTC")
        else:
            converted = pd.to_datetime(column, utc=True, format="ISO8601")
    except (ValueError, TypeError) as error:
        raise InvalidInput(
            f"{TIMESTAMP_COLUMN!r} holds a value that is not a timestamp: {error}"
        ) from error
    if converted.isna().any():
        raise InvalidInput(f"{TIMESTAMP_COLUMN!r} has empty values")
    return entity_df.assign(**{TIMESTAMP_COLUMN: converted})


def _answer(table: pa.Table, accept: str) -> Response:
    wanted = [part.split(";")[0].strip().lower() for part in accept.split(",") if part.strip()]
    if ARROW_STREAM in wanted:
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        return Response(sink.getvalue().to_pybytes(), media_type=ARROW_STREAM)
    if JSON_TYPE in wanted and PARQUET not in wanted:
        frame = table.to_pandas()
        text = frame.to_json(orient="split", index=False, date_format="iso", date_unit="us")
        body = json.loads(text)
        return Response(
            json.dumps({"columns": body["columns"], "data": body["data"]}), media_type=JSON_TYPE
        )
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return Response(buffer.getvalue(), media_type=PARQUET)


def _entity_frame(found: TrainingLabels, label_column: str) -> pd.DataFrame:
    """The labels keyed by entities as an entity frame: their keys, ``event_timestamp``,
    ``request_id`` and the label column (a later name wins a clash, as in a dict)."""
    frame = found.keys.copy()
    frame[TIMESTAMP_COLUMN] = found.event_time
    frame["request_id"] = pd.Series(found.request_id, dtype=object)
    frame[label_column] = found.ground_truth
    return frame


async def _logged_rows(
    labels: Labels, model_name: str, by_request: dict[str, Scalar], body: TrainingSetRequest
) -> list[dict[str, Any]]:
    """Labels keyed by request id alone, each with the inputs its prediction was given."""
    if not by_request:
        return []
    seen = await labels.inputs_of(model_name, list(by_request))
    rows = []
    for request_id, (when, inputs) in seen.items():
        rows.append(
            {
                **inputs,
                TIMESTAMP_COLUMN: when,
                "request_id": request_id,
                body.label_column: by_request[request_id],
            }
        )
    return rows


def _references(resolved: Any) -> list[str]:
    """``view:feature`` references of a list of them or of a Feast feature service."""
    if isinstance(resolved, list):
        return [str(ref) for ref in resolved]
    return [
        f"{projection.name_to_use()}:{feature.name}"
        for projection in resolved.feature_view_projections
        for feature in projection.features
    ]


def _logged_table(
    rows: list[dict[str, Any]], features: list[str], body: TrainingSetRequest
) -> pa.Table:
    """The logged rows with the training set's columns: each requested feature under its
    name (``view__feature`` with full names), missing ones null."""
    frame = pd.DataFrame(rows)
    columns: dict[str, Any] = {}
    for reference in features:
        view, _, name = reference.partition(":")
        column = f"{view}__{name}" if body.full_feature_names else name
        columns[column] = frame[name] if name in frame.columns else None
    out = pd.DataFrame(
        {
            "request_id": frame["request_id"],
            TIMESTAMP_COLUMN: pd.to_datetime(frame[TIMESTAMP_COLUMN], utc=True),
            body.label_column: frame[body.label_column],
            **columns,
        }
    )
    return pa.Table.from_pandas(out, preserve_index=False)


#: The most labels one training set is built from.
MAX_TRAINING_LABELS = 1_000_000


class TrainingSetRequest(BaseModel):
    """JSON body of ``POST /labels/{model_name}/training-set``."""

    model_config = ConfigDict(extra="forbid")

    features: list[str] = Field(default_factory=list, examples=[["iris_features:sepal_length"]])
    feature_service: str | None = Field(default=None, examples=["iris_classifier"])
    label_column: str = Field(default="label", min_length=1, max_length=255)
    start: AwareDatetime | None = Field(default=None, description="event_time >= start")
    end: AwareDatetime | None = Field(default=None, description="event_time < end")
    full_feature_names: bool = False


@router.post(
    "/labels/{model_name}/training-set",
    summary="A model's training set: its stored labels joined point-in-time with features",
    response_class=Response,
    dependencies=[READER],
)
async def training_set(
    model_name: str,
    body: TrainingSetRequest,
    request: Request,
    gateway: GatewayDep,
    labels: LabelsDep,
) -> Response:
    """One row per stored label: its entity keys, ``event_timestamp`` (the label's event
    time), ``request_id``, the label column, and the features.

    A label keyed by entity keys gets each feature as of its event time (nothing
    newer), by Feast's rules of a point-in-time join (``adapters/point_in_time.py`` on
    Parquet sources, Feast's own join otherwise). A label keyed by a request id alone
    gets the features its prediction was given, as serving logged them (a one-row
    request, seen on ``predictions``; its ``event_timestamp`` is the prediction's time);
    one whose prediction was never seen is left out. ``Accept`` picks the format, as for
    historical features."""
    found = await labels.training_labels(
        model_name, start=body.start, end=body.end, limit=MAX_TRAINING_LABELS + 1
    )
    if found.count > MAX_TRAINING_LABELS:
        raise InvalidInput(
            f"more than {MAX_TRAINING_LABELS} labels; narrow the range with start and end"
        )
    logged = await _logged_rows(labels, model_name, found.by_request, body)
    if found.keys.empty and not logged:
        raise InvalidInput(
            f"model {model_name!r} has no labels in the range keyed by entity keys or by "
            "the request id of a prediction seen on `predictions`"
        )
    resolved = await asyncio.to_thread(
        gateway.resolve_features, body.features, body.feature_service
    )
    tables: list[pa.Table] = []
    if not found.keys.empty:
        tables.append(
            await asyncio.to_thread(
                gateway.training_frame,
                entity_df=_entity_frame(found, body.label_column),
                features=resolved,
                full_feature_names=body.full_feature_names,
            )
        )
    if logged:
        tables.append(_logged_table(logged, _references(resolved), body))
    # Columns one part lacks (the entity keys of logged rows) are null in it; a column
    # null throughout one part takes the other's type.
    table = (
        tables[0] if len(tables) == 1 else pa.concat_tables(tables, promote_options="permissive")
    )
    return _answer(table, request.headers.get("accept", ""))
