"""A speed shortcut past httpx: POSTs to one server over pooled HTTP/1.1 keep-alive connections.

What it replaces: ``httpx.AsyncClient`` (and httpcore, h11 and anyio under it) on
serving's call to the features service, the one HTTP call on the path of every keyed
prediction. For a 1-entity lookup httpx spent 0.8-1.0 ms of CPU per request in the
client alone, this client 0.06 ms (bench/README.md, "keyed"): httpx builds a request
model and merges URLs, runs an auth flow, parses the answer with h11 in Python, logs
every request at INFO, and writes the headers and the body in two writes (two TCP
segments, two wake-ups of the server).

What it does: one :class:`asyncio.Protocol` per connection, the request written in one
write, the answer parsed by httptools (llhttp, the parser uvicorn serves with); idle
connections are kept for the next request (at most ``max_idle``), at most
``max_connections`` are open at once, and ``timeout`` bounds a request from the wait
for a connection to the last byte of its answer. A request sent on a kept connection
that the server had closed meanwhile (its keep-alive timeout crossing the request) is
sent once more on a new connection when not a byte of its answer came back: use it
for requests that are safe to repeat (the online read changes nothing).

What it does not do: redirects, proxies, cookies, compression, HTTP/2, streamed
bodies. An answer with neither ``Content-Length`` nor ``chunked`` ends when the server
closes the connection. ``tests/unit/serving/test_keepalive.py`` pins the httptools
version it was checked against.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import cast
from urllib.parse import urlsplit

import httptools

__all__ = ["BadAnswer", "KeepAliveClient", "NotAnswered", "Reply"]


class NotAnswered(ConnectionError):
    """The server closed the connection before answering."""


class BadAnswer(ConnectionError):
    """The server answered something that is not HTTP/1.x."""


@dataclass(frozen=True, slots=True)
class Reply:
    """An answer: its status, its body and its ``Content-Type`` (empty when not given)."""

    status: int
    body: bytes
    content_type: str = ""


class _Connection(asyncio.Protocol):
    """One connection: sends a request, parses its answer, and says whether it can be reused."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[Reply] | None = None
        self.closed = False
        self.received = False  # a byte of the current answer came
        self.chunks: list[bytes] = []
        self.content_type = ""
        self.framed = False  # Content-Length or Transfer-Encoding: the answer ends by itself
        self.headers_done = False
        self.keep_alive = True

    @property
    def usable(self) -> bool:
        """Open, idle and not closing."""
        transport = self.transport
        return not self.closed and transport is not None and not transport.is_closing()

    async def exchange(self, request: bytes) -> Reply:
        """Send ``request`` (head and body) and wait for its answer; on any failure or
        cancellation the connection is closed (an answer may be half read)."""
        assert self.transport is not None  # set by connection_made before it is used
        waiter: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self.waiter = waiter
        self.received = False
        try:
            self.transport.write(request)
            return await waiter
        except BaseException:
            self.close()
            raise
        finally:
            self.waiter = None

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    # -- asyncio.Protocol --------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but have its methods.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self.waiter is None or self.waiter.done():
            self.close()  # bytes nobody asked for: the connection cannot be trusted
            return
        self.received = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as error:
            self._finish(error=BadAnswer(f"the server's answer is not HTTP/1.x: {error}"))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.headers_done and not self.framed:  # read until the close: it is the end
            self._finish()
        elif not self.received:
            self._finish(error=NotAnswered("the server closed the connection without answering"))
        else:
            self._finish(error=NotAnswered("the server closed the connection while answering"))

    # -- httptools callbacks -----------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        if name == b"content-type":
            self.content_type = value.decode("latin-1")
        elif name in (b"content-length", b"transfer-encoding"):
            self.framed = True

    def on_headers_complete(self) -> None:
        self.headers_done = True
        self.keep_alive = self.parser.should_keep_alive()

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)

    def on_message_complete(self) -> None:
        self._finish()
        if not self.keep_alive:
            self.close()

    def _finish(self, *, error: Exception | None = None) -> None:
        """Hand the answer (or ``error``) to the waiting request; ready for the next."""
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            if error is not None:
                waiter.set_exception(error)
            else:
                waiter.set_result(
                    Reply(self.parser.get_status_code(), b"".join(self.chunks), self.content_type)
                )
        self.chunks = []
        self.content_type = ""
        self.framed = self.headers_done = False


class KeepAliveClient:
    """POSTs to the server at ``base_url`` over pooled keep-alive connections.

    Args:
        base_url: ``http://host:port[/prefix]`` or ``https://...``.
        timeout: Seconds one request may take, waiting for a connection included.
        max_connections: Connections open at once; more requests wait for one.
        max_idle: Idle connections kept for the next requests.
        ssl_context: For ``https`` (default: the system's trust, hostname checked).

    Raises:
        ValueError: ``base_url`` is not an http(s) URL with a host.
    """

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float,
        max_connections: int = 100,
        max_idle: int = 20,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{base_url!r} is not an http(s) URL with a host")
        secure = parts.scheme == "https"
        self.timeout = timeout
        self.max_idle = max_idle
        self._host = parts.hostname
        self._port = parts.port or (443 if secure else 80)
        self._ssl = (ssl_context or ssl.create_default_context()) if secure else None
        self._prefix = parts.path.rstrip("/")
        self._host_header = parts.netloc.rpartition("@")[2]
        self._idle: list[_Connection] = []
        self._slots = asyncio.Semaphore(max_connections)
        self._closed = False

    async def post(self, path: str, body: bytes, headers: Mapping[str, str]) -> Reply:
        """``POST path`` with ``body`` and ``headers`` (``Host`` and ``Content-Length``
        are added); the answer, whatever its status.

        Raises:
            TimeoutError: No answer within ``timeout`` seconds.
            OSError: The server cannot be reached, or closed the connection
                (:class:`NotAnswered`), or did not answer HTTP (:class:`BadAnswer`).
            ValueError: A header would break the request (a line break in it).
        """
        request = self._head(path, len(body), headers) + body
        async with asyncio.timeout(self.timeout), self._slots:
            connection = self._reusable()
            if connection is not None:
                try:
                    return self._done(connection, await connection.exchange(request))
                except NotAnswered:
                    if connection.received:
                        raise
                    # Closed by the server while idle: the request never got there.
            connection = await self._connect()
            return self._done(connection, await connection.exchange(request))

    async def aclose(self) -> None:
        """Close the idle connections; those in use close when their request ends."""
        self._closed = True
        idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()

    def _head(self, path: str, length: int, headers: Mapping[str, str]) -> bytes:
        lines = [
            f"POST {self._prefix}{path} HTTP/1.1",
            f"Host: {self._host_header}",
            f"Content-Length: {length}",
        ]
        for name, value in headers.items():
            if any(c in name or c in value for c in "\r\n"):
                raise ValueError(f"header {name!r} holds a line break")
            lines.append(f"{name}: {value}")
        lines.append("\r\n")
        return "\r\n".join(lines).encode("latin-1")

    def _reusable(self) -> _Connection | None:
        while self._idle:
            connection = self._idle.pop()
            if connection.usable:
                return connection
        return None

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        _, connection = await loop.create_connection(
            _Connection, self._host, self._port, ssl=self._ssl
        )
        return connection

    def _done(self, connection: _Connection, reply: Reply) -> Reply:
        if connection.usable and not self._closed and len(self._idle) < self.max_idle:
            self._idle.append(connection)
        else:
            connection.close()
        return reply
