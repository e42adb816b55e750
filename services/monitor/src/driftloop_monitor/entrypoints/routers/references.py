"""Reference data per model version: upload (CSV, Parquet or JSON records), inspect, delete."""

from __future__ import annotations

import asyncio
import io
from datetime import datetime
from typing import Annotated

import pandas as pd  # type: ignore[import-untyped]
from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel, Field

from driftloop_kit.auth import DEPLOYER, READER
from driftloop_kit.errors import InvalidInput, NotFound
from driftloop_monitor.adapters.store import ReferenceInfo
from driftloop_monitor.entrypoints.deps import MonitorDep, StoreDep

router = APIRouter(tags=["reference data"])

#: Versions are 64-bit integers in the database: a larger one is a 422, not a 500.
Version = Annotated[int, Path(ge=1, le=2**63 - 1, description="Model version, e.g. 3.")]
MAX_UPLOAD_BYTES = 200 * 1024 * 1024
PARQUET_TYPES = (
    "application/vnd.apache.parquet",
    "application/x-parquet",
    "application/octet-stream",
)


class ReferenceOut(BaseModel):
    """A version's reference data, without the data."""

    model_name: str
    version: int
    digest: str = Field(description="Content digest, carried in drift alerts.")
    rows: int
    column_types: dict[str, str] = Field(
        description='Tested columns and their Evidently type: "num", "cat" or "text".'
    )
    source: str = Field(
        description=(
            '"upload", or where it was fetched from when the version became champion: the '
            "location its training run's `driftloop.reference_data` tag names, e.g. "
            '"mlflow-artifacts:/1/<run id>/artifacts/reference/reference.csv".'
        )
    )
    created_at: datetime | None = None

    @classmethod
    def of(cls, info: ReferenceInfo) -> ReferenceOut:
        return cls(
            model_name=info.model,
            version=info.version,
            digest=info.digest,
            rows=info.rows,
            column_types=info.column_types,
            source=info.source,
            created_at=info.created_at,
        )


def _parse(body: bytes, content_type: str) -> pd.DataFrame:
    media = content_type.split(";", maxsplit=1)[0].strip().lower()
    try:
        if media in (
            "application/vnd.apache.parquet",
            "application/x-parquet",
            "application/octet-stream",
        ):
            return pd.read_parquet(io.BytesIO(body))
        if media == "application/json":
            return pd.read_json(io.BytesIO(body), orient="records")
        if media in ("text/csv", "application/csv", ""):
            return pd.read_csv(io.BytesIO(body))
    except Exception as error:
        raise InvalidInput(f"cannot read the reference data as {media or 'CSV'}: {error}") from None
    raise InvalidInput(
        f"unsupported content type {media!r}; send text/csv, application/vnd.apache.parquet "
        "or application/json (a list of records)"
    )


@router.put(
    "/models/{model_name}/versions/{version}/reference",
    summary="Upload or replace a version's reference data",
    description=(
        "The body is the training sample: CSV (`text/csv`), Parquet "
        "(`application/vnd.apache.parquet`) or JSON records (`application/json`). Column "
        "types are inferred by Evidently unless the model's policy sets them."
    ),
    status_code=201,
    dependencies=[DEPLOYER],
)
async def put_reference(
    model_name: str, version: Version, request: Request, monitor: MonitorDep, store: StoreDep
) -> ReferenceOut:
    body = await request.body()
    if not body:
        raise InvalidInput("the request body is empty; send the reference data")
    if len(body) > MAX_UPLOAD_BYTES:
        raise InvalidInput(f"reference data over {MAX_UPLOAD_BYTES} bytes")
    data = await asyncio.to_thread(_parse, body, request.headers.get("content-type", ""))
    await monitor.references.put(model_name, version, data)
    infos = await store.list_references(model_name)
    return ReferenceOut.of(next(i for i in infos if i.version == version))


@router.get(
    "/models/{model_name}/versions/{version}/reference",
    summary="A version's reference",
    dependencies=[READER],
)
async def get_reference(
    model_name: str,
    version: Version,
    store: StoreDep,
    format: Annotated[
        str | None, Query(pattern="^(csv)$", description="`csv` returns the data itself.")
    ] = None,
) -> Response:
    if format == "csv":
        reference = await store.get_reference(model_name, version)
        if reference is None:
            raise NotFound(f"model {model_name!r} version {version} has no reference data")
        return Response(reference.data.to_csv(index=False), media_type="text/csv")
    for info in await store.list_references(model_name):
        if info.version == version:
            return Response(ReferenceOut.of(info).model_dump_json(), media_type="application/json")
    raise NotFound(f"model {model_name!r} version {version} has no reference data")


@router.delete(
    "/models/{model_name}/versions/{version}/reference", status_code=204, dependencies=[DEPLOYER]
)
async def delete_reference(model_name: str, version: Version, store: StoreDep) -> Response:
    if not await store.delete_reference(model_name, version):
        raise NotFound(f"model {model_name!r} version {version} has no reference data")
    return Response(status_code=204)


@router.get(
    "/references", summary="Every reference data set (without the data)", dependencies=[READER]
)
async def list_references(
    store: StoreDep, model_name: Annotated[str | None, Query()] = None
) -> list[ReferenceOut]:
    return [ReferenceOut.of(i) for i in await store.list_references(model_name)]
