"""Settings of the monitor service (``DRIFTLOOP_MONITOR_*``)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field

from driftloop_kit.settings import ServiceSettings


class MonitorSettings(ServiceSettings):
    """The monitor service: prediction windows, reference data, drift and performance alerts."""

    service_name: ClassVar[str] = "monitor"
    default_port: ClassVar[int] = 8006

    public_url: str | None = Field(
        default=None,
        description=(
            "Base URL clients reach this service at, used in the report links of alerts; "
            "default `http://<host>:<port>`."
        ),
    )
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
    reference_uri_template: str | None = Field(
        default=None,
        description=(
            "Where the reference data of a version that becomes champion is fetched from: a "
            "URL or path with `{model}`, `{version}`, `{run_id}` placeholders, CSV or Parquet "
            "(e.g. `http://tracking:5000/get-artifact?run_uuid={run_id}&path=reference.parquet`). "
            "Unset: reference data is only uploaded through the REST API."
        ),
    )
    engine: Literal["faust", "bus"] = Field(
        default="faust",
        description=(
            "Stream engine: `faust` (faust-streaming agents; the label join in a faust table "
            "that survives restarts) or `bus` (the bus's batch consumer, several times the "
            "throughput; predictions wait for labels in memory)."
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

    @property
    def report_root(self) -> Path:
        """The folder of reports and kept windows."""
        return self.reports_dir or self.data_dir / "reports"

    @property
    def base_url(self) -> str:
        """Base URL used in report links."""
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")
