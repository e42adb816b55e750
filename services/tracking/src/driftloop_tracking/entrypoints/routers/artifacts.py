"""MLflow's artifact proxy (``/api/2.0/mlflow-artifacts/...``) and run artifact listing.

Runs' artifact URIs are ``mlflow-artifacts:/<experiment_id>/<run_id>/artifacts``;
the mlflow client resolves them to ``<tracking URI>/api/2.0/mlflow-artifacts/artifacts/...``
and uploads, downloads and lists files there, all relative to the artifact root.
"""

from __future__ import annotations

import posixpath
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel
from starlette.requests import ClientDisconnect

from driftloop_kit.artifacts import (
    ArtifactFile,
    FileInfo,
    ListArtifactsResponse,
    clean_path,
    download_response,
)
from driftloop_kit.auth import ADMIN, READER, WRITER
from driftloop_kit.errors import InvalidInput
from driftloop_kit.responses import MlflowJSONResponse
from driftloop_tracking.entrypoints.deps import ArtifactListingDep, ArtifactsDep

router = APIRouter(prefix="/api/2.0", tags=["artifacts"], default_response_class=MlflowJSONResponse)

#: The message the mlflow client reads as "fall back to a plain upload".
MULTIPART_UNSUPPORTED = "Multipart upload is not supported for the current artifact repository"


class ListRunArtifactsResponse(BaseModel):
    """A run's artifacts below ``path``, named relative to the run's artifact root."""

    root_uri: str
    files: list[ArtifactFile]


def _file(info: FileInfo, prefix: str = "") -> ArtifactFile:
    path = posixpath.join(prefix, info.path) if prefix else info.path
    return ArtifactFile(path=path, is_dir=info.is_dir, file_size=info.file_size)


@router.get("/mlflow-artifacts/artifacts", dependencies=[READER])
async def list_artifacts(artifacts: ArtifactsDep, path: str = "") -> ListArtifactsResponse:
    """List a directory below the artifact root (empty if missing or a file)."""
    files = await artifacts.list_dir(path)
    return ListArtifactsResponse(files=[_file(info) for info in files])


@router.get(
    "/mlflow-artifacts/artifacts/{artifact_path:path}",
    response_class=StreamingResponse,
    dependencies=[READER],
)
async def download_artifact(artifact_path: str, artifacts: ArtifactsDep) -> StreamingResponse:
    """Stream one file; 404 if it does not exist."""
    reader = await artifacts.read(artifact_path)
    return download_response(reader, artifact_path)


@router.put("/mlflow-artifacts/artifacts/{artifact_path:path}", dependencies=[WRITER])
async def upload_artifact(
    artifact_path: str, request: Request, artifacts: ArtifactsDep
) -> dict[str, Any]:
    """Store the request body as a file, streamed, replacing any file at that path."""
    try:
        await artifacts.write(artifact_path, request.stream())
    except ClientDisconnect:
        raise InvalidInput(f"The upload of {artifact_path!r} was interrupted") from None
    return {}


@router.delete("/mlflow-artifacts/artifacts/{artifact_path:path}", dependencies=[ADMIN])
async def delete_artifact(artifact_path: str, artifacts: ArtifactsDep) -> dict[str, Any]:
    """Delete a file or a directory tree; deleting what is not there succeeds, as in MLflow."""
    await artifacts.delete(artifact_path)
    return {}


@router.post("/mlflow-artifacts/mpu/create/{artifact_path:path}", dependencies=[WRITER])
async def create_multipart_upload(artifact_path: str) -> MlflowJSONResponse:
    """Refuse multipart uploads in the words that make the client upload in one request.

    Answered directly rather than raised: it is an expected answer, not a failure to log.
    """
    body = {"error_code": "NOT_IMPLEMENTED", "message": MULTIPART_UNSUPPORTED}
    return MlflowJSONResponse(body, status_code=501)


@router.get("/mlflow/artifacts/list", dependencies=[READER])
async def list_run_artifacts(
    *,
    listing: ArtifactListingDep,
    run_id: str = "",
    run_uuid: str = "",
    path: str = "",
    page_token: str = "",
) -> ListRunArtifactsResponse:
    """List a run's artifacts below ``path`` (MLflow's ``ListArtifacts``); one page holds all."""
    if not (run_id or run_uuid):
        raise InvalidInput("Missing value for required parameter 'run_id'.")
    relative = clean_path(path)
    root_uri, files = await listing.of_run(run_id or run_uuid, relative)
    return ListRunArtifactsResponse(
        root_uri=root_uri, files=[_file(info, relative) for info in files]
    )
