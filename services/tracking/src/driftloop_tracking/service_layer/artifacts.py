"""Listing the artifacts of a run or a logged model, below the artifact root this service
serves (never a location a request names)."""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

from driftloop_kit.artifacts import FileInfo, proxied_path
from driftloop_kit.errors import InvalidInput
from driftloop_tracking.service_layer.ports import ArtifactStorePort, RunLookupPort

__all__ = ["ArtifactListing"]


@dataclass(frozen=True, kw_only=True, slots=True)
class ArtifactListing:
    """The artifact listings.

    Args:
        runs: Finds a run (its artifact URI).
        files: The artifact files.
    """

    runs: RunLookupPort
    files: ArtifactStorePort

    async def of_run(self, run_id: str, relative: str) -> tuple[str, list[FileInfo]]:
        """The run's artifact URI and its files below ``relative`` (a clean path)."""
        run = await self.runs.get_run(run_id)
        root_uri = run.info.artifact_uri
        return root_uri, await self.below(root_uri, relative, owner=f"run {run.info.run_id}")

    async def below(self, root_uri: str, relative: str, *, owner: str) -> list[FileInfo]:
        """The files below ``relative`` under ``root_uri``, if this service serves it.

        Raises:
            InvalidInput: If ``root_uri`` is not under this service's artifact proxy.
        """
        root = proxied_path(root_uri)
        if root is None:
            raise InvalidInput(f"The artifacts of {owner} are not served here: {root_uri}")
        return await self.files.list_dir(posixpath.join(root, relative) if relative else root)
