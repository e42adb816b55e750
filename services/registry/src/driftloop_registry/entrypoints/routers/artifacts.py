"""Registered model files, read-only, checked against their SHA-256 on every download.

A version's download URI is ``mlflow-artifacts://<registry>/<storage_key>``; the
mlflow client resolves it to ``/api/2.0/mlflow-artifacts/artifacts/<storage_key>/...``
here. Listings come from what was recorded at registration, not from storage, so
a file slipped into storage later is never listed or served.
"""

from __future__ import annotations

import posixpath

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from driftloop_kit.artifacts import (
    ArtifactFile,
    ListArtifactsResponse,
    clean_path,
    download_response,
)
from driftloop_kit.auth import READER
from driftloop_kit.errors import NotFound
from driftloop_kit.responses import MlflowJSONResponse
from driftloop_registry.entrypoints.deps import VersionsDep

router = APIRouter(
    prefix="/api/2.0/mlflow-artifacts",
    tags=["model files"],
    default_response_class=MlflowJSONResponse,
)


@router.get("/artifacts", dependencies=[READER])
async def list_artifacts(versions: VersionsDep, path: str = "") -> ListArtifactsResponse:
    """List a directory of a version's files (empty if it is not one)."""
    storage_key, _, below = clean_path(path).partition("/")
    files = await versions.stored_files(storage_key) if storage_key else None
    entries: dict[str, ArtifactFile] = {}
    for file in files or []:
        if below and not file.path.startswith(below + "/"):
            continue
        rest = file.path[len(below) + 1 :] if below else file.path
        head, _, tail = rest.partition("/")
        if tail:
            entries.setdefault(head, ArtifactFile(path=head, is_dir=True))
        else:
            entries[head] = ArtifactFile(path=head, is_dir=False, file_size=file.size)
    return ListArtifactsResponse(files=sorted(entries.values(), key=lambda e: e.path))


@router.get(
    "/artifacts/{artifact_path:path}", response_class=StreamingResponse, dependencies=[READER]
)
async def download_artifact(artifact_path: str, versions: VersionsDep) -> StreamingResponse:
    """Stream one file after checking its SHA-256; 409 ``INVALID_STATE`` if it changed."""
    storage_key, _, path = clean_path(artifact_path).partition("/")
    recorded = await versions.stored_file(storage_key, path) if path else None
    if recorded is None:
        raise NotFound(f"No registered model file at {artifact_path!r}")
    reader = await versions.files.open(storage_key, recorded)
    return download_response(reader, posixpath.basename(path))
