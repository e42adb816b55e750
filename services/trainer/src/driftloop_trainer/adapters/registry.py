"""The registry, for the evaluation gate: who is champion, and moving aliases."""

from __future__ import annotations

from typing import Any

import httpx

from driftloop_kit.errors import Conflict, Unavailable

_ALIAS = "/api/2.0/mlflow/registered-models/alias"
_VERSION = "/api/2.0/mlflow/model-versions/get"
_PROMOTE = "/api/2.0/driftloop/aliases/promote"


class RegistryClient:
    """Reads and moves aliases over the registry's MLflow-compatible API (the use cases'
    ``AliasRegistryPort``).

    Args:
        base_url: The registry's base URL.
        timeout: Seconds per request.
    """

    def __init__(
        self, base_url: str, *, timeout: float = 30.0, auth: httpx.Auth | None = None
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.auth = auth
        self._client: httpx.AsyncClient | None = None

    async def start(self) -> None:
        """Open the connection pool."""
        self._client = httpx.AsyncClient(
            base_url=self.base_url, timeout=self.timeout, auth=self.auth
        )

    async def stop(self) -> None:
        """Close it."""
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            raise RuntimeError("the registry client is not started")
        return self._client

    async def alias_version(self, name: str, alias: str) -> int | None:
        """The version ``alias`` names, or None when the model or alias does not exist."""
        response = await self.client.get(_ALIAS, params={"name": name, "alias": alias})
        if response.status_code == 404:
            return None
        _check(response)
        return int(response.json()["model_version"]["version"])

    async def promote(
        self,
        name: str,
        alias: str,
        version: int,
        *,
        expected: int | None,
        previous_alias: str | None = None,
        cause: dict[str, str] | None = None,
    ) -> None:
        """Move ``alias`` (and ``previous_alias``) with the registry's compare-and-set.

        Raises:
            Conflict: ``alias`` no longer points to ``expected``; nothing moved.
        """
        body: dict[str, Any] = {
            "name": name,
            "alias": alias,
            "version": str(version),
            "expected_version": expected,
            "previous_alias": previous_alias,
        }
        if cause:
            body["cause"] = cause
        response = await self.client.post(_PROMOTE, json=body)
        if response.status_code == 409:
            raise Conflict(_message(response))
        _check(response)


class ResultEvidence:
    """What a job actually did, read back from the registry and tracking (the use cases'
    ``ResultEvidencePort``): a job's report is checked against it, not taken on trust.

    Args:
        registry: The registry client (started by the app).
        tracking_url: The tracking service's base URL.
        timeout: Seconds per request.
        auth: The trainer's credential.
    """

    def __init__(
        self,
        registry: RegistryClient,
        tracking_url: str,
        *,
        timeout: float = 30.0,
        auth: httpx.Auth | None = None,
    ) -> None:
        self.registry = registry
        self.tracking_url = tracking_url.rstrip("/")
        self.timeout = timeout
        self.auth = auth

    async def version_run(self, name: str, version: int) -> str | None:
        """The run id the registry holds for ``name`` version ``version``; None if absent."""
        response = await self.registry.client.get(
            _VERSION, params={"name": name, "version": str(version)}
        )
        if response.status_code == 404:
            return None
        _check(response)
        return str(response.json()["model_version"].get("run_id") or "")

    async def run_metrics(self, run_id: str) -> dict[str, float] | None:
        """The latest value of each metric tracking holds for ``run_id``; None if absent."""
        async with httpx.AsyncClient(timeout=self.timeout, auth=self.auth) as client:
            response = await client.get(
                f"{self.tracking_url}/api/2.0/mlflow/runs/get", params={"run_id": run_id}
            )
        if response.status_code == 404:
            return None
        _check(response)
        metrics = response.json()["run"]["data"].get("metrics", [])
        return {str(m["key"]): float(m["value"]) for m in metrics}


def _message(response: httpx.Response) -> str:
    try:
        return str(response.json().get("message") or response.text)
    except ValueError:
        return response.text


def _check(response: httpx.Response) -> None:
    if response.status_code >= 500:
        raise Unavailable(f"registry answered {response.status_code}: {response.text[:300]}")
    response.raise_for_status()
