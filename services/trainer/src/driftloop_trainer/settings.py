"""Settings of the trainer service (``DRIFTLOOP_TRAINER_*``)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, model_validator

from driftloop_kit.settings import ServiceSettings
from driftloop_trainer.domain.jobs import SCORE_ENTRY_POINT, JobSpec, ModelConfig


def _demo_models() -> dict[str, ModelConfig]:
    return {
        "iris-classifier": ModelConfig(
            job=JobSpec(
                feature_service="iris_classifier",
                feature_views=["iris_features"],
                label="species",
                labels_source="builtin:iris",
            )
        )
    }


class TrainerSettings(ServiceSettings):
    """The trainer service: trigger policies, training jobs, the evaluation gate.

    ``public_url`` (of :class:`~driftloop_kit.settings.ServiceSettings`) is where jobs
    run by a cluster reach this service to report their result (``base_url``).
    """

    service_name: ClassVar[str] = "trainer"
    default_port: ClassVar[int] = 8008

    tracking_url: str = Field(
        default="http://127.0.0.1:5000",
        description="Base URL of the tracking service; training jobs log their runs there.",
    )
    registry_url: str = Field(
        default="http://127.0.0.1:5001",
        description=(
            "Base URL of the registry service; jobs register versions there and the "
            "evaluation gate moves aliases."
        ),
    )
    features_url: str = Field(
        default="http://127.0.0.1:6566",
        description="Base URL of the features service; jobs read point-in-time features there.",
    )
    models: dict[str, ModelConfig] = Field(
        default_factory=_demo_models,
        description=(
            "Per model, as JSON: its trigger `policy` (debounce_seconds, cooldown_seconds, "
            "max_concurrent, dedup_key, dedup_seconds, new_data_rows, schedule) and its "
            "`job` spec (entry_point, parameters, features, feature_service, label, "
            "labels_source, training_window_days, evaluation). Default: the demo model "
            "`iris-classifier` with the reference pipeline."
        ),
    )
    executor: Literal["local", "kubernetes"] = Field(
        default="local",
        description=(
            "How jobs run: `local` subprocesses, or `kubernetes` (a batch/v1 Job created "
            "through the Kubernetes API, in-cluster config or a kubeconfig, and watched)."
        ),
    )
    python: str = Field(
        default="",
        description="Python interpreter of local jobs. Default: the service's own.",
    )
    warm_process: bool = Field(
        default=True,
        description=(
            "Keep one local job process started ahead, its imports (mlflow, scikit-learn, "
            "pandas) done, so a job does not wait for them."
        ),
    )
    kubernetes_namespace: str = Field(
        default="driftloop", description="Namespace of the Kubernetes Jobs."
    )
    kubernetes_cpu: str = Field(
        default="1",
        pattern=r"^[0-9]+(\.[0-9]+|m)?$",
        description="CPU request and limit of a Kubernetes Job's pod (e.g. `1`, `500m`).",
    )
    kubernetes_memory: str = Field(
        default="2Gi",
        pattern=r"^[0-9]+(Ki|Mi|Gi|Ti|K|M|G|T)?$",
        description="Memory request and limit of a Kubernetes Job's pod (e.g. `2Gi`).",
    )
    kubernetes_log_tail_lines: int = Field(
        default=100,
        ge=1,
        le=10_000,
        description="Lines of a Kubernetes Job's pod log appended to the job's log when it ends.",
    )
    consumer_group: str = Field(
        default="driftloop-trainer", description="Consumer group of the trigger consumer."
    )
    job_lease_seconds: float = Field(
        default=60.0,
        ge=5,
        le=3600,
        description=(
            "A replica that has not renewed its hold on a local job for this long (it "
            "renews every `schedule_check_seconds`) is taken as gone: its job is failed."
        ),
    )
    schedule_check_seconds: float = Field(
        default=5.0,
        gt=0,
        le=3600,
        description=(
            "How often schedules, and deferred triggers of open episodes (cooldown or "
            "back-off over), are checked."
        ),
    )
    experiment_name: str = Field(
        default="driftloop-training",
        description="Tracking experiment the jobs log their runs to.",
    )
    jobs_dir: Path | None = Field(
        default=None,
        description=(
            "Where each job's context, logs and result are kept. Default: `<home>/trainer/jobs`."
        ),
    )
    gate_timeout_seconds: float = Field(
        default=600.0,
        gt=0,
        le=86_400,
        description=(
            "How long the gate's own scoring of a challenger and the champion may take (in "
            "a process of its own, on the job's held-out rows); beyond it the job fails in "
            "its evaluation stage."
        ),
    )
    score_uris: list[str] = Field(
        default_factory=list,
        description=(
            "Where jobs of kind `score` (`POST /jobs`) may read their input and write their "
            "output: folders or URI prefixes (`/data/scoring`, `s3://bucket/scoring`); a "
            "job naming a file elsewhere is refused. Default: `<home>/trainer/scoring`."
        ),
    )
    score_entry_point: str = Field(
        default=SCORE_ENTRY_POINT,
        description=(
            "The entry point of jobs of kind `score`: serving's batch scoring (the jobs' "
            "environment or image must have driftloop-serving installed)."
        ),
    )
    http_timeout_seconds: float = Field(
        default=30.0, gt=0, description="Timeout of each request to the registry."
    )

    @model_validator(mode="after")
    def _lease_outlives_renewals(self) -> TrainerSettings:
        if self.job_lease_seconds < 3 * self.schedule_check_seconds:
            raise ValueError(
                f"job_lease_seconds ({self.job_lease_seconds:g}) must be at least three times "
                f"schedule_check_seconds ({self.schedule_check_seconds:g}), how often leases "
                "are renewed"
            )
        return self

    @property
    def python_executable(self) -> str:
        """The interpreter local jobs run with."""
        return self.python or sys.executable

    @property
    def score_bases(self) -> list[str]:
        """Where jobs of kind ``score`` may read and write."""
        return self.score_uris or [str(self.data_dir / "scoring")]

    @property
    def jobs_path(self) -> Path:
        """The jobs folder."""
        return self.jobs_dir or self.data_dir / "jobs"
