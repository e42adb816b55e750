"""Settings of the registry service (``DRIFTLOOP_REGISTRY_*``)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from driftloop_kit.settings import ServiceSettings


class RegistrySettings(ServiceSettings):
    """The registry service: registered models, versions, aliases, lineage, model files.

    The download URIs of model versions point at the kit's ``base_url`` (``public_url``,
    ``DRIFTLOOP_REGISTRY_PUBLIC_URL``, else ``http://<host>:<port>``).
    """

    service_name: ClassVar[str] = "registry"
    default_port: ClassVar[int] = 5001

    tracking_url: str = Field(
        default="http://127.0.0.1:5000",
        description=(
            "Base URL of the tracking service: model files are copied from its artifact "
            "store at registration, and lineage is read from its runs."
        ),
    )
    artifacts_destination: str | None = Field(
        default=None,
        description=(
            "Where registered model files are kept: a local path or an fsspec URL "
            "(`s3://bucket/prefix`). Default: `<home>/registry/artifacts`."
        ),
    )
    tracking_timeout_seconds: float = Field(
        default=60.0, gt=0, description="Timeout of each request to the tracking service."
    )
    consumer_group: str = Field(
        default="driftloop-registry",
        description=(
            "Consumer group of the lineage consumer, which records monitor alerts "
            "(`drift.*`, `performance.degraded`) and training jobs (`training.*`)."
        ),
    )

    @property
    def artifact_root(self) -> str:
        """The model file store's root (path or fsspec URL)."""
        return self.artifacts_destination or str(self.data_dir / "artifacts")
