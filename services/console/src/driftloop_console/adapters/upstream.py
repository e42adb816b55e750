"""The other services' REST APIs, read with one shared ``httpx.AsyncClient``.

Every call carries the viewer's credential (the console has none of its own), has a
short timeout, and fails as an :class:`UpstreamError` that says which service, at
which URL, and what went wrong, for the panel that needed it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

__all__ = ["SERVICES", "UpstreamError", "Upstreams"]

#: The services the console reads.
SERVICES = ("tracking", "registry", "trainer", "monitor", "serving")

#: Most bytes of an upstream answer quoted in an error message.
_QUOTED = 300


class UpstreamError(Exception):
    """An upstream call that failed: no answer, or an error status.

    Attributes:
        service: Which service (``monitor``).
        url: The URL called.
        status: The HTTP status of an error answer; None when there was no answer.
        detail: What went wrong.
    """

    def __init__(self, service: str, url: str, detail: str, status: int | None = None) -> None:
        self.service = service
        self.url = url
        self.status = status
        self.detail = detail
        super().__init__(str(self))

    def __str__(self) -> str:
        if self.status is None:
            return f"{self.service} at {self.url} did not answer: {self.detail}"
        return f"{self.service} at {self.url} answered {self.status}: {self.detail}"

    @property
    def denied(self) -> bool:
        """The upstream refused the viewer's credential or role (401/403)."""
        return self.status in (401, 403)


def _message_of(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:_QUOTED].strip() or response.reason_phrase
    if isinstance(body, dict):
        for key in ("message", "detail", "error"):
            if key in body:
                return str(body[key])[:_QUOTED]
    return str(body)[:_QUOTED]


class Upstreams:
    """One keep-alive connection pool to every upstream (a resource of the app).

    Args:
        urls: Base URL by service name.
        timeout: Seconds per call (connect, read, write, pool).
        transport: An httpx transport (tests route calls to in-process apps).
    """

    def __init__(
        self,
        urls: Mapping[str, str],
        *,
        timeout: float,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.urls = {name: url.rstrip("/") for name, url in urls.items()}
        self.timeout = timeout
        self._transport = transport
        self._client: httpx.AsyncClient | None = None

    async def start(self) -> None:
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(self.timeout),
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=50),
            transport=self._transport,
            follow_redirects=False,
        )

    async def stop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    def url(self, service: str, path: str) -> str:
        """The absolute URL of ``path`` on ``service``."""
        return f"{self.urls[service]}{path}"

    async def request(
        self,
        service: str,
        method: str,
        path: str,
        *,
        credential: str | None,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
    ) -> httpx.Response:
        """Call ``service``; the answer when its status is below 400.

        Args:
            service: One of :data:`SERVICES`.
            method: HTTP method.
            path: Path on the service, with a leading slash.
            credential: The viewer's ``Authorization`` header value, forwarded as is.
            params: Query parameters (None values left out).
            json: A JSON body.

        Raises:
            UpstreamError: No answer in time, or a status of 400 or more.
        """
        if self._client is None:  # used before the app's lifespan started it
            await self.start()
        assert self._client is not None
        url = self.url(service, path)
        headers = {"Authorization": credential} if credential else {}
        query = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            response = await self._client.request(
                method, url, params=query, json=json, headers=headers
            )
        except httpx.TimeoutException:
            raise UpstreamError(service, url, f"no answer within {self.timeout:g} s") from None
        except httpx.HTTPError as error:
            raise UpstreamError(service, url, f"{type(error).__name__}: {error}") from None
        if response.status_code >= 400:
            raise UpstreamError(service, url, _message_of(response), response.status_code)
        return response

    async def get_json(
        self,
        service: str,
        path: str,
        *,
        credential: str | None,
        params: Mapping[str, Any] | None = None,
    ) -> Any:
        """GET ``path`` on ``service`` and decode its JSON answer."""
        response = await self.request(service, "GET", path, credential=credential, params=params)
        try:
            return response.json()
        except ValueError:
            raise UpstreamError(
                service, self.url(service, path), "the answer is not JSON", response.status_code
            ) from None

    async def get_text(
        self,
        service: str,
        path: str,
        *,
        credential: str | None,
        params: Mapping[str, Any] | None = None,
    ) -> str:
        """GET ``path`` on ``service`` as text."""
        response = await self.request(service, "GET", path, credential=credential, params=params)
        return response.text
