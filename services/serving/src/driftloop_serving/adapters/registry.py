"""Fetching a model version from the registry: which version an alias names, its files.

Files are downloaded through the registry (which checks each against the SHA-256
recorded at registration) and checked again here before they are loaded, into
``<cache>/<name>/<version>/``. A version already downloaded and intact is reused.
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

from driftloop_serving.domain.models import NotRegisteredYet, RegistryError, VersionInfo

_API = "/api/2.0/mlflow"
_ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"

__all__ = ["RegistryClient", "RegistryError", "VersionInfo"]


def _message(response: httpx.Response) -> str:
    try:
        return str(response.json().get("message") or response.text)
    except ValueError:
        return response.text or f"HTTP {response.status_code}"


class RegistryClient:
    """Reads versions from the registry service and downloads their files.

    The service's :class:`~driftloop_serving.service_layer.ports.RegistryPort`.

    Args:
        base_url: The registry's URL.
        cache: Folder for downloaded model files.
        transport: An httpx transport (tests may pass an ASGI one).
    """

    def __init__(
        self,
        base_url: str,
        cache: Path,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        auth: httpx.Auth | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.cache = cache
        self._client = httpx.AsyncClient(
            base_url=self.base_url, timeout=60, transport=transport, auth=auth
        )

    async def start(self) -> None:
        """Nothing to open: connections are made on first use."""

    async def stop(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()

    async def _get(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        try:
            response = await self._client.get(path, params=params)
        except httpx.HTTPError as error:
            raise RegistryError(f"registry unreachable at {self.base_url}: {error}") from None
        if response.status_code == 404:
            raise NotRegisteredYet(f"registry answered 404: {_message(response)}")
        if response.status_code >= 400:
            raise RegistryError(f"registry answered {response.status_code}: {_message(response)}")
        body: dict[str, Any] = response.json()
        return body

    @staticmethod
    def _version(body: dict[str, Any]) -> VersionInfo:
        version = body["model_version"]
        return VersionInfo(
            name=version["name"],
            version=int(version["version"]),
            run_id=version.get("run_id") or "",
            files={f["path"]: f["sha256"] for f in version.get("files") or []},
        )

    async def by_alias(self, name: str, alias: str) -> VersionInfo:
        """The version ``alias`` points to now."""
        body = await self._get(f"{_API}/registered-models/alias", {"name": name, "alias": alias})
        return self._version(body)

    async def version(self, name: str, version: int) -> VersionInfo:
        """A version by number."""
        body = await self._get(
            f"{_API}/model-versions/get", {"name": name, "version": str(version)}
        )
        return self._version(body)

    async def download(self, info: VersionInfo) -> Path:
        """The version's files in a local folder, every file checked against its SHA-256.

        Raises:
            RegistryError: If a file cannot be downloaded or does not match.
        """
        target = self.cache / info.name / str(info.version)
        if await anyio.to_thread.run_sync(_intact, target, info.files):
            return target
        body = await self._get(
            f"{_API}/model-versions/get-download-uri",
            {"name": info.name, "version": str(info.version)},
        )
        storage_key = urlsplit(body["artifact_uri"]).path.strip("/")
        staging = target.with_name(f".{target.name}.{uuid.uuid4().hex}")
        try:
            for path, expected in info.files.items():
                await self._fetch(f"{_ARTIFACTS}/{storage_key}/{path}", staging / path, expected)
            await anyio.to_thread.run_sync(_replace, staging, target)
        finally:
            await anyio.to_thread.run_sync(lambda: shutil.rmtree(staging, ignore_errors=True))
        return target

    async def _fetch(self, url: str, destination: Path, expected: str) -> None:
        destination.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        try:
            async with self._client.stream("GET", url) as response:
                if response.status_code >= 400:
                    await response.aread()
                    raise RegistryError(
                        f"download of {destination.name} refused ({response.status_code}): "
                        f"{_message(response)}"
                    )
                with destination.open("wb") as handle:
                    async for chunk in response.aiter_bytes():
                        digest.update(chunk)
                        handle.write(chunk)
        except httpx.HTTPError as error:
            raise RegistryError(f"download of {destination.name} failed: {error}") from None
        if digest.hexdigest() != expected:
            raise RegistryError(
                f"{destination.name}: SHA-256 {digest.hexdigest()} does not match the "
                f"registered {expected}"
            )


def _intact(folder: Path, files: dict[str, str]) -> bool:
    if not files or not folder.is_dir():
        return False
    for path, expected in files.items():
        file = folder / path
        if not file.is_file() or hashlib.sha256(file.read_bytes()).hexdigest() != expected:
            return False
    return True


def _replace(staging: Path, target: Path) -> None:
    if target.exists():
        shutil.rmtree(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging.rename(target)
