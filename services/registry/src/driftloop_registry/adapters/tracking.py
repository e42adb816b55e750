"""The tracking service as the registry sees it: runs for lineage, artifacts to copy.

A model version's ``source`` names files that tracking stores (``models:/m-...``,
``runs:/<run>/<path>``, ``mlflow-artifacts:/...``). At registration the registry
resolves it to a path in tracking's artifact store, lists the files below it and
streams each one, over tracking's own MLflow REST API.
"""

from __future__ import annotations

import posixpath
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import httpx

from driftloop_kit.artifacts import clean_path, proxied_path
from driftloop_kit.errors import InvalidInput, NotFound, Unavailable

_API = "/api/2.0/mlflow"
_ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"


class TrackingClient:
    """Reads runs, logged models and artifacts from the tracking service.

    Args:
        base_url: The tracking service's URL, e.g. ``http://127.0.0.1:5000``.
        timeout: Seconds per request.
        transport: An httpx transport (tests pass the app's ASGI transport).
    """

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 60.0,
        transport: httpx.AsyncBaseTransport | None = None,
        auth: httpx.Auth | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._client = httpx.AsyncClient(
            base_url=self.base_url, timeout=timeout, transport=transport, auth=auth
        )

    async def start(self) -> None:
        """Nothing to open: connections are made on first use."""

    async def stop(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()

    async def _get(self, url: str, params: dict[str, str] | None = None) -> dict[str, Any]:
        try:
            response = await self._client.get(url, params=params)
        except httpx.HTTPError as error:
            raise Unavailable(
                f"The tracking service at {self.base_url} is unreachable: {error}"
            ) from None
        if response.status_code == 404:
            raise NotFound(_message(response))
        if response.status_code >= 400:
            raise InvalidInput(f"The tracking service refused {url}: {_message(response)}")
        body: dict[str, Any] = response.json()
        return body

    async def get_run(self, run_id: str) -> dict[str, Any]:
        """A run as MLflow's ``runs/get`` returns it (``info``, ``data``, ``inputs``).

        Raises:
            InvalidInput: If tracking has no such run (the version would name a run
                that does not exist).
        """
        try:
            body = await self._get(f"{_API}/runs/get", {"run_id": run_id})
        except NotFound:
            raise InvalidInput(f"Run '{run_id}' does not exist in tracking.") from None
        run: dict[str, Any] = body["run"]
        return run

    async def get_logged_model(self, model_id: str) -> dict[str, Any]:
        """A logged model (MLflow 3's ``models:/m-...``) with its ``info`` and ``data``."""
        try:
            body = await self._get(f"{_API}/logged-models/{model_id}")
        except NotFound:
            raise InvalidInput(f"Logged model '{model_id}' does not exist in tracking.") from None
        model: dict[str, Any] = body["model"]
        return model

    async def resolve(self, source: str) -> tuple[str, str | None]:
        """Where in tracking's artifact store ``source`` points, and the run it names.

        Args:
            source: ``models:/<model_id>``, ``runs:/<run_id>/<path>``,
                ``mlflow-artifacts:/<path>`` or tracking's artifact URL.

        Returns:
            The path below tracking's artifact root, and the run id (or ``None``).

        Raises:
            InvalidInput: If the source is not one of those, or names nothing.
        """
        parts = urlsplit(source)
        if parts.scheme == "models":
            model_id = (parts.netloc + parts.path).strip("/")
            model = await self.get_logged_model(model_id)
            info = model.get("info", {})
            return _proxied(str(info.get("artifact_uri", "")), source), info.get("source_run_id")
        if parts.scheme == "runs":
            run_id, _, rest = source.removeprefix("runs:").lstrip("/").partition("/")
            run = await self.get_run(run_id)
            root = _proxied(str(run["info"].get("artifact_uri", "")), source)
            relative = clean_path(rest.strip("/"))
            return (posixpath.join(root, relative) if relative else root), run_id
        path = proxied_path(source)
        if path is None:
            raise InvalidInput(
                f"Invalid model version source '{source}': expected models:/<model_id>, "
                "runs:/<run_id>/<path> or an mlflow-artifacts URI of the tracking service."
            )
        return clean_path(path), None

    async def list_files(self, path: str) -> list[tuple[str, int]]:
        """Every file below ``path`` (recursively): its path relative to ``path``, its size."""
        found: list[tuple[str, int]] = []
        pending = [""]
        while pending:
            relative = pending.pop()
            listed = await self._get(_ARTIFACTS, {"path": posixpath.join(path, relative)})
            for entry in listed.get("files", []):
                child = posixpath.join(relative, entry["path"]) if relative else entry["path"]
                if entry.get("is_dir"):
                    pending.append(child)
                else:
                    found.append((child, int(entry.get("file_size") or 0)))
        return sorted(found)

    async def stream(self, path: str) -> AsyncIterator[bytes]:
        """The bytes of one artifact file, streamed.

        Raises:
            Unavailable: If tracking cannot be reached or fails to send the file.
        """
        url = f"{_ARTIFACTS}/{path}"
        try:
            async with self._client.stream("GET", url) as response:
                if response.status_code >= 400:
                    await response.aread()
                    raise InvalidInput(
                        f"Cannot read artifact '{path}' from tracking: {_message(response)}"
                    )
                async for chunk in response.aiter_bytes():
                    yield chunk
        except httpx.HTTPError as error:
            raise Unavailable(f"Reading artifact '{path}' from tracking failed: {error}") from None


def _proxied(artifact_uri: str, source: str) -> str:
    path = proxied_path(artifact_uri)
    if path is None:
        raise InvalidInput(
            f"The files of '{source}' are at {artifact_uri!r}, which the tracking service "
            "does not proxy; the registry can only copy proxied artifacts."
        )
    return clean_path(path)


def _message(response: httpx.Response) -> str:
    try:
        return str(response.json().get("message") or response.text)
    except ValueError:
        return response.text or f"HTTP {response.status_code}"
