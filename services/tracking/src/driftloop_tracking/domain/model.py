"""MLflow's tracking entities, in the shape of its REST API (``mlflow/protos/service.proto``).

int64 fields are plain integers here; MLflow's client accepts them as numbers or
strings. Optional fields are left out of responses when unset, as MLflow does.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class Model(BaseModel):
    """Base of the API models: unknown fields are ignored, as protobuf JSON parsing does."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class LifecycleStage(StrEnum):
    """Whether an experiment or run is deleted (soft delete, restorable)."""

    ACTIVE = "active"
    DELETED = "deleted"


class RunStatus(StrEnum):
    """MLflow's run statuses."""

    RUNNING = "RUNNING"
    SCHEDULED = "SCHEDULED"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    KILLED = "KILLED"

    @property
    def terminal(self) -> bool:
        """Whether the run has ended (``run.finished`` is published)."""
        return self in (RunStatus.FINISHED, RunStatus.FAILED, RunStatus.KILLED)


class Tag(Model):
    """A key/value tag (experiment, run, dataset input or logged model)."""

    key: str
    value: str = ""


class Param(Model):
    """A run parameter: logged once, immutable."""

    key: str
    value: str = ""


class Metric(Model):
    """One metric value at a step and time (ms), optionally about a logged model."""

    key: str
    value: float
    timestamp: int = 0
    step: int = 0
    model_id: str | None = None
    dataset_name: str | None = None
    dataset_digest: str | None = None


class Experiment(Model):
    """An experiment: a named group of runs."""

    experiment_id: str
    name: str
    artifact_location: str
    lifecycle_stage: LifecycleStage = LifecycleStage.ACTIVE
    last_update_time: int | None = None
    creation_time: int | None = None
    tags: list[Tag] = Field(default_factory=list)


class RunInfo(Model):
    """A run's metadata."""

    run_id: str
    run_uuid: str
    run_name: str = ""
    experiment_id: str
    user_id: str = ""
    status: RunStatus
    start_time: int
    end_time: int | None = None
    artifact_uri: str
    lifecycle_stage: LifecycleStage = LifecycleStage.ACTIVE


class RunData(Model):
    """What was logged to a run: latest metrics, params, tags."""

    metrics: list[Metric] = Field(default_factory=list)
    params: list[Param] = Field(default_factory=list)
    tags: list[Tag] = Field(default_factory=list)


class Dataset(Model):
    """A dataset as MLflow describes it (``mlflow.data``)."""

    name: str
    digest: str
    source_type: str
    source: str
    schema_: str | None = Field(default=None, alias="schema")
    profile: str | None = None


class DatasetInput(Model):
    """A dataset used by a run, with tags such as ``mlflow.data.context``."""

    tags: list[Tag] = Field(default_factory=list)
    dataset: Dataset


class ModelInput(Model):
    """A logged model used by a run."""

    model_id: str


class RunInputs(Model):
    """A run's inputs."""

    dataset_inputs: list[DatasetInput] = Field(default_factory=list)
    model_inputs: list[ModelInput] = Field(default_factory=list)


class ModelOutput(Model):
    """A logged model produced by a run, at a step."""

    model_id: str
    step: int = 0


class RunOutputs(Model):
    """A run's outputs."""

    model_outputs: list[ModelOutput] = Field(default_factory=list)


class Run(Model):
    """A run: info, data, inputs and outputs."""

    info: RunInfo
    data: RunData = Field(default_factory=RunData)
    inputs: RunInputs = Field(default_factory=RunInputs)
    outputs: RunOutputs = Field(default_factory=RunOutputs)
