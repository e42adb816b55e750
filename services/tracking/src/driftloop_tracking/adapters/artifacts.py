"""(being written) Artifact storage: local filesystem or an fsspec URL."""

from __future__ import annotations


class ArtifactRepository:
    """Stores run artifacts under a root (local path or fsspec URL)."""

    def __init__(self, root: str) -> None:
        self.root = root
