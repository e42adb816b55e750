"""Fakes of the serving service's ports (``driftloop_serving.service_layer.ports``)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from pathlib import Path
from types import EllipsisType
from typing import Any

from driftloop_events.envelope import KafkaRecord
from driftloop_serving.domain.entities import Entities, FeatureSource
from driftloop_serving.domain.models import (
    ModelLoadError,
    NotRegisteredYet,
    Predictor,
    RegistryError,
    ServedModel,
    VersionInfo,
)


class FakePredictionLog:
    """Keeps what the scorer queues (a ``PredictionLogPort``)."""

    def __init__(self) -> None:
        self.records: list[KafkaRecord] = []

    def record(self, record: KafkaRecord) -> None:
        self.records.append(record)


class FakeServedModels:
    """One served model for every name, as its champion (a ``ServedModelsPort``)."""

    def __init__(self, model: ServedModel | None) -> None:
        self.model = model

    def get(self, name: str, alias: str) -> ServedModel | None:
        return self.model if alias == "champion" else None


class FakeFeatures:
    """Answers every online lookup with ``answer`` and keeps what was asked (a ``FeaturesPort``)."""

    def __init__(self, answer: Mapping[str, Any]) -> None:
        self.answer = answer
        self.asked: list[tuple[FeatureSource, Entities]] = []

    async def get_online_features(
        self, *, source: FeatureSource, entities: Entities
    ) -> Mapping[str, Any]:
        self.asked.append((source, entities))
        return self.answer


class FakeRegistry:
    """Versions by number and aliases, as set by the test (a ``RegistryPort``).

    Args:
        folder: Where "downloaded" versions are said to be (``<folder>/<name>/<version>``).
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.versions: dict[tuple[str, int], VersionInfo] = {}
        self.aliases: dict[tuple[str, str], int] = {}

    def register(self, name: str, version: int, *, alias: str | None = None) -> VersionInfo:
        """Add a version (and point ``alias`` at it)."""
        info = VersionInfo(name=name, version=version, run_id=f"run-{version}", files={})
        self.versions[name, version] = info
        if alias is not None:
            self.aliases[name, alias] = version
        return info

    async def by_alias(self, name: str, alias: str) -> VersionInfo:
        if (name, alias) not in self.aliases:
            raise NotRegisteredYet(f"no alias {name}@{alias}")
        return await self.version(name, self.aliases[name, alias])

    async def version(self, name: str, version: int) -> VersionInfo:
        if (name, version) not in self.versions:
            raise RegistryError(f"no version {name}/{version}")
        return self.versions[name, version]

    async def download(self, info: VersionInfo) -> Path:
        return self.folder / info.name / str(info.version)


class FakeLoader:
    """Loads a "folder" into a predictor answering its version number (a ``ModelLoaderPort``).

    A folder whose version is in ``broken`` cannot be loaded.
    """

    def __init__(self, make: Callable[[int], Predictor]) -> None:
        self.make = make
        self.broken: set[int] = set()
        self.loaded: list[Path] = []

    def __call__(self, folder: Path, /, *, model: str = "") -> Predictor:
        version = int(folder.name)
        if version in self.broken:
            raise ModelLoadError(f"version {version} is broken")
        self.loaded.append(folder)
        return self.make(version)


class CannedHTTPServer:
    """An HTTP/1.1 server on loopback that answers each request with ``answer(request)``.

    ``answer`` gets the request's head and body and returns the raw answer bytes (an
    ``HTTP/1.0`` answer is followed by the close of the connection), or ``None`` to close
    the connection without answering, or ``...`` to never answer.
    Stands in for the features service where a test needs an answer it cannot give
    (a failure, a close at the wrong time). Keeps every request and counts connections.
    """

    def __init__(self, answer: Callable[[bytes, bytes], bytes | EllipsisType | None]) -> None:
        self.answer = answer
        self.requests: list[tuple[bytes, bytes]] = []
        self.connections = 0
        self.most_open = 0  # connections open at once, at most
        self._open = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.sockets[0].getsockname()[:2]
        return f"http://{host}:{port}"

    async def __aenter__(self) -> CannedHTTPServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._open += 1
        self.most_open = max(self.most_open, self._open)
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                body = await reader.readexactly(length)
                self.requests.append((head, body))
                answer = self.answer(head, body)
                if answer is ...:
                    await asyncio.Event().wait()
                if not isinstance(answer, bytes):
                    break
                writer.write(answer)
                await writer.drain()
                if answer.startswith(b"HTTP/1.0"):
                    break
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._open -= 1
            writer.close()


def http_answer(status: int, body: bytes, *, content_type: str = "application/json") -> bytes:
    """The raw bytes of an HTTP/1.1 answer with a ``Content-Length``."""
    return (
        f"HTTP/1.1 {status} X\r\ncontent-type: {content_type}\r\n"
        f"content-length: {len(body)}\r\n\r\n"
    ).encode() + body
