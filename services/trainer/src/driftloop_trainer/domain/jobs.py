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
import posixpath
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from driftloop_kit.declarations import (
    EvaluationPolicy,
    FeaturesSpec,
    ModelDeclaration,
    ModelSpec,
    TrainingSpec,
    TriggerPolicy,
)

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
#: The pid of the trainer process that started a local job: the job dies with it.
PARENT_ENV = "DRIFTLOOP_TRAINER_JOB_PARENT"


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


class JobKind(enum.StrEnum):
    """What a job does."""

    #: Train, register, evaluate and maybe promote a version (a trigger's job).
    TRAINING = "training"
    #: Score a file with a registered version (``POST /jobs``): batch scoring.
    SCORE = "score"


#: The entry point of a job of kind ``score`` (serving's batch scoring; the job's
#: environment or image must have driftloop-serving installed).
SCORE_ENTRY_POINT = "driftloop_serving.entrypoints.batch:score_job"


class ScoreRequest(BaseModel):
    """Body of ``POST /jobs`` for a job of kind ``score``: a file scored with a
    registered model, as ``driftloop score`` does, by the trainer's executor.

    Attributes:
        kind: ``score``.
        model: ``NAME``, ``NAME@ALIAS`` or ``NAME/VERSION`` (MLflow's ``models:/``
            forms too); the alias defaults to ``champion``.
        input_uri: The Parquet or CSV file to score, under one of the trainer's
            ``score_uris``.
        output_uri: Where the predictions are written, under one of ``score_uris``.
        log: Log the predictions to the ``predictions`` topic (route ``batch``).
        keep: Input columns copied to the output, not given to the model.
        chunk_rows: Rows read, scored and written at a time.
    """

    model_config = ConfigDict(extra="forbid")

    kind: Literal["score"] = "score"
    model: str = Field(min_length=1, max_length=300, examples=["iris-classifier@champion"])
    input_uri: str = Field(min_length=1, max_length=2048, examples=["file:///data/in.parquet"])
    output_uri: str = Field(min_length=1, max_length=2048, examples=["file:///data/out.parquet"])
    log: bool = True
    keep: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(
        default_factory=list, max_length=50
    )
    chunk_rows: int = Field(default=65_536, ge=1, le=1_000_000)

    @property
    def model_name(self) -> str:
        """The registered model the reference names."""
        body = self.model.removeprefix("models:/")
        if "@" in body:
            return body.rpartition("@")[0]
        name, _, number = body.rpartition("/")
        return name if name and number.isdigit() else body

    def parameters(self, bootstrap_servers: str) -> dict[str, str]:
        """The job's parameters, as its entry point reads them."""
        return {
            "model": self.model,
            "input_uri": self.input_uri,
            "output_uri": self.output_uri,
            "log": "true" if self.log else "false",
            "keep": ",".join(self.keep),
            "chunk_rows": str(self.chunk_rows),
            "bootstrap_servers": bootstrap_servers,
        }


def allowed_uri(uri: str, bases: Sequence[str]) -> bool:
    """Whether ``uri`` lies under one of ``bases`` (after resolving ``..``): a job opens
    only files a configured base trusts."""
    scheme, sep, rest = uri.partition("://")
    if not sep:
        scheme, rest = "file", uri
    if scheme == "file" and not rest.startswith("/"):
        return False
    path = posixpath.normpath(rest)
    for base in bases:
        base_scheme, base_sep, base_rest = base.partition("://")
        if not base_sep:
            base_scheme, base_rest = "file", base
        root = posixpath.normpath(base_rest)
        if base_scheme == scheme and (path == root or path.startswith(root.rstrip("/") + "/")):
            return True
    return False


class Stage(enum.StrEnum):
    """Step of a job, used to say where it failed (``TrainingStage`` of the contract)."""

    SETUP = "setup"
    DATA = "data"
    TRAINING = "training"
    REGISTRATION = "registration"
    EVALUATION = "evaluation"
    PROMOTION = "promotion"


class JobSpec(FeaturesSpec, TrainingSpec):
    """A model's training job: the ``features``, ``label``, ``training`` and
    ``evaluation`` sections of its document, in one piece (the job record keeps it).

    Attributes:
        label: The label column of the labelled entity rows.
        evaluation: How the challenger is compared with the champion.
    """

    label: str = Field(default="", max_length=200)
    evaluation: EvaluationPolicy = Field(default_factory=EvaluationPolicy)

    @classmethod
    def of(cls, spec: ModelSpec) -> JobSpec:
        """The job of a declared model."""
        return cls(
            **spec.features.model_dump(),
            **spec.training.model_dump(),
            label=spec.label,
            evaluation=spec.evaluation,
        )


class ModelConfig(BaseModel):
    """Everything the trainer knows about one registered model.

    Attributes:
        policy: When triggers become jobs.
        job: What a job does.
        revision: The revision of the model's document (``driftloop apply``); 0 for a
            model declared by the ``models`` setting.
    """

    policy: TriggerPolicy = Field(default_factory=TriggerPolicy)
    job: JobSpec = Field(default_factory=JobSpec)
    revision: int = 0

    @classmethod
    def of(cls, declaration: ModelDeclaration, revision: int) -> ModelConfig:
        """The trainer's part of a model document."""
        return cls(
            policy=declaration.spec.trigger, job=JobSpec.of(declaration.spec), revision=revision
        )


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
        trigger: ``kind``, ``reason``, ``event_id``, ``event_type``, ``event_source``,
            ``episode_id`` and ``onset`` (when the change the trigger is about began, ISO
            8601; "" for none).
        tracking_url: Tracking service (MLflow tracking URI).
        registry_url: Registry service (MLflow registry URI).
        features_url: Features service.
        experiment_name: Tracking experiment of the run.
        work_dir: The job's folder (context, logs, result, scratch files).
        token: The job's own credential (a ``writer`` token valid for this job only,
            needed to report its result); the job sends it to the suite's services.
        kind: ``training``, or ``score`` (the entry point scores a file and returns
            what it did as JSON).
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
    kind: str = JobKind.TRAINING.value

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
