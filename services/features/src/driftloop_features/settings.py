"""Settings of the features service (``DRIFTLOOP_FEATURES_*``)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, field_validator

from driftloop_kit.settings import ServiceSettings


class FeaturesSettings(ServiceSettings):
    """The features service: a Feast repo, its online and offline stores, Kafka ingestion.

    What consumes ``features.ingest`` is the shared ``stream_engine`` setting
    (``DRIFTLOOP_FEATURES_STREAM_ENGINE``): ``bus``, the bus's batch consumer, or
    ``faust``, a faust-streaming agent. Here it defaults to ``bus``, as ingestion did
    before the setting was shared: faust's per-event path is below the ingestion target.
    """

    service_name: ClassVar[str] = "features"
    default_port: ClassVar[int] = 6566  # `feast serve`'s own default

    repo_path: Path | None = Field(
        default=None,
        description=(
            "Folder of the Feast repo (Python files defining entities, sources, feature views "
            "and feature services). Seeded with the example repo when empty. "
            "Default: `<home>/features/repo`."
        ),
    )
    project: str = Field(
        default="driftloop",
        description=(
            "Feast project name, when the repo has no `feature_store.yaml` of its own (its "
            "file's `project` is used otherwise; set both only if they agree)."
        ),
    )
    stream_engine: Literal["faust", "bus"] = Field(
        default="bus",
        description=(
            "What consumes `features.ingest`: `bus` (the bus's batch consumer; the stores set "
            "the pace) or `faust` (a faust-streaming agent, for deployments that run their "
            "stream processing in faust)."
        ),
    )
    online_store_url: str | None = Field(
        default=None,
        description=(
            "Online store: `sqlite:///<path>` or `redis://host:port[/db]`. "
            "Default: SQLite at `<home>/features/online.db`."
        ),
    )
    offline_store_url: str | None = Field(
        default=None,
        description=(
            "Offline store: `file` (Parquet files in the repo's `data/` folder) or "
            "`postgresql://user[:password]@host[:port]/database`. Default: `file`."
        ),
    )
    registry_url: str | None = Field(
        default=None,
        description=(
            "Feast registry: a file path, or `postgresql://...` for a SQL registry. "
            "Default: `<home>/features/registry.db`."
        ),
    )
    apply_on_startup: bool = Field(
        default=True, description="Apply the Feast repo when the service starts."
    )
    online_fast_path: bool = Field(
        default=True,
        description=(
            "Answer plain online reads with driftloop's read path (same answers as Feast's "
            "`get_online_features`, at the store's speed); false: Feast's own path."
        ),
    )
    ingest_enabled: bool = Field(
        default=True, description="Consume `features.ingest` and push its rows to the stores."
    )
    ingest_group: str = Field(
        default="driftloop-features",
        description="Consumer group (faust app id) of the ingestion agent.",
    )
    labels_enabled: bool = Field(
        default=True, description="Consume `labels` and store every label in the label store."
    )
    labels_group: str = Field(
        default="driftloop-features-labels",
        description="Consumer group of the label store's consumer of `labels`.",
    )
    ingest_batch_size: int = Field(
        default=2000, ge=1, description="Most rows pushed to the stores in one batch."
    )
    ingest_batch_seconds: float = Field(
        default=0.2,
        gt=0,
        description="Longest a row waits for its batch to fill before the batch is pushed.",
    )
    ingest_session_timeout: float = Field(
        default=10.0,
        ge=6.0,
        description=(
            "Seconds the broker waits for a silent ingestion consumer before rebalancing "
            "(Kafka's minimum is 6)."
        ),
    )

    @field_validator("online_store_url")
    @classmethod
    def _check_online_store_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("sqlite:///", "redis://")):
            raise ValueError("online_store_url must be sqlite:///<path> or redis://host:port[/db]")
        return value

    @field_validator("offline_store_url")
    @classmethod
    def _check_offline_store_url(cls, value: str | None) -> str | None:
        if value is not None and value != "file" and not value.startswith("postgresql"):
            raise ValueError("offline_store_url must be `file` or postgresql://...")
        return value

    @property
    def feast_repo_path(self) -> Path:
        """The Feast repo folder."""
        return self.repo_path or self.data_dir / "repo"
