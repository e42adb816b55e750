"""A registered version's own copy of its model files, checksummed.

At registration every file is streamed from tracking into the registry's artifact
store under a key of its own (``<storage_key>/<path>``) while its SHA-256 is
computed; the digests are stored with the version. A download hashes the stored
file first and refuses it when the digest differs: a model that changed after
registration is never served.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator

from driftloop_kit.artifacts import ArtifactReader, ArtifactRepository
from driftloop_kit.errors import Conflict, InvalidInput, NotFound
from driftloop_registry.adapters.tracking import TrackingClient
from driftloop_registry.domain.model import ModelFile

#: The file that makes a directory an MLflow model.
MLMODEL = "MLmodel"


class IntegrityError(Conflict):
    """A stored model file no longer matches the checksum recorded at registration."""


class ModelFiles:
    """Copies model files into the registry's store and hands them out verified.

    Args:
        artifacts: The registry's artifact store.
        tracking: Where registered files are copied from.
    """

    def __init__(self, artifacts: ArtifactRepository, tracking: TrackingClient) -> None:
        self.artifacts = artifacts
        self.tracking = tracking

    async def copy_from_tracking(self, path: str, storage_key: str) -> list[ModelFile]:
        """Copy every file below tracking's ``path`` to ``storage_key``, hashing each.

        Raises:
            InvalidInput: If there are no files there, or no ``MLmodel`` among them.
        """
        listed = await self.tracking.list_files(path)
        if not listed:
            raise InvalidInput(f"No model files found at '{path}' in tracking.")
        if MLMODEL not in {name for name, _ in listed}:
            raise InvalidInput(
                f"'{path}' in tracking is not an MLflow model: it has no {MLMODEL} file."
            )
        copied = []
        for name, _ in listed:
            copied.append(
                await self._store(
                    f"{storage_key}/{name}", name, self.tracking.stream(f"{path}/{name}")
                )
            )
        return copied

    async def copy_within(
        self, files: list[ModelFile], from_key: str, storage_key: str
    ) -> list[ModelFile]:
        """Copy a registered version's files (checked) to a new version's key."""
        copied = []
        for file in files:
            reader = await self.open(from_key, file)
            copied.append(
                await self._store(f"{storage_key}/{file.path}", file.path, reader.chunks())
            )
        return copied

    async def _store(self, target: str, name: str, chunks: AsyncIterator[bytes]) -> ModelFile:
        digest = hashlib.sha256()

        async def hashed() -> AsyncIterator[bytes]:
            async for chunk in chunks:
                digest.update(chunk)
                yield chunk

        size = await self.artifacts.write(target, hashed())
        return ModelFile(path=name, size=size, sha256=digest.hexdigest())

    async def open(self, storage_key: str, file: ModelFile) -> ArtifactReader:
        """Open a stored file after checking it against its recorded SHA-256.

        Raises:
            IntegrityError: If the file is missing or its content changed.
        """
        location = f"{storage_key}/{file.path}"
        try:
            reader = await self.artifacts.read(location)
        except NotFound:
            raise self._tampered(file, "the file is missing") from None
        digest = hashlib.sha256()
        async for chunk in reader.chunks():
            digest.update(chunk)
        if digest.hexdigest() != file.sha256:
            raise self._tampered(
                file, f"its SHA-256 is {digest.hexdigest()}, registered {file.sha256}"
            )
        return await self.artifacts.read(location)

    @staticmethod
    def _tampered(file: ModelFile, detail: str) -> IntegrityError:
        return IntegrityError(
            f"Integrity check failed for model file '{file.path}': {detail}. The file changed "
            "after registration; refusing to serve it."
        )

    async def remove(self, storage_key: str) -> None:
        """Delete a version's files (after the version is deleted)."""
        await self.artifacts.delete(storage_key)
