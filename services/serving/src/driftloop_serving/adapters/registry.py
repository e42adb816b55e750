"""Fetching a model version from the registry: which version an alias names, its files.

Files are downloaded through the registry and checked against the SHA-256 recorded at
registration before they are loaded (:mod:`driftloop_kit.model_files`), into
``<cache>/<name>/<version>/``. A version already downloaded and intact is reused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from driftloop_kit.model_files import API as _API
from driftloop_kit.model_files import DownloadError, download_version, version_files
from driftloop_kit.model_files import message as _message
from driftloop_serving.domain.models import NotRegisteredYet, RegistryError, VersionInfo

__all__ = ["RegistryClient", "RegistryError", "VersionInfo"]


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
            files=version_files(body),
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
        try:
            return await download_version(
                self._client,
                name=info.name,
                version=info.version,
                files=info.files,
                target=self.cache / info.name / str(info.version),
            )
        except DownloadError as error:
            raise RegistryError(str(error)) from None
