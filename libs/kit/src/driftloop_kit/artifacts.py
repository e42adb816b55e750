"""Artifact storage under one root: a local directory or an fsspec URL (``s3://bucket/prefix``).

The mlflow client addresses artifacts by paths relative to the root
(``<experiment_id>/<run_id>/artifacts/model/model.pkl``). Every path is checked
by :func:`clean_path` before it touches storage, so no request reaches outside
the root. Files are streamed in chunks both ways and never held whole in memory.

fsspec's API is blocking; every storage call runs in a worker thread.
"""

from __future__ import annotations

import mimetypes
import os
import posixpath
import re
import uuid
from collections.abc import AsyncIterable, AsyncIterator
from contextlib import suppress
from dataclasses import dataclass
from functools import cached_property
from pathlib import PureWindowsPath
from typing import Any, BinaryIO, Protocol
from urllib.parse import quote, unquote, urlsplit

import anyio
from fsspec import AbstractFileSystem  # type: ignore[import-untyped]
from fsspec.core import url_to_fs  # type: ignore[import-untyped]
from fsspec.implementations.local import LocalFileSystem  # type: ignore[import-untyped]
from pydantic import BaseModel
from starlette.responses import StreamingResponse

from driftloop_kit.errors import InvalidInput, NotFound

__all__ = [
    "CHUNK_SIZE",
    "ArtifactFile",
    "ArtifactReader",
    "ArtifactRepository",
    "FileInfo",
    "ListArtifactsResponse",
    "clean_path",
    "download_response",
    "proxied_path",
]

#: Bytes read from or written to storage per call.
CHUNK_SIZE = 1024 * 1024

#: The route the mlflow client resolves ``mlflow-artifacts:`` URIs to.
ARTIFACTS_ROUTE = "/api/2.0/mlflow-artifacts/artifacts"

# Uploads to a local root go to a hidden file next to the target first, then are
# renamed over it, so readers never see half a file. Listings hide these.
_UPLOAD_SUFFIX = ".upload"
_UPLOAD_TEMP = re.compile(r"^\..+\.[0-9a-f]{32}\.upload$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_DRIVE = re.compile(r"^[A-Za-z]:")


@dataclass(frozen=True, slots=True)
class FileInfo:
    """One entry of a directory listing.

    Attributes:
        path: The entry's name, relative to the listed directory.
        is_dir: Whether it is a directory.
        file_size: Size in bytes; ``None`` for directories.
    """

    path: str
    is_dir: bool
    file_size: int | None = None


def _fully_decoded(path: str) -> str:
    # Undo percent-encoding until nothing changes, so that "%2e%2e" and "%252e%252e"
    # are seen as the ".." a later decoding layer could turn them into.
    for _ in range(10):
        decoded = unquote(path)
        if decoded == path:
            return path
        path = decoded
    raise InvalidInput(f"Invalid path: {path!r} is encoded too many times")


def _is_unsafe(path: str) -> bool:
    return (
        "\\" in path
        or _CONTROL.search(path) is not None
        or path.startswith("/")
        or _DRIVE.match(path) is not None
        or PureWindowsPath(path).is_absolute()
        or ".." in path.split("/")
    )


def clean_path(path: str) -> str:
    """Normalize a path relative to the artifact root, refusing any that could leave it.

    Refused: ``..`` segments (also percent-encoded, once or more), absolute paths,
    drive letters, backslashes and control characters. Empty and ``.`` segments
    are dropped, so ``"a//./b/"`` becomes ``"a/b"``.

    Args:
        path: The path as the request gave it (already URL-decoded once).

    Returns:
        The normalized relative path; ``""`` for the root.

    Raises:
        InvalidInput: If the path is unsafe (MLflow's ``INVALID_PARAMETER_VALUE``).
    """
    if _is_unsafe(path) or _is_unsafe(_fully_decoded(path)):
        raise InvalidInput(
            f"Invalid path: {path!r} is not a relative path inside the artifact root"
        )
    return "/".join(part for part in path.split("/") if part not in ("", "."))


def proxied_path(artifact_uri: str) -> str | None:
    """The path under the artifact root that a proxied artifact URI points to.

    Args:
        artifact_uri: A run's or experiment's artifact location, for example
            ``mlflow-artifacts:/1/<run_id>/artifacts`` or an HTTP URL of this
            service's artifact route.

    Returns:
        The relative path (``"1/<run_id>/artifacts"``), or ``None`` if the URI
        points to storage this service does not proxy.
    """
    parts = urlsplit(artifact_uri)
    if parts.scheme == "mlflow-artifacts":
        return parts.path.lstrip("/")
    anchor = ARTIFACTS_ROUTE + "/"
    if parts.scheme in ("http", "https") and anchor in parts.path:
        return parts.path.split(anchor, 1)[1].lstrip("/")
    return None


class _Sink(Protocol):
    def write(self, data: bytes) -> None: ...

    def commit(self) -> None: ...

    def abort(self) -> None: ...


class _LocalSink:
    """Writes next to the target and renames over it, so the file appears whole or not at all."""

    def __init__(self, target: str) -> None:
        parent, name = os.path.split(target)
        os.makedirs(parent, exist_ok=True)
        if os.path.isdir(target):
            raise IsADirectoryError(target)
        self.target = target
        self.temp = os.path.join(parent, f".{name}.{uuid.uuid4().hex}{_UPLOAD_SUFFIX}")
        self.file = open(self.temp, "xb")  # noqa: SIM115 - closed by commit() or abort()

    def write(self, data: bytes) -> None:
        self.file.write(data)

    def commit(self) -> None:
        self.file.close()
        os.replace(self.temp, self.target)

    def abort(self) -> None:
        self.file.close()
        with suppress(FileNotFoundError):
            os.remove(self.temp)


class _FsspecSink:
    """Writes through fsspec without autocommit: object stores publish the object on commit."""

    def __init__(self, fs: AbstractFileSystem, target: str) -> None:
        if fs.isdir(target):
            raise IsADirectoryError(target)
        self.fs = fs
        self.target = target
        self.existed = fs.exists(target)
        fs.makedirs(posixpath.dirname(target.rstrip("/")), exist_ok=True)
        self.file = fs.open(target, "wb", autocommit=False)

    def write(self, data: bytes) -> None:
        self.file.write(data)

    def commit(self) -> None:
        self.file.close()
        self.file.commit()

    def abort(self) -> None:
        with suppress(Exception):
            self.file.close()
            self.file.discard()
        # Stores without a real discard (memory://) keep what was written; drop it
        # unless it replaced an earlier version, which is better kept half-written
        # than silently lost.
        if not self.existed:
            with suppress(FileNotFoundError):
                self.fs.rm(self.target)


class ArtifactReader:
    """An artifact opened for reading; iterate :meth:`chunks` once, which closes it at the end.

    Args:
        handle: The open binary file.
        size: Its size in bytes.
        chunk_size: Bytes per chunk.
    """

    def __init__(self, handle: BinaryIO, *, size: int, chunk_size: int = CHUNK_SIZE) -> None:
        self._handle = handle
        self.size = size
        self.chunk_size = chunk_size

    async def chunks(self) -> AsyncIterator[bytes]:
        """The file's bytes, ``chunk_size`` at a time; closes the file when done or abandoned."""
        try:
            while chunk := await anyio.to_thread.run_sync(self._handle.read, self.chunk_size):
                yield chunk
        finally:
            self.close()

    def close(self) -> None:
        """Close the file (idempotent; closing a read handle does no I/O worth a thread)."""
        self._handle.close()


class ArtifactRepository:
    """Stores artifacts under a root: a local directory or an fsspec URL.

    Paths given to the methods are relative to the root, ``/``-separated, and
    checked with :func:`clean_path`. On a local root, symbolic links that lead
    out of the root are refused as well.

    Args:
        root: A local path or an fsspec URL (``s3://bucket/prefix``, ``memory://x``).
        chunk_size: Bytes per storage read or write.
        **storage_options: Passed to the fsspec file system (credentials, endpoint ...).
    """

    def __init__(self, root: str, *, chunk_size: int = CHUNK_SIZE, **storage_options: Any) -> None:
        self.root = root
        self.chunk_size = chunk_size
        self._storage_options = storage_options

    @cached_property
    def _fs_and_base(self) -> tuple[AbstractFileSystem, str]:
        # Built on first use, not in __init__: building an object store's client is work.
        fs, base = url_to_fs(self.root, **self._storage_options)
        return fs, base.rstrip("/")

    @property
    def fs(self) -> AbstractFileSystem:
        """The fsspec file system holding the root."""
        return self._fs_and_base[0]

    @property
    def is_local(self) -> bool:
        """Whether the root is on the local file system."""
        return isinstance(self.fs, LocalFileSystem)

    def location(self, path: str) -> str:
        """The file system path of ``path`` (relative to the root), after checking it.

        Raises:
            InvalidInput: If the path could leave the root.
        """
        base = self._fs_and_base[1]
        relative = clean_path(path)
        return f"{base}/{relative}" if relative else base or "/"

    def _check_inside(self, location: str, path: str) -> None:
        # clean_path() keeps ".." out; this also stops symlinks inside a local root
        # that point elsewhere. Runs in the worker thread: realpath reads the disk.
        if not self.is_local:
            return
        root = os.path.realpath(self._fs_and_base[1] or "/")
        real = os.path.realpath(location)
        if real != root and not real.startswith(root.rstrip(os.sep) + os.sep):
            raise InvalidInput(f"Invalid path: {path!r} leads outside the artifact root")

    def _info(self, location: str) -> dict[str, Any] | None:
        self.fs.invalidate_cache(location)  # another replica may have written since
        try:
            info: dict[str, Any] = self.fs.info(location)
        except (FileNotFoundError, NotADirectoryError):
            return None
        return info

    async def list_dir(self, path: str = "") -> list[FileInfo]:
        """The entries directly inside a directory, sorted by name.

        Args:
            path: The directory, relative to the root; ``""`` for the root.

        Returns:
            The entries, named relative to ``path``; empty if ``path`` is missing
            or is a file (as MLflow answers, which its client relies on).

        Raises:
            InvalidInput: If the path could leave the root.
        """
        location = self.location(path)
        return await anyio.to_thread.run_sync(self._list_dir, location, path)

    def _list_dir(self, location: str, path: str) -> list[FileInfo]:
        self._check_inside(location, path)
        info = self._info(location)
        if info is None or info["type"] != "directory":
            return []
        entries = []
        for entry in self.fs.ls(location, detail=True):
            name = posixpath.basename(str(entry["name"]).rstrip("/"))
            if not name or _UPLOAD_TEMP.match(name) or str(entry["name"]).rstrip("/") == location:
                continue
            is_dir = entry["type"] == "directory"
            size = None if is_dir else int(entry.get("size") or 0)
            entries.append(FileInfo(path=name, is_dir=is_dir, file_size=size))
        return sorted(entries, key=lambda entry: entry.path)

    async def write(self, path: str, chunks: AsyncIterable[bytes]) -> int:
        """Store a file from a stream of chunks, replacing any file at ``path``.

        On a local root the file appears whole or not at all; if the stream fails,
        nothing is left behind.

        Args:
            path: The file, relative to the root.
            chunks: The file's bytes.

        Returns:
            The number of bytes written.

        Raises:
            InvalidInput: If the path could leave the root, is the root, or a
                directory (or a file where a directory is needed) is in the way.
        """
        location = self._file_location(path)
        sink = await anyio.to_thread.run_sync(self._open_sink, location, path)
        written = 0
        pending = bytearray()
        try:
            async for chunk in chunks:
                pending += chunk
                if len(pending) >= self.chunk_size:
                    await anyio.to_thread.run_sync(sink.write, bytes(pending))
                    written += len(pending)
                    pending.clear()
            if pending:
                await anyio.to_thread.run_sync(sink.write, bytes(pending))
                written += len(pending)
            await anyio.to_thread.run_sync(sink.commit)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(sink.abort)
            raise
        return written

    def _open_sink(self, location: str, path: str) -> _Sink:
        self._check_inside(location, path)
        try:
            if self.is_local:
                return _LocalSink(location)
            return _FsspecSink(self.fs, location)
        except IsADirectoryError:
            raise InvalidInput(f"Cannot write {path!r}: it is a directory") from None
        except (NotADirectoryError, FileExistsError):
            raise InvalidInput(f"Cannot write {path!r}: a parent of it is a file") from None

    async def read(self, path: str) -> ArtifactReader:
        """Open a file for streaming.

        Args:
            path: The file, relative to the root.

        Returns:
            A reader; iterate its :meth:`ArtifactReader.chunks`.

        Raises:
            NotFound: If there is no such file.
            InvalidInput: If the path could leave the root or is a directory.
        """
        location = self._file_location(path)
        return await anyio.to_thread.run_sync(self._open_reader, location, path)

    def _open_reader(self, location: str, path: str) -> ArtifactReader:
        self._check_inside(location, path)
        info = self._info(location)
        if info is None:
            raise NotFound(f"No artifact at {path!r}")
        if info["type"] == "directory":
            raise InvalidInput(f"Artifact path refers to a directory, not a file: {path!r}")
        handle = self.fs.open(location, "rb")
        # The open file's own size, where it knows it: the path may have been
        # replaced by a new upload since info() was read.
        size = getattr(handle, "size", None)
        if not isinstance(size, int):
            size = int(info.get("size") or 0)
        return ArtifactReader(handle, size=size, chunk_size=self.chunk_size)

    async def delete(self, path: str) -> bool:
        """Delete a file, or a directory with everything in it.

        Args:
            path: The file or directory, relative to the root (not the root itself).

        Returns:
            Whether something was deleted (``False`` if nothing was there).

        Raises:
            InvalidInput: If the path could leave the root or is the root.
        """
        location = self._file_location(path)
        return await anyio.to_thread.run_sync(self._delete, location, path)

    def _delete(self, location: str, path: str) -> bool:
        self._check_inside(location, path)
        info = self._info(location)
        if info is None:
            return False
        self.fs.rm(location, recursive=info["type"] == "directory")
        return True

    def _file_location(self, path: str) -> str:
        if not clean_path(path):
            raise InvalidInput("The path must name a file or directory below the artifact root")
        return self.location(path)


class ArtifactFile(BaseModel):
    """A file or directory in a listing (MLflow's ``FileInfo``)."""

    path: str
    is_dir: bool
    file_size: int | None = None


class ListArtifactsResponse(BaseModel):
    """A directory's entries, named relative to the listed directory."""

    files: list[ArtifactFile]


def _attachment(name: str) -> str:
    # Always an attachment, so a browser never renders an uploaded page on our origin.
    quoted = quote(name)
    if quoted == name:
        return f'attachment; filename="{name}"'
    return f"attachment; filename*=utf-8''{quoted}"


def download_response(reader: ArtifactReader, path: str) -> StreamingResponse:
    """A streamed download of an opened artifact, as MLflow's artifact proxy sends it.

    Args:
        reader: The opened file.
        path: Its path, for the file name and media type.
    """
    name = posixpath.basename(clean_path(path))
    media_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return StreamingResponse(
        reader.chunks(),
        media_type=media_type,
        headers={
            "Content-Length": str(reader.size),
            "Content-Disposition": _attachment(name),
            "X-Content-Type-Options": "nosniff",
        },
    )
