"""Settings of the monitor service (``DRIFTLOOP_MONITOR_*``)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, model_validator

from driftloop_kit.settings import ServiceSettings


class MonitorSettings(ServiceSettings):
    """The monitor service: prediction windows, reference data, drift and performance alerts.

    The kit's ``public_url`` / ``base_url`` prefix the report links of alerts;
    ``stream_engine`` picks the stream engine (``bus``, the default: the bus's batch
    consumer with its state in the monitor's database; ``faust``: the label join in a
    faust table, open windows in memory).
    """

    service_name: ClassVar[str] = "monitor"
    default_port: ClassVar[int] = 8006

    reports_dir: Path | None = Field(
        default=None,
        description=(
            "Folder for Evidently HTML reports and the data of recent windows. "
            "Default: `<home>/monitor/reports`."
        ),
    )
    window_rows: int = Field(
        default=1000,
        ge=2,
        description="Default count window: rows per window, for models without a policy.",
    )
    window_seconds: float = Field(
        default=3600.0,
        gt=0,
        description="Default time window in seconds, for models without a policy.",
    )
    label_ttl_seconds: float = Field(
        default=86_400.0,
        gt=0,
        description="How long a prediction waits for its label before it is forgotten.",
    )
    kept_windows: int = Field(
        default=20,
        ge=0,
        description=(
            "Windows per model version whose data is kept so a full report can be made "
            "on request later."
        ),
    )
    reference_source: Literal["lineage", "template", "none"] = Field(
        default="lineage",
        description=(
            "Where the reference data of a version that becomes champion comes from: "
            "`lineage` (the sample the training run logged, named by the run's "
            "`driftloop.reference_data` tag; the run is found through the registry), "
            "`template` (`reference_uri_template`) or `none` (REST uploads only). Setting "
            "`reference_uri_template` without this selects `template`."
        ),
    )
    registry_url: str = Field(
        default="http://127.0.0.1:5001",
        description=(
            "Base URL of the registry, where the `lineage` reference source finds a "
            "version's training run (and the version's files, for a relative location)."
        ),
    )
    tracking_url: str = Field(
        default="http://127.0.0.1:5000",
        description=(
            "Base URL of the tracking service, where the `lineage` reference source reads "
            "the run's tags and downloads `mlflow-artifacts:` locations."
        ),
    )
    reference_allowed_urls: list[str] = Field(
        default_factory=list,
        description=(
            "For the `lineage` source: base URLs, besides tracking's and the registry's, that "
            "reference samples may be downloaded from, as JSON "
            '(`["https://data.example.com/samples/"]`). Anything else a run\'s tag names (a '
            "local file, another host) is refused."
        ),
    )
    reference_max_bytes: int = Field(
        default=256 * 1024 * 1024,
        ge=1024,
        le=16 * 1024**3,
        description="Largest reference sample downloaded; a larger one is refused.",
    )
    reference_uri_template: str | None = Field(
        default=None,
        description=(
            "For the `template` reference source: a URL or path with `{model}`, `{version}`, "
            "`{run_id}` placeholders, CSV or Parquet "
            "(e.g. `http://tracking:5000/get-artifact?run_uuid={run_id}&path=reference.parquet`)."
        ),
    )
    stream_engine: Literal["faust", "bus"] = Field(
        default="bus",
        description=(
            "The monitor's stream engine: `bus` (batches of the bus's consumer group; open "
            "windows and predictions waiting for their labels are stored in the monitor's "
            "database with each batch, before its offsets commit, and taken over by the "
            "partition's next owner after a restart or a rebalance) or `faust` "
            "(faust-streaming agents; label joins in a faust table, open windows in memory "
            "only, about a quarter of `bus`'s rate)."
        ),
    )
    consumer_group: str = Field(
        default="monitor",
        description="Kafka consumer group (also the faust app id) of the stream processor.",
    )
    consume: bool = Field(
        default=True,
        description="Run the stream processor (off: the REST API only, e.g. for a read replica).",
    )

    @model_validator(mode="after")
    def _choose_reference_source(self) -> MonitorSettings:
        if "reference_source" not in self.model_fields_set and self.reference_uri_template:
            self.reference_source = "template"
        if self.reference_source == "template" and not self.reference_uri_template:
            raise ValueError("reference_source `template` needs reference_uri_template")
        return self

    @property
    def report_root(self) -> Path:
        """The folder of reports and kept windows."""
        return self.reports_dir or self.data_dir / "reports"
