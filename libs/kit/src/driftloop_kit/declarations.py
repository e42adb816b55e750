"""A model declared once: the document ``driftloop apply`` sends, and its sections.

One document per registered model says everything the suite needs to run its loop:
what it reads (``features``), what it predicts (``label``), how it is trained
(``training``), when (``trigger``), how a challenger is judged (``evaluation``), how
requests reach it (``serving``) and how it is watched (``monitor``)::

    apiVersion: driftloop/v1
    kind: Model
    metadata:
      name: churn-classifier
    spec:
      label: churned
      features:
        feature_service: churn_v1
      trigger:
        cooldown_seconds: 120
      monitor:
        window_rows: 200

The trainer stores each applied document as a new revision and publishes it
(``driftloop.trainer.model.declared``, its JSON in the event); serving and the monitor
take their sections from the event, so no service restarts. The sections are this
module's models, shared by the services that act on them (the trainer's trigger policy
and evaluation gate, serving's traffic policy, the monitor's policy), so that a document
is checked once, completely, wherever it is read: by ``driftloop apply`` before it is
sent, and by the trainer before it is stored. ``docs/model.schema.json`` is its JSON
schema (``python -m driftloop_kit.declarations``).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from croniter import croniter  # type: ignore[import-untyped]
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "API_VERSION",
    "KIND",
    "BatchingPolicy",
    "EvaluationPolicy",
    "FeaturesSpec",
    "GuardrailSpec",
    "Metadata",
    "ModelDeclaration",
    "ModelSpec",
    "MonitorPolicy",
    "ServingSpec",
    "TrafficPolicy",
    "TrainingSpec",
    "TriggerPolicy",
    "validate_schedule",
]

#: The ``apiVersion`` of a model document.
API_VERSION = "driftloop/v1"
#: The ``kind`` of a model document.
KIND = "Model"
#: A registered model's name: what MLflow accepts in a URL path, without surprises.
MODEL_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"

#: The reference pipeline (scikit-learn) that trains a model unless it names its own.
REFERENCE_PIPELINE = "driftloop_trainer.pipelines.sklearn:train"

#: Column types a monitor policy may force, in Evidently's words.
ColumnKind = Literal["num", "cat", "text"]
#: Performance metrics the monitor computes on labelled predictions.
PerformanceMetric = Literal["accuracy", "f1", "rmse", "mae"]


def validate_schedule(schedule: str) -> str:
    """Check a schedule: ``""``, an interval in seconds (``"3600"``) or a cron expression.

    Raises:
        ValueError: When it is neither.
    """
    text = schedule.strip()
    if not text:
        return ""
    try:
        if float(text) <= 0:
            raise ValueError(f"schedule interval must be positive, got {text!r}")
        return text
    except ValueError as error:
        if "positive" in str(error):
            raise
    if not croniter.is_valid(text):
        raise ValueError(f"schedule {text!r} is neither seconds nor a cron expression")
    return text


# -- trigger -----------------------------------------------------------------------


class TriggerPolicy(BaseModel):
    """How one model's triggers become training jobs.

    Attributes:
        debounce_seconds: After a job starts, further triggers within this window start none.
        cooldown_seconds: After a job finishes, triggers within this window start none.
        max_concurrent: Most jobs of the model queued or running at once.
        dedup_key: Template of a trigger's dedup key; placeholders ``{kind}``, ``{model}``,
            ``{version}``, ``{window}``, ``{event_id}``.
        dedup_seconds: How long a dedup key is remembered.
        new_data_rows: ``features.ingested`` events count once this many rows arrived
            for the model's feature views since its last job; 0 ignores new data.
        schedule: A cron expression (``"0 3 * * *"``) or an interval in seconds
            (``"3600"``); empty for none.
        on_drift: Drift alerts trigger a training.
        on_performance: Performance alerts trigger a training.
        retry_backoff_seconds: After the gate refuses an episode's challenger, the
            episode's next retrain waits this long, doubled at each further refusal.
        max_refusals_per_episode: Refusals after which the trainer stops retraining for
            the episode and escalates (``training.escalated``).
        min_new_labels: A drift-triggered job waits until the label store holds this
            many labels of the model observed since the drift began (the start of the
            alerting window), so that it trains and is judged on the new distribution;
            0 starts at once.
        label_wait_seconds: The longest such a job waits after the alert; then it starts
            with the labels there are, and its decision says how many.
    """

    model_config = ConfigDict(extra="forbid")

    debounce_seconds: float = Field(default=300.0, ge=0)
    cooldown_seconds: float = Field(default=600.0, ge=0)
    max_concurrent: int = Field(default=1, ge=1)
    dedup_key: str = "{kind}:{model}:{version}:{window}"
    dedup_seconds: float = Field(default=86_400.0, ge=0)
    new_data_rows: int = Field(default=0, ge=0)
    schedule: str = ""
    on_drift: bool = True
    on_performance: bool = True
    retry_backoff_seconds: float = Field(default=600.0, ge=0, le=30 * 86_400)
    max_refusals_per_episode: int = Field(default=3, ge=1, le=100)
    min_new_labels: int = Field(default=0, ge=0, le=10_000)
    label_wait_seconds: float = Field(default=600.0, ge=0, le=7 * 86_400)

    @field_validator("dedup_key")
    @classmethod
    def _check_template(cls, value: str) -> str:
        try:
            value.format(kind="", model="", version="", window="", event_id="")
        except (KeyError, IndexError, ValueError) as error:
            raise ValueError(
                "dedup_key may use {kind}, {model}, {version}, {window} and {event_id} only"
            ) from error
        return value

    @field_validator("schedule")
    @classmethod
    def _check_schedule(cls, value: str) -> str:
        return validate_schedule(value)


# -- evaluation --------------------------------------------------------------------


class GuardrailSpec(BaseModel):
    """A metric the challenger must keep within a bound, whatever its main score.

    Attributes:
        name: Name of the guardrail, e.g. ``"min_f1_macro"``.
        metric: The challenger metric it checks, e.g. ``"f1_macro"``.
        min: Lowest allowed value (inclusive), or None.
        max: Highest allowed value (inclusive), or None.
    """

    model_config = ConfigDict(extra="forbid")

    name: str
    metric: str
    min: float | None = None
    max: float | None = None


class EvaluationPolicy(BaseModel):
    """How the challenger is compared with the champion.

    Attributes:
        metric: The deciding metric, e.g. ``"accuracy"``.
        higher_is_better: True for accuracy, False for an error such as rmse.
        min_improvement: How much better than the champion the challenger must be
            (absolute, in the metric's unit); with 0 it must be strictly better.
        guardrails: Bounds every challenger must respect.
        alias: The alias that moves on a pass.
        previous_alias: The alias the old champion keeps.
        chance_margin: Labels are suspect when every candidate's accuracy on the
            held-out rows is at most the share of their most frequent label plus this
            margin (no model does better than always answering that label): the trainer
            escalates instead of retraining on them. Negative turns the check off.
        max_label_shift: Labels are suspect when the held-out rows' label distribution
            is further than this total variation distance (0-1) from the labels before
            them; 1 turns the check off (a real concept shift moves labels too).
    """

    model_config = ConfigDict(extra="forbid")

    metric: str = "accuracy"
    higher_is_better: bool = True
    min_improvement: float = Field(default=0.0, ge=0, le=1e9)
    min_evaluation_rows: int = Field(
        default=30,
        ge=0,
        le=100_000_000,
        description="With a champion to beat, fewer evaluation rows keep the champion.",
    )
    confidence: float = Field(
        default=0.95,
        ge=0,
        lt=1,
        description=(
            "Confidence of the paired (exact McNemar) test a gain must pass; 0 decides on "
            "the scores alone."
        ),
    )
    guardrails: list[GuardrailSpec] = Field(default_factory=list)
    alias: str = "champion"
    previous_alias: str = "previous"
    chance_margin: float = Field(default=0.02, ge=-1, le=1)
    max_label_shift: float = Field(default=1.0, ge=0, le=1)


# -- serving -----------------------------------------------------------------------


class TrafficPolicy(BaseModel):
    """How one model's requests are split between its champion and its challenger.

    Attributes:
        canary_percent: Share of requests (0-100) answered by the challenger.
        shadow: The challenger also scores every request; its answer is logged,
            never returned.
        challenger_alias: The alias the challenger is loaded from.
    """

    model_config = ConfigDict(extra="forbid")

    canary_percent: float = Field(default=0.0, ge=0, le=100)
    shadow: bool = False
    challenger_alias: str = "challenger"


class BatchingPolicy(BaseModel):
    """Adaptive micro-batching of one model's requests (off by default).

    Concurrent requests that arrive within ``max_batch_time`` of the first are scored
    with one call of the model, as MLServer's adaptive batching (same two settings) and
    Triton's dynamic batcher do; each request keeps its own answer, error and
    prediction record.

    Attributes:
        max_batch_size: Most rows scored in one call; 1 (the default) turns batching off.
        max_batch_time: Seconds the first request of a batch waits for others at most.
    """

    model_config = ConfigDict(extra="forbid")

    max_batch_size: int = Field(default=1, ge=1, le=4096)
    max_batch_time: float = Field(default=0.002, gt=0, le=1.0)

    @property
    def enabled(self) -> bool:
        """Requests are merged (more than one row fits a batch)."""
        return self.max_batch_size > 1


# -- monitor -----------------------------------------------------------------------


class MonitorPolicy(BaseModel):
    """How one registered model is monitored (all its versions).

    The drift fields mirror the arguments of Evidently's ``DataDriftPreset``; left unset,
    Evidently's own defaults apply (the test and threshold it picks per column type and
    reference size, and a dataset drift share of 0.5).
    """

    model_config = ConfigDict(extra="forbid")

    window_rows: int | None = Field(
        default=None,
        ge=2,
        le=10_000_000,
        description="A window closes after this many rows; unset: the service default.",
        examples=[1000],
    )
    window_seconds: float | None = Field(
        default=None,
        gt=0,
        # Beyond ~30 days a deadline overflows nothing, but no window that long is useful;
        # an unbounded value used to overflow the deadline and dead-letter every row.
        le=31 * 86_400,
        description="A window closes this many seconds after its first row; unset: default.",
        examples=[3600],
    )
    min_window_rows: int = Field(
        default=30,
        ge=1,
        le=10_000_000,
        description="A window closed by time with fewer rows is recorded but not tested.",
    )
    columns: list[str] | None = Field(
        default=None,
        description="Columns to watch; unset: every column of the reference data.",
        examples=[["petal_width", "petal_length"]],
    )
    column_types: dict[str, ColumnKind] = Field(
        default_factory=dict,
        description="Column type overrides; others are inferred by Evidently from the reference.",
        examples=[{"zip_code": "cat"}],
    )
    drift_share: float = Field(
        default=0.5,
        gt=0,
        le=1,
        description="The dataset drifts when at least this share of watched columns drifts.",
    )
    method: str | None = Field(default=None, description="Evidently stattest for every column.")
    num_method: str | None = Field(default=None, description="Stattest for numerical columns.")
    cat_method: str | None = Field(default=None, description="Stattest for categorical columns.")
    text_method: str | None = Field(default=None, description="Stattest for text columns.")
    per_column_method: dict[str, str] | None = Field(
        default=None, description="Stattest per column.", examples=[{"age": "psi"}]
    )
    threshold: float | None = Field(default=None, description="Threshold for every column.")
    num_threshold: float | None = Field(default=None, description="Threshold, numerical columns.")
    cat_threshold: float | None = Field(default=None, description="Threshold, categorical columns.")
    text_threshold: float | None = Field(default=None, description="Threshold, text columns.")
    per_column_threshold: dict[str, float] | None = Field(
        default=None, description="Threshold per column."
    )
    performance_metric: PerformanceMetric | None = Field(
        default=None,
        description="Metric computed on labelled predictions; unset: no performance alert.",
    )
    performance_threshold: float | None = Field(
        default=None,
        description="`performance.degraded` when the metric is worse than this.",
        examples=[0.9],
    )
    performance_window_rows: int = Field(
        default=200, ge=1, le=1_000_000, description="Labelled predictions per performance window."
    )
    multiple_testing: Literal["none", "benjamini_hochberg"] = Field(
        default="none",
        description=(
            "`benjamini_hochberg` adjusts the p-values of a window's columns together, so "
            "that many columns do not inflate false alarms (distance tests are left as "
            "they are); `none` keeps Evidently's per-column decision."
        ),
    )
    min_effect_size: float | None = Field(
        default=None,
        ge=0,
        le=1000,
        description=(
            "A column drifts only if it also moved at least this much: the mean's shift in "
            "reference standard deviations for numerical columns, the total variation "
            "distance (0-1) for others. Unset: Evidently's decision."
        ),
    )
    close_after_windows: int = Field(
        default=2,
        ge=1,
        le=1000,
        description=(
            "An open drift or performance episode closes (`drift.cleared`, "
            "`performance.recovered`) after this many clear windows in a row; until then "
            "later windows update the episode and alert no more. 1: the first clear window."
        ),
    )
    drift_close_share: float | None = Field(
        default=None,
        gt=0,
        le=1,
        description=(
            "A window counts towards closing a drift episode when its share of drifted "
            "columns is below this (hysteresis: at most `drift_share`); unset: below "
            "`drift_share`."
        ),
    )

    @model_validator(mode="after")
    def _threshold_with_metric(self) -> MonitorPolicy:
        if (self.performance_metric is None) != (self.performance_threshold is None):
            raise ValueError("performance_metric and performance_threshold go together")
        if self.drift_close_share is not None and self.drift_close_share > self.drift_share:
            raise ValueError(
                f"drift_close_share ({self.drift_close_share}) must be at most drift_share "
                f"({self.drift_share}): an episode cannot close on a window that opens one"
            )
        return self

    def rows_limit(self, default: int) -> int:
        """Rows that close a window."""
        return self.window_rows or default

    def seconds_limit(self, default: float) -> float:
        """Seconds after its first row that close a window."""
        return self.window_seconds or default


# -- features, label, training ------------------------------------------------------


class FeaturesSpec(BaseModel):
    """What the model reads: a Feast feature service, feature references, or both.

    Attributes:
        feature_service: A feature service of the features service's repo.
        features: Feature references, ``view:feature``.
        feature_views: The feature views the model reads (lineage, new-data triggers);
            views named in ``features`` count too.
    """

    model_config = ConfigDict(extra="forbid")

    feature_service: str | None = Field(default=None, min_length=1, max_length=200)
    features: list[str] = Field(default_factory=list, max_length=10_000)
    feature_views: list[str] = Field(default_factory=list, max_length=1_000)

    @field_validator("features")
    @classmethod
    def _references(cls, value: list[str]) -> list[str]:
        wrong = [ref for ref in value if ref.count(":") != 1 or ref.startswith(":")]
        if wrong:
            raise ValueError(f"feature references are `view:feature`, got {wrong[:5]}")
        return value


class TrainingSpec(BaseModel):
    """How the model is trained.

    Attributes:
        entry_point: ``module:function`` called with the job context; it returns the
            result (run id, version, scores).
        parameters: Default training parameters; a trigger may override them.
        labels_source: An optional import of labelled rows (join keys,
            ``event_timestamp``, label): a CSV/Parquet path or URL, or ``builtin:iris``.
            Empty: the suite's label store.
        training_window_days: Only rows of the last N days are used (0: all).
        evaluation_fraction: The share of rows held out for the evaluation gate, drawn
            from the recent rows (twice as many), so that training sees them too.
        image: Container image of the job (Kubernetes executor).
        timeout_seconds: A job running longer is stopped and failed.
    """

    model_config = ConfigDict(extra="forbid")

    entry_point: str = REFERENCE_PIPELINE
    parameters: dict[str, str] = Field(default_factory=dict, max_length=200)
    labels_source: str = Field(default="", max_length=4096)
    training_window_days: float = Field(default=0.0, ge=0, le=36_500)
    evaluation_fraction: float = Field(default=0.3, gt=0, lt=0.5)
    image: str = Field(default="driftloop/trainer:latest", max_length=512)
    timeout_seconds: float = Field(default=900.0, gt=0, le=7 * 86_400)

    @field_validator("entry_point")
    @classmethod
    def _check_entry_point(cls, value: str) -> str:
        module, sep, function = value.partition(":")
        if not sep or not module or not function:
            raise ValueError(f"entry_point must be 'module:function', got {value!r}")
        return value


class ServingSpec(TrafficPolicy):
    """How requests reach the model: its traffic policy, and where the features of a
    request that sends entity keys come from.

    Attributes:
        enabled: Serving serves the model (its champion, and its challenger when the
            traffic policy sends it requests).
        feature_service: A feature service, or a list of ``view:feature`` references;
            unset: the model's ``features``.
        batching: Adaptive micro-batching of concurrent requests (off by default).
    """

    enabled: bool = True
    feature_service: str | list[str] | None = None
    batching: BatchingPolicy = Field(default_factory=BatchingPolicy)


class ModelSpec(BaseModel):
    """Everything the suite needs to run one model's loop."""

    model_config = ConfigDict(extra="forbid")

    label: str = Field(
        min_length=1, max_length=200, description="The label column the model predicts."
    )
    features: FeaturesSpec = Field(default_factory=FeaturesSpec)
    training: TrainingSpec = Field(default_factory=TrainingSpec)
    trigger: TriggerPolicy = Field(default_factory=TriggerPolicy)
    evaluation: EvaluationPolicy = Field(default_factory=EvaluationPolicy)
    serving: ServingSpec = Field(default_factory=ServingSpec)
    monitor: MonitorPolicy = Field(default_factory=MonitorPolicy)

    @model_validator(mode="after")
    def _reads_something(self) -> ModelSpec:
        if not (self.features.feature_service or self.features.features):
            raise ValueError("features: name a feature_service or a list of features")
        return self

    def serving_features(self) -> str | list[str]:
        """Where serving looks up the features of a keyed request."""
        if self.serving.feature_service:
            return self.serving.feature_service
        return self.features.feature_service or list(self.features.features)


class Metadata(BaseModel):
    """Who the document is about.

    Attributes:
        name: The registered model's name.
        description: Free text, shown with the model.
        labels: Free ``key: value`` pairs for people and tools.
    """

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=MODEL_NAME_PATTERN)
    description: str = Field(default="", max_length=10_000)
    labels: dict[str, str] = Field(default_factory=dict, max_length=100)


class ModelDeclaration(BaseModel):
    """One model's document, as ``driftloop apply`` sends it."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    api_version: Literal["driftloop/v1"] = Field(alias="apiVersion")
    kind: Literal["Model"]
    metadata: Metadata
    spec: ModelSpec

    @property
    def name(self) -> str:
        """The registered model's name."""
        return self.metadata.name

    def document(self) -> dict[str, Any]:
        """The document as JSON, every default filled in (what is stored and published)."""
        return self.model_dump(mode="json", by_alias=True)

    def digest(self) -> str:
        """SHA-256 of the canonical JSON: the same document applied twice is one revision."""
        canonical = json.dumps(self.document(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


def json_schema() -> dict[str, Any]:
    """The JSON schema of a model document (``docs/model.schema.json``)."""
    schema = ModelDeclaration.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://driftloop.dev/schemas/model.schema.json"
    schema["title"] = "driftloop model document (driftloop/v1, kind Model)"
    return schema


if __name__ == "__main__":  # pragma: no cover - ``python -m driftloop_kit.declarations``
    print(json.dumps(json_schema(), indent=2, sort_keys=True))
