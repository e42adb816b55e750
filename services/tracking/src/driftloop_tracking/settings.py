"""Settings of the tracking service (``DRIFTLOOP_TRACKING_*``)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from driftloop_kit.settings import ServiceSettings


class TrackingSettings(ServiceSettings):
    """The tracking service: runs, metrics, params, tags, datasets, artifacts."""

    service_name: ClassVar[str] = "tracking"
    default_port: ClassVar[int] = 5000  # MLflow's own default

    artifacts_destination: str | None = Field(
        default=None,
        description=(
            "Where artifacts are stored: a local path or an fsspec URL (`s3://bucket/prefix`, "
            "`gs://...`). Default: `<home>/tracking/artifacts`."
        ),
    )

    @property
    def artifact_root(self) -> str:
        """The artifact store's root (path or fsspec URL)."""
        return self.artifacts_destination or str(self.data_dir / "artifacts")
