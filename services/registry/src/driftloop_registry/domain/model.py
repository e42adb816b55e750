"""The registry's entities in the shape of MLflow's REST API (``model_registry.proto``).

Versions travel as strings and times as milliseconds since the epoch, as MLflow
writes them. Two fields are driftloop's own and ignored by the mlflow client:
``lineage`` (where a version came from) and ``files`` (the SHA-256 of every model
file, recorded at registration).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


def now_ms() -> int:
    """Milliseconds since the epoch, MLflow's time unit."""
    return int(datetime.now(UTC).timestamp() * 1000)


class Model(BaseModel):
    """Base of the API models: unknown fields are ignored, as protobuf JSON parsing does."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class Tag(Model):
    """A key/value tag of a registered model or a model version."""

    key: str
    value: str = ""


class Alias(Model):
    """A named pointer to a version: ``champion`` → ``"3"``."""

    alias: str
    version: str


class VersionStatus(StrEnum):
    """MLflow's ``ModelVersionStatus``."""

    PENDING_REGISTRATION = "PENDING_REGISTRATION"
    FAILED_REGISTRATION = "FAILED_REGISTRATION"
    READY = "READY"


class Stage(StrEnum):
    """MLflow's legacy stages, kept for clients that still transition versions."""

    NONE = "None"
    STAGING = "Staging"
    PRODUCTION = "Production"
    ARCHIVED = "Archived"

    @classmethod
    def parse(cls, value: str) -> Stage:
        """A stage by name, case-insensitively (``"production"`` → ``Production``).

        Raises:
            ValueError: If ``value`` names no stage.
        """
        for stage in cls:
            if stage.value.lower() == value.strip().lower():
                return stage
        raise ValueError(value)


class DatasetRef(Model):
    """A dataset the source run used: name, digest and role (``training``...)."""

    name: str = ""
    digest: str = ""
    source_type: str = ""
    source: str = ""
    context: str = ""


class EventRef(Model):
    """A CloudEvent that caused something: its id, type and source."""

    id: str
    type: str = ""
    source: str = ""


class Lineage(Model):
    """Where a version came from, read from its source run at registration.

    Attributes:
        run_id: The tracking run that produced the model ("" when registered from files).
        experiment_id: The run's experiment.
        metrics: The run's latest metric values.
        params: The run's parameters.
        datasets: The run's dataset inputs (digests identify the training data).
        feature_views: Feature views the model was trained on.
        triggering_event: The event that started the training, for a retrain.
        training_job_id: The trainer job that produced the version.
        reference_data: Where the sample of training inputs for drift monitoring is,
            relative to the model's files or as a URI.
    """

    model_config = ConfigDict(extra="ignore", ser_json_inf_nan="strings")

    run_id: str = ""
    experiment_id: str = ""
    metrics: dict[str, float] = Field(default_factory=dict)
    params: dict[str, str] = Field(default_factory=dict)
    datasets: list[DatasetRef] = Field(default_factory=list)
    feature_views: list[str] = Field(default_factory=list)
    triggering_event: EventRef | None = None
    training_job_id: str = ""
    reference_data: str = ""


class ModelFile(Model):
    """One file of a registered model, as recorded at registration."""

    path: str
    size: int
    sha256: str


class ModelVersion(Model):
    """MLflow's ``ModelVersion``, plus driftloop's lineage and file checksums."""

    name: str
    version: str
    creation_timestamp: int
    last_updated_timestamp: int
    user_id: str | None = None
    current_stage: str = Stage.NONE.value
    description: str | None = None
    source: str
    run_id: str | None = None
    status: VersionStatus = VersionStatus.READY
    status_message: str | None = None
    tags: list[Tag] = Field(default_factory=list)
    run_link: str | None = None
    aliases: list[str] = Field(default_factory=list)
    model_id: str | None = None
    lineage: Lineage | None = None
    files: list[ModelFile] | None = None


class RegisteredModel(Model):
    """MLflow's ``RegisteredModel``: its tags, aliases and latest version per stage."""

    name: str
    creation_timestamp: int
    last_updated_timestamp: int
    user_id: str | None = None
    description: str | None = None
    latest_versions: list[ModelVersion] = Field(default_factory=list)
    tags: list[Tag] = Field(default_factory=list)
    aliases: list[Alias] = Field(default_factory=list)


class LineageEvent(Model):
    """One event of a model's lineage log, as the lineage endpoint returns it.

    Attributes:
        id: The event's CloudEvents id.
        type: Its CloudEvents type, e.g. ``driftloop.monitor.drift.detected``.
        source: Its CloudEvents source, e.g. ``/driftloop/monitor``.
        time: When it happened (its ``ce_time``), RFC 3339 in UTC with microseconds.
        version: The version it is about, if any.
        role: How it stands to the version asked for (``trigger``, ``training``,
            ``registered``, ``alias``, ``monitoring``, ``retrain``, ``next_version``);
            absent in a whole model's log.
        summary: The useful fields of its payload (model, window, columns, job ...).
    """

    id: str
    type: str
    source: str
    time: str
    version: str | None = None
    role: str | None = None
    summary: dict[str, Any] = Field(default_factory=dict)


class ModelLineage(Model):
    """A model's lineage log, or one version's lineage and chain of events.

    Attributes:
        name: The registered model.
        aliases: The model's aliases now.
        version: The version asked for (resolved from ``alias``); absent for the
            whole model's log.
        alias: The alias asked for, if any.
        lineage: The version's lineage: run, metrics, params, datasets, feature
            views, triggering event, training job.
        events: Oldest first: for a version, what led to it and what happened to it
            since; else every event about the model.
    """

    name: str
    aliases: list[Alias] = Field(default_factory=list)
    version: str | None = None
    alias: str | None = None
    lineage: Lineage | None = None
    events: list[LineageEvent] = Field(default_factory=list)


@dataclass(frozen=True)
class StoredModel:
    """A registered model's row: its internal id and its name."""

    id: int
    name: str


@dataclass(frozen=True)
class StoredVersion:
    """A version as stored: the entity, and the key its files are kept under."""

    model_id: int
    storage_key: str
    entity: ModelVersion

    @property
    def number(self) -> int:
        """The version number."""
        return int(self.entity.version)
