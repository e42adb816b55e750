"""Training jobs: what a model's job is (its spec), the states a job goes through,
and the contract between the trainer and a job's process.

The contract: the trainer writes a :class:`JobContext` (``context.json`` in the job's
folder, or ``DRIFTLOOP_TRAINER_JOB`` in a Kubernetes pod) and starts
``python -m driftloop_trainer.entrypoints.job``; the job calls the spec's entry point,
which returns a :class:`TrainingOutput` or raises :class:`StageFailed`, and leaves its
outcome in ``result.json`` (or posts it to ``DRIFTLOOP_TRAINER_REPORT_URL``).
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from pydantic import BaseModel, Field, field_validator

from driftloop_trainer.domain.gate import EvaluationPolicy
from driftloop_trainer.domain.policy import TriggerPolicy
from driftloop_trainer.domain.schedule import validate_schedule

#: The reference pipeline of the demo model.
REFERENCE_PIPELINE = "driftloop_trainer.pipelines.sklearn:train"

#: The module a job's process runs (``python -m ...``).
JOB_MODULE = "driftloop_trainer.entrypoints.job"
#: The job's outcome, in its folder.
RESULT_FILE = "result.json"
#: The job's context, in its folder.
CONTEXT_FILE = "context.json"
#: Prefix of the last line of a job's output, its outcome as JSON.
RESULT_PREFIX = "DRIFTLOOP_RESULT "
#: The job's context as JSON, in a pod that has no folder shared with the trainer.
CONTEXT_ENV = "DRIFTLOOP_TRAINER_JOB"
#: Where a job run by a cluster posts its outcome (the trainer's base URL).
REPORT_URL_ENV = "DRIFTLOOP_TRAINER_REPORT_URL"


class JobStatus(enum.StrEnum):
    """Where a job is in its life."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"

    @property
    def active(self) -> bool:
        """Queued or running."""
        return self in (JobStatus.QUEUED, JobStatus.RUNNING)


class Stage(enum.StrEnum):
    """Step of a job, used to say where it failed (``TrainingStage`` of the contract)."""

    SETUP = "setup"
    DATA = "data"
    TRAINING = "training"
    REGISTRATION = "registration"
    EVALUATION = "evaluation"
    PROMOTION = "promotion"


class JobSpec(BaseModel):
    """A model's training job, declared once.

    Attributes:
        entry_point: ``module:function`` called with the job context; it returns the
            result (run id, version, scores).
        parameters: Default training parameters; a trigger may override them.
        features: Feature references to read, e.g. ``iris_features:sepal_length``.
        feature_service: A feature service instead of (or besides) ``features``.
        feature_views: The feature views the job reads (lineage, new-data triggers);
            views named in ``features`` count too.
        label: The label column of the labelled entity rows.
        labels_source: Where the labelled entity rows (join keys, ``event_timestamp``,
            label) are: a path or URL of a CSV/Parquet file, or ``builtin:iris``.
        training_window_days: Only rows of the last N days are used (0: all).
        evaluation_fraction: The share of rows held out for the evaluation gate, drawn
            from the recent rows (twice as many), so that training sees them too.
        evaluation: How the challenger is compared with the champion.
        image: Container image of the job (Kubernetes executor).
        timeout_seconds: A job running longer is stopped and failed.
    """

    entry_point: str = REFERENCE_PIPELINE
    parameters: dict[str, str] = Field(default_factory=dict)
    features: list[str] = Field(default_factory=list)
    feature_service: str | None = None
    feature_views: list[str] = Field(default_factory=list)
    label: str = "species"
    labels_source: str = ""
    training_window_days: float = Field(default=0.0, ge=0)
    evaluation_fraction: float = Field(default=0.3, gt=0, lt=0.5)
    evaluation: EvaluationPolicy = Field(default_factory=EvaluationPolicy)
    image: str = "driftloop/trainer:latest"
    timeout_seconds: float = Field(default=900.0, gt=0)

    @field_validator("entry_point")
    @classmethod
    def _check_entry_point(cls, value: str) -> str:
        module, sep, function = value.partition(":")
        if not sep or not module or not function:
            raise ValueError(f"entry_point must be 'module:function', got {value!r}")
        return value


class ModelConfig(BaseModel):
    """Everything the trainer knows about one registered model."""

    policy: TriggerPolicy = Field(default_factory=TriggerPolicy)
    job: JobSpec = Field(default_factory=JobSpec)

    @field_validator("policy")
    @classmethod
    def _check_schedule(cls, value: TriggerPolicy) -> TriggerPolicy:
        validate_schedule(value.schedule)
        return value


def new_job_id() -> str:
    """A fresh job id, e.g. ``job-7d1c2b9a04ef``."""
    return f"job-{uuid.uuid4().hex[:12]}"


class StageFailed(Exception):
    """A job failed in ``stage``."""

    def __init__(self, stage: Stage, message: str, *, error_type: str = "") -> None:
        super().__init__(message)
        self.stage = stage
        self.error_type = error_type or type(self).__name__


@dataclass(frozen=True)
class JobContext:
    """What an entry point gets: the job, its spec, where the services are.

    Attributes:
        job_id: The trainer's job id.
        model_name: Registered model to train.
        parameters: Training parameters (the spec's, overridden by the trigger's).
        spec: The model's job spec.
        trigger: ``kind``, ``reason``, ``event_id``, ``event_type``, ``event_source``.
        tracking_url: Tracking service (MLflow tracking URI).
        registry_url: Registry service (MLflow registry URI).
        features_url: Features service.
        experiment_name: Tracking experiment of the run.
        work_dir: The job's folder (context, logs, result, scratch files).
        token: The job's own credential (a ``writer`` token valid for this job only,
            needed to report its result); the job sends it to the suite's services.
    """

    job_id: str
    model_name: str
    parameters: Mapping[str, str]
    spec: JobSpec
    trigger: Mapping[str, str]
    tracking_url: str
    registry_url: str
    features_url: str
    experiment_name: str
    work_dir: str
    token: str = field(default="", repr=False)

    def headers(self) -> dict[str, str]:
        """The ``Authorization`` header of the job's calls to the suite's services."""
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def to_json(self) -> dict[str, Any]:
        """The context as JSON (a file or an environment variable)."""
        found = asdict(self)
        found["spec"] = self.spec.model_dump(mode="json")
        found["parameters"] = dict(self.parameters)
        found["trigger"] = dict(self.trigger)
        return found

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> JobContext:
        """Read a context back."""
        values = dict(data)
        values["spec"] = JobSpec.model_validate(values["spec"])
        return cls(**values)


@dataclass
class TrainingOutput:
    """What an entry point returns.

    Attributes:
        run_id: The tracking run it logged to.
        model_version: The version it registered (the challenger).
        metrics: The challenger's scores on the evaluation data.
        champion_metrics: The champion's scores on the same data (None without champion).
        champion_version: The champion it was compared with.
        evaluation_rows: Labelled rows scored.
        paired: For the gate's paired test, the evaluation rows only the challenger
            gets right (``challenger_only``) and only the champion (``champion_only``).
    """

    run_id: str
    model_version: int
    metrics: dict[str, float]
    champion_metrics: dict[str, float] | None = None
    champion_version: int | None = None
    evaluation_rows: int = 0
    paired: dict[str, int] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
