"""Settings of the serving service (``DRIFTLOOP_SERVING_*``)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import Field, field_validator

from driftloop_kit.declarations import BatchingPolicy, TrafficPolicy
from driftloop_kit.settings import ServiceSettings

__all__ = ["BatchingPolicy", "ServingSettings", "TrafficPolicy"]


class ServingSettings(ServiceSettings):
    """The serving service: models by alias, two protocols, hot swap, prediction log."""

    service_name: ClassVar[str] = "serving"
    default_port: ClassVar[int] = 8080  # KServe's and MLServer's HTTP port
    other_port_fields: ClassVar[tuple[str, ...]] = ("grpc_port",)

    grpc_enabled: bool = Field(
        default=True,
        description=(
            "Serve KServe's V2 inference protocol over gRPC too (`GRPCInferenceService`: "
            "what `tritonclient.grpc` and KServe's client call), on `grpc_port`."
        ),
    )
    grpc_port: int = Field(
        default=8081,
        ge=0,
        le=65535,
        description=(
            "TCP port of the V2 gRPC server (KServe's and MLServer's gRPC port), on the same "
            "host as HTTP; 0 takes a free port (logged at start-up)."
        ),
    )
    registry_url: str = Field(
        default="http://127.0.0.1:5001",
        description="Base URL of the registry service, where models are loaded from.",
    )
    features_url: str = Field(
        default="http://127.0.0.1:6566",
        description=(
            "Base URL of the features service, for requests that send entity keys "
            "instead of features."
        ),
    )
    features_timeout_seconds: float = Field(
        default=5.0,
        gt=0,
        description="How long a request waits for the features service's online features; "
        "beyond it the request is answered 503.",
    )
    feature_services: dict[str, str | list[str]] = Field(
        default_factory=dict,
        description=(
            "Per model, where the features of a request that sends entity keys come from, "
            'as JSON: a Feast feature service, `{"iris": "iris_classifier"}`, or a list of '
            '`view:feature` references, `{"iris": ["iris_features:sepal_length", ...]}`. '
            "A request may name another feature service in its parameters."
        ),
    )
    max_rows_per_request: int = Field(
        default=10_000,
        ge=1,
        le=10_000_000,
        description=(
            "Most rows one request may score (a larger one is a 400); each row is also "
            "logged on `predictions`."
        ),
    )
    unpickle_models: list[str] = Field(
        default_factory=list,
        description=(
            "Models whose pickle/cloudpickle files serving may load, and whose other "
            "flavors (XGBoost, a custom pyfunc ...) it may load through mlflow.pyfunc, as "
            'JSON, `["legacy-model"]`. Both may run code from the file: refused for every '
            "other model (skops and ONNX need no opt-in)."
        ),
    )
    skops_trusted_types: list[str] = Field(
        default_factory=list,
        description=(
            "Types a skops file may hold beyond scikit-learn's, NumPy's and SciPy's, as JSON "
            '(full names, `["mypackage.MyTransformer"]`).'
        ),
    )
    models: str = Field(
        default="",
        description="Comma-separated registered model names to serve, e.g. `iris,fraud`.",
    )
    alias: str = Field(default="champion", description="The alias each model is served from.")
    traffic: dict[str, TrafficPolicy] = Field(
        default_factory=dict,
        description=(
            'Canary and shadow policies per model, as JSON: `{"iris": {"canary_percent": 10}}` '
            'or `{"iris": {"shadow": true}}`.'
        ),
    )
    batching: dict[str, BatchingPolicy] = Field(
        default_factory=dict,
        description=(
            "Adaptive micro-batching per model, as JSON: "
            '`{"iris": {"max_batch_size": 32, "max_batch_time": 0.002}}` (concurrent requests '
            "within `max_batch_time` seconds are scored in one call of the model, up to "
            "`max_batch_size` rows; off for a model not named)."
        ),
    )
    reconcile_interval_seconds: float = Field(
        default=30.0,
        gt=0,
        description="How often the served versions are checked against the registry, "
        "in case an alias event was missed.",
    )
    prediction_buffer: int = Field(
        default=100_000,
        gt=0,
        description="Prediction records held in memory while the broker is slow; beyond it "
        "they are spilled to files.",
    )
    spill_dir: Path | None = Field(
        default=None,
        description="Where prediction records wait while the broker is down. "
        "Default: `<home>/serving/spill`.",
    )

    @field_validator("models")
    @classmethod
    def _strip(cls, value: str) -> str:
        return ",".join(name.strip() for name in value.split(",") if name.strip())

    @property
    def model_names(self) -> list[str]:
        """The served model names."""
        return [name for name in self.models.split(",") if name]

    def other_ports(self) -> dict[str, int]:
        """The V2 gRPC port, when it is served."""
        return super().other_ports() if self.grpc_enabled else {}

    @property
    def spill_path(self) -> Path:
        """The spill folder."""
        return self.spill_dir or self.data_dir / "spill"

    @field_validator("feature_services")
    @classmethod
    def _named(cls, value: dict[str, str | list[str]]) -> dict[str, str | list[str]]:
        for model, source in value.items():
            if not source:
                raise ValueError(f"feature_services[{model!r}] names no feature service")
            if isinstance(source, list) and not all(":" in ref for ref in source):
                raise ValueError(
                    f"feature_services[{model!r}]: feature references are `view:feature`"
                )
        return value

    def policy(self, model: str) -> TrafficPolicy:
        """The traffic policy of ``model`` (champion only when none is set)."""
        return self.traffic.get(model) or TrafficPolicy()

    def batching_of(self, model: str) -> BatchingPolicy:
        """The micro-batching policy of ``model`` (off when none is set)."""
        return self.batching.get(model) or BatchingPolicy()
