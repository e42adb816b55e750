"""Where a model version's reference data comes from when it becomes champion.

:class:`ReferenceSource` is the port. The registry's lineage (the run that produced the
version, its logged datasets) will say where the training sample is; until that
integration exists, :class:`UriTemplateSource` fetches from a configured URL or path
template filled in from the ``alias.set`` event, and :class:`NoSource` fetches nothing
(reference data is then uploaded through the REST API).
"""

from __future__ import annotations

import abc
import asyncio
import io
from pathlib import Path
from urllib.parse import quote, urlparse

import httpx
import pandas as pd  # type: ignore[import-untyped]


class ReferenceSource(abc.ABC):
    """Finds the training sample of a model version."""

    @abc.abstractmethod
    async def fetch(
        self, *, model: str, version: int, run_id: str, source: str
    ) -> tuple[pd.DataFrame, str] | None:
        """The sample and where it came from, or None when there is none to fetch.

        Args:
            model: Registered model name.
            version: Model version.
            run_id: Tracking run that produced the version (may be empty).
            source: The version's artifact URI, e.g. ``runs:/<run id>/model``.

        Raises:
            Exception: When a location is known but reading it fails (the caller retries).
        """


class NoSource(ReferenceSource):
    """No location configured: reference data comes through the REST API only."""

    async def fetch(
        self, *, model: str, version: int, run_id: str, source: str
    ) -> tuple[pd.DataFrame, str] | None:
        return None


class UriTemplateSource(ReferenceSource):
    """Reads ``template.format(model=..., version=..., run_id=...)`` over HTTP or from a file.

    CSV unless the path ends in ``.parquet`` / ``.pq`` (or the server says Parquet).
    """

    def __init__(self, template: str, *, timeout: float = 30.0) -> None:
        self.template = template
        self.timeout = timeout

    def location(self, *, model: str, version: int, run_id: str) -> str | None:
        """The filled-in template; None when it needs a run id the event lacks."""
        if "{run_id}" in self.template and not run_id:
            return None
        return self.template.format(model=quote(model, safe=""), version=version, run_id=run_id)

    async def fetch(
        self, *, model: str, version: int, run_id: str, source: str
    ) -> tuple[pd.DataFrame, str] | None:
        location = self.location(model=model, version=version, run_id=run_id)
        if location is None:
            return None
        parsed = urlparse(location)
        if parsed.scheme in ("http", "https"):
            async with httpx.AsyncClient(timeout=self.timeout) as client:
                response = await client.get(location)
            if response.status_code == 404:
                return None
            response.raise_for_status()
            parquet = _is_parquet(parsed.path) or "parquet" in response.headers.get(
                "content-type", ""
            )
            return await asyncio.to_thread(_read, response.content, parquet), location
        path = Path(parsed.path if parsed.scheme == "file" else location)
        try:
            blob = await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:
            return None
        return await asyncio.to_thread(_read, blob, _is_parquet(path.name)), location


def _is_parquet(name: str) -> bool:
    return name.lower().endswith((".parquet", ".pq"))


def _read(blob: bytes, parquet: bool) -> pd.DataFrame:
    return pd.read_parquet(io.BytesIO(blob)) if parquet else pd.read_csv(io.BytesIO(blob))


def reference_source(template: str | None) -> ReferenceSource:
    """The source the settings ask for."""
    return UriTemplateSource(template) if template else NoSource()
