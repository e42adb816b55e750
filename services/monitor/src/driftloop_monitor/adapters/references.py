"""Where a model version's reference data comes from when it becomes champion.

The use cases see a source as ``ReferenceSourcePort`` (``service_layer/ports.py``);
:class:`ReferenceSource` is the adapters' base (with the ``start``/``stop`` the app's
lifespan calls), and three adapters implement it:

- :class:`LineageSource` (the default) follows the version's lineage: the registry names
  the run that produced the version, the run's ``driftloop.reference_data`` tag names the
  sample of training inputs the training job logged, and the sample is downloaded from
  there (the tracking service's artifact proxy, any HTTP server, or a local file).
- :class:`UriTemplateSource` fills a configured URL or path template from the
  ``alias.set`` event, for training jobs that put their sample somewhere of their own.
- :class:`NoSource` fetches nothing: reference data is uploaded through the REST API.

A source answers None when the version has no reference data to fetch, and raises when a
location is known but cannot be read right now (the stream retries the event, then
dead-letters it).
"""

from __future__ import annotations

import abc
import asyncio
import io
import json
import logging
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import httpx
import pandas as pd  # type: ignore[import-untyped]
import yaml

from driftloop_kit.artifacts import clean_path
from driftloop_kit.errors import InvalidInput
from driftloop_kit.model_files import storage_key_of

log = logging.getLogger(__name__)

#: The tag (on the run, or on the version to override it) naming the reference sample.
REFERENCE_DATA_TAG = "driftloop.reference_data"

#: MLflow's artifact proxy, below a tracking (or registry) base URL.
ARTIFACTS_API = "/api/2.0/mlflow-artifacts/artifacts"

_PARQUET_MAGIC = b"PAR1"


class UnusableLocation(ValueError):
    """A reference location the monitor can never read (unsupported scheme, unsafe path)."""


class ReferenceFetchError(RuntimeError):
    """A known location that could not be read now (a service down or refusing)."""


class ReferenceSource(abc.ABC):
    """Finds the training sample of a model version."""

    async def start(self) -> None:  # noqa: B027 - optional hook, nothing to open by default
        """Open what the source needs (called by the app's lifespan)."""

    async def stop(self) -> None:  # noqa: B027 - optional hook, nothing to close by default
        """Close what :meth:`start` or the constructor opened."""

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


def allowed(target: str | Path, bases: tuple[str, ...], *, location: str) -> str:
    """``target`` if it is an HTTP(S) URL below one of ``bases`` (same scheme, host and
    port, and below the base's path).

    Raises:
        UnusableLocation: A local file, or a URL anywhere else.
    """
    if isinstance(target, Path):
        raise UnusableLocation(
            f"{location!r} is a file on the monitor's disk: a run's lineage may name files "
            "of tracking and the registry only; refused"
        )
    wanted = _origin(target)
    for base in bases:
        origin = _origin(base)
        if wanted[:3] == origin[:3] and wanted[3].startswith(origin[3].rstrip("/") + "/"):
            return target
    raise UnusableLocation(
        f"{location!r} ({target}) is not on tracking or the registry ({', '.join(bases)}); refused"
    )


def _origin(url: str) -> tuple[str, str, int, str]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        port = -1
    return scheme, (parts.hostname or "").lower(), port, parts.path or "/"


class _Reader:
    """Downloads a URL or reads a file, and reads CSV or Parquet from the bytes."""

    def __init__(
        self,
        *,
        timeout: float,
        transport: httpx.AsyncBaseTransport | None,
        max_bytes: int = 256 * 1024 * 1024,
        auth: httpx.Auth | None = None,
        auth_bases: tuple[str, ...] = (),
    ) -> None:
        self.client = httpx.AsyncClient(timeout=timeout, transport=transport)
        self.max_bytes = max_bytes
        self.auth = auth
        self.auth_bases = auth_bases

    def _auth_for(self, url: str) -> httpx.Auth | None:
        # The service's credential goes to the suite's own services, never elsewhere.
        trusted = any(url == base or url.startswith(base + "/") for base in self.auth_bases)
        return self.auth if trusted else None

    async def close(self) -> None:
        await self.client.aclose()

    async def get_json(self, url: str, params: dict[str, str]) -> dict[str, Any] | None:
        """The JSON body of ``GET url``; None for a 404."""
        response = await self._get(url, params=params)
        if response is None:
            return None
        body: dict[str, Any] = response.json()
        return body

    async def _get(self, url: str, params: dict[str, str] | None = None) -> httpx.Response | None:
        try:
            async with self.client.stream(
                "GET", url, params=params, auth=self._auth_for(url)
            ) as response:
                if response.status_code == 404:
                    return None
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > self.max_bytes:
                        raise UnusableLocation(
                            f"{url} is larger than {self.max_bytes} bytes; refused"
                        )
        except httpx.HTTPError as error:
            raise ReferenceFetchError(f"cannot reach {url}: {error!r}") from error
        # The body, read within the bound, as a response of its own (.content, .json()).
        response = httpx.Response(
            response.status_code,
            headers=response.headers,
            content=bytes(body),
            request=response.request,
        )
        if response.status_code >= 400:
            raise ReferenceFetchError(
                f"{url} answered {response.status_code}: {response.text[:300]}"
            )
        return response

    async def get_text(self, url: str) -> str | None:
        """The body of ``GET url`` as text; None for a 404."""
        response = await self._get(url)
        return None if response is None else response.text

    async def read(self, target: str | Path) -> pd.DataFrame | None:
        """The data at an HTTP(S) URL or a local path; None when it does not exist."""
        if isinstance(target, Path):
            try:
                blob = await asyncio.to_thread(target.read_bytes)
            except (FileNotFoundError, IsADirectoryError):
                return None
            return await asyncio.to_thread(_read, blob, _is_parquet(target.name))
        response = await self._get(target)
        if response is None:
            return None
        parquet = _is_parquet(urlsplit(target).path) or "parquet" in response.headers.get(
            "content-type", ""
        )
        return await asyncio.to_thread(_read, response.content, parquet)


class UriTemplateSource(ReferenceSource):
    """Reads ``template.format(model=..., version=..., run_id=...)`` over HTTP or from a file.

    CSV unless the data is Parquet (by its name, the server's content type or its bytes).
    """

    def __init__(
        self,
        template: str,
        *,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.template = template
        self._reader = _Reader(timeout=timeout, transport=transport)

    async def stop(self) -> None:
        await self._reader.close()

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
        parsed = urlsplit(location)
        target: str | Path
        if parsed.scheme in ("http", "https"):
            target = location
        else:
            # The operator's own template: a relative path is relative to the working folder.
            target = Path(unquote(parsed.path) if parsed.scheme == "file" else location)
        data = await self._reader.read(target)
        return None if data is None else (data, location)


class LineageSource(ReferenceSource):
    """The sample the version's training run logged, found through registry and tracking.

    The location is the ``driftloop.reference_data`` tag: the version's own tag if it has
    one (an override, as in the registry's lineage), else the tag of the version's run as
    tracking has it now, else the lineage the registry recorded at registration. It may be:

    - ``mlflow-artifacts:/<path>``: the tracking service's artifact proxy
      (``mlflow-artifacts://<host:port>/<path>`` names another server);
    - ``runs:/<run id>/<path>``: a file below that run's artifact URI;
    - ``http(s)://...``: downloaded, if it is below one of the allowed bases;
    - a relative path: a file of the registered version (the registry's lineage contract),
      downloaded from the registry. ``..`` and other escapes are refused.

    Whoever can tag a run names this location, so it is fetched only from the tracking
    and registry services (and bases the operator adds, ``allowed_bases``): a file of the
    monitor's disk (``file:``, an absolute path), another host (a cloud's metadata
    address, an internal service) or another port is refused as an
    :class:`UnusableLocation` (the event then goes to the dead-letter topic with the
    reason), and a download stops at ``max_bytes``.

    CSV unless the data is Parquet (by its name, the server's content type or its bytes).
    The columns the version's signature (its ``MLmodel`` file in the registry) declares
    ``string`` are read as strings (:func:`typed_by_signature`): a CSV sample's zip codes
    are not numbers to the monitor when the model takes them as strings, and the
    predictions' typed records fit them.

    Args:
        registry_url: Base URL of the registry, e.g. ``http://127.0.0.1:5001``.
        tracking_url: Base URL of the tracking service, e.g. ``http://127.0.0.1:5000``.
        timeout: Seconds per request.
        transport: An httpx transport (tests pass a mock or an app's ASGI transport).
        allowed_bases: URLs besides tracking's and the registry's that samples may be
            downloaded from (e.g. an object store's HTTPS endpoint).
        max_bytes: Largest sample downloaded.
        auth: The monitor's credential, sent to tracking and the registry only.
    """

    def __init__(
        self,
        *,
        registry_url: str,
        tracking_url: str,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
        allowed_bases: tuple[str, ...] = (),
        max_bytes: int = 256 * 1024 * 1024,
        auth: httpx.Auth | None = None,
    ) -> None:
        self.registry_url = registry_url.rstrip("/")
        self.tracking_url = tracking_url.rstrip("/")
        self.allowed_bases = (self.tracking_url, self.registry_url, *allowed_bases)
        self._reader = _Reader(
            timeout=timeout,
            transport=transport,
            max_bytes=max_bytes,
            auth=auth,
            auth_bases=(self.tracking_url, self.registry_url),
        )

    async def stop(self) -> None:
        await self._reader.close()

    async def fetch(
        self, *, model: str, version: int, run_id: str, source: str
    ) -> tuple[pd.DataFrame, str] | None:
        found = await self._reader.get_json(
            f"{self.registry_url}/api/2.0/mlflow/model-versions/get",
            {"name": model, "version": str(version)},
        )
        described: dict[str, Any] = (found or {}).get("model_version") or {}
        run_id = str(described.get("run_id") or run_id or "")
        run = await self._run(run_id) if run_id else None
        run_tags = _pairs(((run or {}).get("data") or {}).get("tags"))
        lineage: dict[str, Any] = described.get("lineage") or {}
        location = (
            _pairs(described.get("tags")).get(REFERENCE_DATA_TAG)
            or run_tags.get(REFERENCE_DATA_TAG)
            or str(lineage.get("reference_data") or "")
        )
        if not location:
            log.info(
                "the version's lineage names no reference data",
                extra={"model": model, "version": version, "run_id": run_id},
            )
            return None
        target = await self.target(location, model=model, version=version, run=run)
        allowed(target, self.allowed_bases, location=location)
        signature = await self.signature(model=model, version=version)
        data = await self._reader.read(target)
        if data is None:
            log.warning(
                "the reference data the lineage names does not exist",
                extra={"model": model, "version": version, "location": location},
            )
            return None
        return typed_by_signature(data, signature), location

    async def signature(self, *, model: str, version: int) -> dict[str, str]:
        """Column -> type (``string``, ``long``...) of the version's MLflow signature;
        empty when the version has no ``MLmodel`` file or no column signature.

        Raises:
            ReferenceFetchError: The registry did not answer.
        """
        try:
            url = await self._version_file("MLmodel", model=model, version=version)
        except UnusableLocation:
            return {}
        text = await self._reader.get_text(url)
        return signature_types(text) if text else {}

    async def _run(self, run_id: str) -> dict[str, Any] | None:
        """The run as tracking's ``runs/get`` returns it; None if tracking has no such run."""
        body = await self._reader.get_json(
            f"{self.tracking_url}/api/2.0/mlflow/runs/get", {"run_id": run_id}
        )
        run: dict[str, Any] | None = (body or {}).get("run")
        return run

    async def target(
        self, location: str, *, model: str, version: int, run: dict[str, Any] | None = None
    ) -> str | Path:
        """The URL or file to read for ``location``.

        Args:
            location: The tag's value.
            model: The version's model (for a path relative to its files).
            version: The version.
            run: The version's run, if already read (for ``runs:/`` of that run).

        Raises:
            UnusableLocation: The location can never be read.
            ReferenceFetchError: A service needed to resolve it did not answer.
        """
        parsed = urlsplit(location)
        if parsed.scheme == "runs":
            run_id, _, path = f"{parsed.netloc}{parsed.path}".lstrip("/").partition("/")
            return await self._run_artifact(run_id, path, run)
        if not parsed.scheme and not location.startswith("/"):
            return await self._version_file(location, model=model, version=version)
        return resolve_location(location, tracking_url=self.tracking_url)

    async def _run_artifact(self, run_id: str, path: str, run: dict[str, Any] | None) -> str | Path:
        if not run_id or not path.strip("/"):
            raise UnusableLocation(f"runs:/{run_id}/{path} names no file; use runs:/<run>/<path>")
        info = (run or {}).get("info") or {}
        if info.get("run_id") != run_id:
            info = ((await self._run(run_id)) or {}).get("info") or {}
        root = str(info.get("artifact_uri") or "")
        if not root:
            raise UnusableLocation(f"tracking has no run {run_id!r} with an artifact URI")
        resolved = f"{root.rstrip('/')}/{path.lstrip('/')}"
        if urlsplit(resolved).scheme == "runs":  # tracking would never say so; no loops
            raise UnusableLocation(f"run {run_id!r} has artifact URI {root!r}")
        return resolve_location(resolved, tracking_url=self.tracking_url)

    async def _version_file(self, path: str, *, model: str, version: int) -> str:
        try:
            relative = clean_path(path)
        except InvalidInput:
            raise UnusableLocation(
                f"reference data at {path!r} leaves the version's files; refused"
            ) from None
        if not relative:
            raise UnusableLocation("an empty reference data path names no file")
        body = await self._reader.get_json(
            f"{self.registry_url}/api/2.0/mlflow/model-versions/get-download-uri",
            {"name": model, "version": str(version)},
        )
        uri = str((body or {}).get("artifact_uri") or "")
        storage_key = storage_key_of(uri) if uri.startswith(("mlflow-artifacts:", "http")) else ""
        if not storage_key:
            raise UnusableLocation(
                f"the registry gives no file location for {model!r} version {version} "
                f"({uri or 'no answer'}), so {path!r} cannot be read"
            )
        # The registry's own URL, not the host in its URI (that is its public address).
        return f"{self.registry_url}{ARTIFACTS_API}/{quote(f'{storage_key}/{relative}')}"


def resolve_location(location: str, *, tracking_url: str) -> str | Path:
    """The URL or file behind an absolute reference data location.

    Args:
        location: ``mlflow-artifacts:/<path>`` (tracking's artifact proxy),
            ``mlflow-artifacts://<host:port>/<path>`` (that server's proxy, reached with the
            tracking URL's scheme), ``http(s)://...``, ``file://...`` or an absolute path.
        tracking_url: Base URL of the tracking service.

    Returns:
        An HTTP(S) URL to download, or a local path to read.

    Raises:
        UnusableLocation: A relative path, another scheme (``s3://`` ...), or an
            ``mlflow-artifacts:`` URI naming no file.
    """
    parsed = urlsplit(location)
    scheme = parsed.scheme.lower()
    if scheme == "mlflow-artifacts":
        path = unquote(parsed.path).lstrip("/")
        if not path:
            raise UnusableLocation(f"{location!r} names no file")
        base = tracking_url.rstrip("/")
        if parsed.netloc:
            base = f"{urlsplit(base).scheme or 'http'}://{parsed.netloc}"
        return f"{base}{ARTIFACTS_API}/{quote(path)}"
    if scheme in ("http", "https"):
        return location
    if scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise UnusableLocation(f"{location!r} is a file on another host")
        return Path(unquote(parsed.path))
    if not scheme:
        if not location.startswith("/"):
            raise UnusableLocation(
                f"{location!r} is a relative path; give a URI or an absolute path"
            )
        return Path(location)
    raise UnusableLocation(
        f"{location!r}: the monitor reads mlflow-artifacts:, runs:, http(s):, file: and "
        f"local paths, not {scheme}:"
    )


def signature_types(mlmodel: str) -> dict[str, str]:
    """Column -> type of an ``MLmodel`` file's input signature (MLflow ``ColSpec``s);
    empty for a tensor signature, no signature, or a file that does not parse."""
    try:
        document = yaml.safe_load(mlmodel)
        specs = json.loads(((document or {}).get("signature") or {}).get("inputs") or "[]")
    except (yaml.YAMLError, ValueError, AttributeError, TypeError):
        return {}
    if not isinstance(specs, list):
        return {}
    return {
        str(spec["name"]): str(spec.get("type", ""))
        for spec in specs
        if isinstance(spec, dict) and spec.get("name") and isinstance(spec.get("type"), str)
    }


def typed_by_signature(data: pd.DataFrame, signature: dict[str, str]) -> pd.DataFrame:
    """``data`` with the signature's ``string`` columns as strings (missing values kept).

    A CSV reader makes ``02139`` a number; the model takes it as a string, serving logs it
    as one, and the monitor must test it as a category of strings.
    """
    wanted = [c for c, kind in signature.items() if kind == "string" and c in data.columns]
    if not wanted:
        return data
    data = data.copy()
    for column in wanted:
        data[column] = data[column].map(_text, na_action="ignore").astype(object)
    return data


def _text(value: Any) -> str:
    # A CSV column of whole numbers with a gap is read as floats: 2139.0 was "2139".
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _pairs(items: Any) -> dict[str, str]:
    """MLflow's ``[{"key": ..., "value": ...}]`` as a dict."""
    return {str(item["key"]): str(item.get("value", "")) for item in items or () if "key" in item}


def _is_parquet(name: str) -> bool:
    return name.lower().endswith((".parquet", ".pq"))


def _read(blob: bytes, parquet: bool) -> pd.DataFrame:
    if parquet or blob.startswith(_PARQUET_MAGIC):
        return pd.read_parquet(io.BytesIO(blob))
    return pd.read_csv(io.BytesIO(blob))


def reference_source(
    kind: str,
    *,
    template: str | None = None,
    registry_url: str = "http://127.0.0.1:5001",
    tracking_url: str = "http://127.0.0.1:5000",
    allowed_bases: tuple[str, ...] = (),
    max_bytes: int = 256 * 1024 * 1024,
    auth: httpx.Auth | None = None,
) -> ReferenceSource:
    """The source the settings ask for: ``lineage``, ``template`` or ``none``.

    Raises:
        ValueError: An unknown kind, or ``template`` without a template.
    """
    if kind == "lineage":
        return LineageSource(
            registry_url=registry_url,
            tracking_url=tracking_url,
            allowed_bases=allowed_bases,
            max_bytes=max_bytes,
            auth=auth,
        )
    if kind == "template":
        if not template:
            raise ValueError("the template reference source needs a URI template")
        return UriTemplateSource(template)
    if kind == "none":
        return NoSource()
    raise ValueError(f"unknown reference source {kind!r}")
