"""Training jobs: what a model's job is (its spec), and the states a job goes through."""

from __future__ import annotations

import enum

from pydantic import BaseModel, Field, field_validator

from driftloop_trainer.domain.gate import EvaluationPolicy
from driftloop_trainer.domain.policy import TriggerPolicy
from driftloop_trainer.domain.schedule import validate_schedule

#: The reference pipeline of the demo model.
REFERENCE_PIPELINE = "driftloop_trainer.pipelines.iris:train"


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
        evaluation_fraction: The most recent share of rows kept for the evaluation gate.
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
    evaluation_fraction: float = Field(default=0.3, gt=0, lt=1)
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
