"""A registered version's files, downloaded through the registry and checked.

The registry checks each file against the SHA-256 recorded at registration while it
serves it; the client checks again here, before anything loads the files, into
``<target>`` (a version already there and intact is reused). Serving loads models from
here, and so does the trainer's evaluation gate.
"""

from __future__ import annotations

import hashlib
import shutil
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpx

__all__ = [
    "API",
    "ARTIFACTS",
    "DownloadError",
    "download_version",
    "intact",
    "storage_key_of",
    "version_files",
]

#: The MLflow REST API of the registry.
API = "/api/2.0/mlflow"
#: The registry's artifact proxy.
ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"


class DownloadError(Exception):
    """A file could not be downloaded, or it is not the file that was registered."""


def storage_key_of(download_uri: str) -> str:
    """The storage key in a registry download URI (empty if it names none).

    ``mlflow-artifacts://<host:port>/<key>``, or the artifact proxy's URL
    ``http(s)://<host>[/prefix]/api/2.0/mlflow-artifacts/artifacts/<key>`` that the
    registry hands out when it is reached under a path prefix or over https.
    """
    path = urlsplit(download_uri).path
    if ARTIFACTS + "/" in path:
        path = path.split(ARTIFACTS + "/", 1)[1]
    return path.strip("/")


def message(response: httpx.Response) -> str:
    """The error message of a registry answer."""
    try:
        return str(response.json().get("message") or response.text)
    except ValueError:
        return response.text or f"HTTP {response.status_code}"


def version_files(body: dict[str, Any]) -> dict[str, str]:
    """``path -> sha256`` of a ``model-versions/get`` answer's version."""
    return {f["path"]: f["sha256"] for f in body["model_version"].get("files") or []}


def intact(folder: Path, files: dict[str, str]) -> bool:
    """Whether ``folder`` holds exactly these files' registered contents."""
    if not files or not folder.is_dir():
        return False
    for path, expected in files.items():
        file = folder / path
        if not file.is_file() or hashlib.sha256(file.read_bytes()).hexdigest() != expected:
            return False
    return True


async def download_version(
    client: httpx.AsyncClient, *, name: str, version: int, files: dict[str, str], target: Path
) -> Path:
    """The version's files in ``target``, every one checked against its SHA-256.

    Args:
        client: A client of the registry (its ``base_url`` set, with credentials).
        name: The registered model.
        version: Its version.
        files: ``path -> sha256`` as registered (:func:`version_files`).
        target: The folder to fill (replaced whole once every file checked).

    Raises:
        DownloadError: A file cannot be downloaded or does not match.
    """
    if await anyio.to_thread.run_sync(intact, target, files):
        return target
    try:
        response = await client.get(
            f"{API}/model-versions/get-download-uri",
            params={"name": name, "version": str(version)},
        )
    except httpx.HTTPError as error:
        raise DownloadError(f"registry unreachable: {error}") from None
    if response.status_code >= 400:
        raise DownloadError(f"registry answered {response.status_code}: {message(response)}")
    storage_key = storage_key_of(response.json()["artifact_uri"])
    staging = target.with_name(f".{target.name}.{uuid.uuid4().hex}")
    try:
        for path, expected in files.items():
            await _fetch(client, f"{ARTIFACTS}/{storage_key}/{path}", staging / path, expected)
        await anyio.to_thread.run_sync(_replace, staging, target)
    finally:
        await anyio.to_thread.run_sync(lambda: shutil.rmtree(staging, ignore_errors=True))
    return target


async def _fetch(client: httpx.AsyncClient, url: str, destination: Path, expected: str) -> None:
    destination.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    try:
        async with client.stream("GET", url) as response:
            if response.status_code >= 400:
                await response.aread()
                raise DownloadError(
                    f"download of {destination.name} refused ({response.status_code}): "
                    f"{message(response)}"
                )
            with destination.open("wb") as handle:
                async for chunk in response.aiter_bytes():
                    digest.update(chunk)
                    handle.write(chunk)
    except httpx.HTTPError as error:
        raise DownloadError(f"download of {destination.name} failed: {error}") from None
    if digest.hexdigest() != expected:
        raise DownloadError(
            f"{destination.name}: SHA-256 {digest.hexdigest()} does not match the "
            f"registered {expected}"
        )


def _replace(staging: Path, target: Path) -> None:
    if target.exists():
        shutil.rmtree(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging.rename(target)
