"""Every driftloop event type: its message, topic, default source, key and subject.

The catalog is the one table that ties a CloudEvents ``ce_type`` to the protobuf message
that carries it and to where it travels. Each entry has a realistic, fully populated
example payload used by the docs and the tests.
"""

from __future__ import annotations

import builtins
import functools
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any, Generic, TypeVar
from urllib.parse import quote

from google.protobuf.message import Message

from driftloop.common.v1.common_pb2 import EventRef, ModelRef, Record, Value, ValueList, Window
from driftloop.features.v1 import events_pb2 as features
from driftloop.monitor.v1 import events_pb2 as monitor
from driftloop.registry.v1 import events_pb2 as registry
from driftloop.serving.v1 import events_pb2 as serving
from driftloop.tracking.v1 import events_pb2 as tracking
from driftloop.trainer.v1 import events_pb2 as trainer
from driftloop_events.errors import UnknownEventType
from driftloop_events.topics import TOPICS
from driftloop_events.values import make_record, value_text

M = TypeVar("M", bound=Message)


@dataclass(frozen=True)
class EventSpec(Generic[M]):
    """One event type of the contract.

    Attributes:
        type: CloudEvents type (``ce_type``), e.g. ``"driftloop.registry.alias.set"``.
        message: Protobuf message class that carries the event's data.
        topic: Kafka topic the event is published to.
        source: Default ``ce_source``, e.g. ``"/driftloop/registry"``.
        key: Returns the Kafka key (the entity the event is about) of a payload.
        subject: Returns the ``ce_subject`` of a payload, e.g. ``"models/iris/versions/3"``.
        example: Returns a realistic payload with every field set (docs and tests).
    """

    type: str
    # builtins.type: the field named ``type`` above shadows the builtin in this body.
    message: builtins.type[M]
    topic: str
    source: str
    key: Callable[[M], str]
    subject: Callable[[M], str]
    example: Callable[[], M]

    def __post_init__(self) -> None:
        if self.topic not in TOPICS:
            raise ValueError(f"event {self.type!r} names undeclared topic {self.topic!r}")

    @property
    def message_name(self) -> str:
        """Fully qualified protobuf name, e.g. ``"driftloop.registry.v1.AliasSet"``."""
        name: str = self.message.DESCRIPTOR.full_name
        return name


_SAFE_SEGMENT = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~")


def _seg(text: str) -> str:
    # Names may contain "/"; escape so a subject always splits into the same segments.
    # Most names need no escaping, and quote() is slow on the publish path.
    if _SAFE_SEGMENT.issuperset(text):
        return text
    return quote(text, safe="")


@functools.lru_cache(maxsize=4096)  # every prediction of a version has the same subject
def _model_subject(name: str, version: int) -> str:
    return f"models/{_seg(name)}/versions/{version}"


def entity_key(row: features.FeatureRow) -> str:
    """Return the Kafka key of a FeatureRow: its entity columns' values joined.

    The rule (documented on ``FeatureRow`` in the contract): sort ``entity_columns``,
    render each value as text (``driftloop_events.values.value_text``; missing gives
    ``""``) and join with ``"|"``. A row without entity columns is keyed by its push
    source.
    """
    if not row.entity_columns:
        return row.push_source
    return "|".join(
        value_text(row.values[column]) if column in row.values else ""
        for column in sorted(row.entity_columns)
    )


# --- examples -------------------------------------------------------------------------
# One story runs through them: iris-classifier v3 drifts, v4 is trained and promoted.

_T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
_RUN_ID = "8f2c1a9e0b7d4c3e9a6f5b1d2e3c4a5b"
_OLD_RUN_ID = "1b2c3d4e5f60718293a4b5c6d7e8f901"
_MODEL = "iris-classifier"
_ARTIFACTS = f"file:///var/driftloop/artifacts/1/{_RUN_ID}/artifacts"
_DRIFT_EPISODE = "ep-iris-classifier-3-7f2a91"
_PERFORMANCE_EPISODE = "ep-iris-classifier-3-91c0de"
_DRIFT_EVENT = EventRef(
    id="0f8e3b9c-6c1f-4c55-9a8e-2b8d3f1a7c10",
    type="driftloop.monitor.drift.detected",
    source="/driftloop/monitor",
)


def _window(hour: int) -> Window:
    start = _T0 + timedelta(hours=hour)
    return Window(
        id=f"{_MODEL}/3/{start.isoformat().replace('+00:00', 'Z')}",
        start_time=start,
        end_time=start + timedelta(hours=1),
        rows=1200,
    )


def _dataset_input() -> tracking.DatasetInput:
    return tracking.DatasetInput(
        name="iris-train",
        digest="a3f5c9e1",
        source_type="feast",
        source='{"feature_service": "iris_service", "end_time": "2025-03-01T12:00:00Z"}',
        schema='{"mlflow_colspec": [{"type": "double", "name": "sepal_length"}]}',
        profile='{"num_rows": 150, "num_elements": 600}',
        context="training",
    )


def _run_created() -> tracking.RunCreated:
    return tracking.RunCreated(
        run_id=_RUN_ID,
        experiment_id="1",
        run_name="iris-retrain-2025-03-01",
        user_id="trainer",
        status=tracking.RUN_STATUS_RUNNING,
        start_time=_T0 + timedelta(minutes=1),
        tags={"mlflow.source.name": "train.py", "driftloop.job_id": "job-7d1c2b"},
        artifact_uri=_ARTIFACTS,
    )


def _run_finished() -> tracking.RunFinished:
    return tracking.RunFinished(
        run_id=_RUN_ID,
        experiment_id="1",
        run_name="iris-retrain-2025-03-01",
        user_id="trainer",
        status=tracking.RUN_STATUS_FINISHED,
        start_time=_T0 + timedelta(minutes=1),
        end_time=_T0 + timedelta(minutes=4, seconds=31),
        metrics={"accuracy": 0.962, "f1_macro": 0.958},
        params={"max_depth": "5", "n_estimators": "200"},
        tags={"mlflow.runName": "iris-retrain-2025-03-01", "driftloop.job_id": "job-7d1c2b"},
        dataset_inputs=[_dataset_input()],
        artifact_uri=_ARTIFACTS,
    )


def _lineage() -> registry.Lineage:
    return registry.Lineage(
        feature_views=["iris_features"],
        dataset_digests=["a3f5c9e1"],
        triggering_event=_DRIFT_EVENT,
        training_job_id="job-7d1c2b",
    )


def _model_version_created() -> registry.ModelVersionCreated:
    return registry.ModelVersionCreated(
        name=_MODEL,
        version=4,
        source=f"runs:/{_RUN_ID}/model",
        run_id=_RUN_ID,
        tags={"validation_status": "pending"},
        description="Retrained after drift on petal_width",
        status=registry.MODEL_VERSION_STATUS_READY,
        create_time=_T0 + timedelta(minutes=5),
        artifact_checksums={
            "model.pkl": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
            "MLmodel": "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752",
        },
        lineage=_lineage(),
        user_id="trainer",
    )


def _model_version_updated() -> registry.ModelVersionUpdated:
    return registry.ModelVersionUpdated(
        name=_MODEL,
        version=4,
        changed_fields=[
            registry.MODEL_VERSION_FIELD_TAGS,
            registry.MODEL_VERSION_FIELD_DESCRIPTION,
        ],
        description="Champion since 2025-03-01",
        status=registry.MODEL_VERSION_STATUS_READY,
        tags={"validation_status": "approved", "owner": "ml-team"},
        update_time=_T0 + timedelta(minutes=6),
        user_id="trainer",
    )


def _alias_set() -> registry.AliasSet:
    return registry.AliasSet(
        name=_MODEL,
        alias="champion",
        version=4,
        previous_version=3,
        run_id=_RUN_ID,
        source=f"runs:/{_RUN_ID}/model",
        set_time=_T0 + timedelta(minutes=10),
        cause=EventRef(
            id="6a1d4e2f-3b5c-4d7e-8f90-a1b2c3d4e5f6",
            type="driftloop.trainer.training.completed",
            source="/driftloop/trainer",
        ),
        user_id="trainer",
    )


def _alias_deleted() -> registry.AliasDeleted:
    return registry.AliasDeleted(
        name=_MODEL,
        alias="canary",
        version=4,
        delete_time=_T0 + timedelta(hours=1),
        user_id="alice",
    )


def _feature_row() -> features.FeatureRow:
    return features.FeatureRow(
        push_source="iris_push",
        entity_columns=["flower_id"],
        values={
            "flower_id": Value(int64_value=1001),
            "sepal_length": Value(double_value=5.1),
            "species": Value(string_value="setosa"),
            "is_wild": Value(bool_value=True),
            "photo_sha256": Value(bytes_value=bytes.fromhex("9f86d081")),
            "petal_width": Value(null_value="NULL_VALUE"),
            "collected_at": Value(timestamp_value=_T0 - timedelta(days=2)),
            "embedding": Value(
                list_value=ValueList(
                    values=[Value(double_value=0.12), Value(double_value=-0.4)],
                )
            ),
        },
        event_time=_T0 - timedelta(seconds=30),
        create_time=_T0 - timedelta(seconds=29),
        to=features.PUSH_MODE_ONLINE_AND_OFFLINE,
    )


def _features_ingested() -> features.FeaturesIngested:
    return features.FeaturesIngested(
        push_source="iris_push",
        feature_views=["iris_features"],
        rows_written=500,
        rows_rejected=2,
        min_event_time=_T0 - timedelta(hours=1),
        max_event_time=_T0 - timedelta(seconds=1),
        online_store_written=True,
        offline_store_written=True,
    )


def _features_materialized() -> features.FeaturesMaterialized:
    return features.FeaturesMaterialized(
        feature_view="iris_features",
        start_time=_T0 - timedelta(hours=12),
        end_time=_T0,
        rows=12000,
        materialization_id="mat-20250301-1200",
    )


def _trigger() -> trainer.Trigger:
    return trainer.Trigger(
        kind=trainer.TRIGGER_KIND_DRIFT,
        event=_DRIFT_EVENT,
        reason="3 of 4 columns drifted (share 0.75 >= 0.5)",
        episode_id=_DRIFT_EPISODE,
    )


def _training_requested() -> trainer.TrainingRequested:
    return trainer.TrainingRequested(
        job_id="job-7d1c2b",
        model_name=_MODEL,
        trigger=_trigger(),
        parameters={"max_depth": "6"},
        requested_by="trainer-policy",
    )


def _training_started() -> trainer.TrainingStarted:
    return trainer.TrainingStarted(
        job_id="job-7d1c2b",
        model_name=_MODEL,
        run_id=_RUN_ID,
        attempt=1,
        start_time=_T0 + timedelta(minutes=1),
    )


def _training_completed() -> trainer.TrainingCompleted:
    return trainer.TrainingCompleted(
        job_id="job-7d1c2b",
        model_name=_MODEL,
        run_id=_RUN_ID,
        model_version=4,
        evaluation=trainer.EvaluationResult(
            passed=True,
            metric="accuracy",
            challenger_score=0.962,
            champion_score=0.911,
            higher_is_better=True,
            guardrails=[
                trainer.Guardrail(
                    name="max_latency_p95",
                    metric="latency_p95_ms",
                    value=12.5,
                    threshold=50.0,
                    passed=True,
                )
            ],
            champion_version=3,
            evaluation_rows=2400,
            scored_by="trainer",
            holdout_start="2025-03-01T10:00:00+00:00",
            holdout_end="2025-03-01T11:55:00+00:00",
            reason="accuracy 0.962 beats 0.911 (exact McNemar p=0.003 on 141 vs 19 rows)",
            reported_metrics={"accuracy": 0.97, "f1_macro": 0.96},
        ),
        promoted=True,
        alias="champion",
        start_time=_T0 + timedelta(minutes=1),
        end_time=_T0 + timedelta(minutes=6, seconds=10),
    )


def _training_failed() -> trainer.TrainingFailed:
    return trainer.TrainingFailed(
        job_id="job-7d1c2b",
        model_name=_MODEL,
        run_id=_RUN_ID,
        stage=trainer.TRAINING_STAGE_DATA,
        error="feature view 'iris_features' not found",
        error_type="FeatureViewNotFoundError",
        attempt=1,
        will_retry=True,
        fail_time=_T0 + timedelta(minutes=2, seconds=30),
    )


def _prediction_logged() -> serving.PredictionLogged:
    # A keyed request: the features of flower 1042 read from the feature store, with
    # their event times (the store's row for it was written 25 minutes before).
    features = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}
    inputs: list[Record] = [make_record({**features, "flower_id": 1042})]
    written = _T0 + timedelta(minutes=5)
    return serving.PredictionLogged(
        request_id="req-5b0e6c1f",
        model=ModelRef(name=_MODEL, version=3, run_id=_OLD_RUN_ID),
        alias="champion",
        route=serving.ROUTE_CHAMPION,
        inputs=inputs,
        outputs=[make_record({"label": "setosa", "probability": 0.97})],
        latency_ms=3.2,
        request_time=_T0 + timedelta(minutes=30, milliseconds=123),
        feature_times=[make_record(dict.fromkeys(features, written))],
    )


def _label_recorded() -> monitor.LabelRecorded:
    return monitor.LabelRecorded(
        request_id="req-5b0e6c1f",
        model_name=_MODEL,
        ground_truth=Value(string_value="setosa"),
        event_time=_T0 + timedelta(hours=2),
        entity_keys={"flower_id": Value(int64_value=1042)},
    )


def _drift_detected() -> monitor.DriftDetected:
    numeric = monitor.COLUMN_TYPE_NUMERICAL
    return monitor.DriftDetected(
        model=ModelRef(name=_MODEL, version=3, run_id=_OLD_RUN_ID),
        window=_window(1),
        columns=[
            monitor.ColumnDrift(
                column="petal_width",
                column_type=numeric,
                stattest="ks",
                score=0.003,
                threshold=0.05,
                drifted=True,
            ),
            monitor.ColumnDrift(
                column="petal_length",
                column_type=numeric,
                stattest="ks",
                score=0.01,
                threshold=0.05,
                drifted=True,
            ),
            monitor.ColumnDrift(
                column="sepal_length",
                column_type=numeric,
                stattest="wasserstein",
                score=0.2,
                threshold=0.1,
                drifted=True,
            ),
            monitor.ColumnDrift(
                column="sepal_width",
                column_type=numeric,
                stattest="ks",
                score=0.41,
                threshold=0.05,
                drifted=False,
            ),
        ],
        drift_share=0.75,
        dataset_drift_threshold=0.5,
        report_id="rep-20250301-1300-iris-3",
        report_url="http://monitor:8006/reports/rep-20250301-1300-iris-3",
        detect_time=_T0 + timedelta(hours=2, seconds=5),
        reference_digest="c0ffee12",
        episode_id=_DRIFT_EPISODE,
    )


def _drift_cleared() -> monitor.DriftCleared:
    return monitor.DriftCleared(
        model=ModelRef(name=_MODEL, version=3, run_id=_OLD_RUN_ID),
        window=_window(3),
        drift_share=0.25,
        dataset_drift_threshold=0.5,
        report_id="rep-20250301-1500-iris-3",
        report_url="http://monitor:8006/reports/rep-20250301-1500-iris-3",
        clear_time=_T0 + timedelta(hours=4, seconds=5),
        cleared_event=_DRIFT_EVENT,
        episode_id=_DRIFT_EPISODE,
    )


def _performance_degraded() -> monitor.PerformanceDegraded:
    return monitor.PerformanceDegraded(
        model=ModelRef(name=_MODEL, version=3, run_id=_OLD_RUN_ID),
        metric="accuracy",
        value=0.81,
        threshold=0.9,
        higher_is_better=True,
        window=_window(1),
        labelled_rows=480,
        report_id="perf-20250301-1400-iris-3",
        report_url="http://monitor:8006/reports/perf-20250301-1400-iris-3",
        detect_time=_T0 + timedelta(hours=2, seconds=5),
        episode_id=_PERFORMANCE_EPISODE,
    )


def _performance_recovered() -> monitor.PerformanceRecovered:
    return monitor.PerformanceRecovered(
        model=ModelRef(name=_MODEL, version=3, run_id=_OLD_RUN_ID),
        metric="accuracy",
        value=0.94,
        threshold=0.9,
        higher_is_better=True,
        window=_window(3),
        labelled_rows=460,
        recover_time=_T0 + timedelta(hours=4, seconds=5),
        episode_id=_PERFORMANCE_EPISODE,
    )


def _training_escalated() -> trainer.TrainingEscalated:
    return trainer.TrainingEscalated(
        model_name=_MODEL,
        episode_id=_DRIFT_EPISODE,
        reason="3 challengers refused for the episode: no gain the paired test supports",
        rule="max_refusals_per_episode=3",
        job_ids=["job-7d1c2b", "job-8e2d3c", "job-9f3e4d"],
        evidence={"refusals": "3", "last_gain": "0.0008", "evaluation_rows": "1150"},
        escalate_time=_T0 + timedelta(hours=5),
    )


def _model_declared() -> trainer.ModelDeclared:
    document = {
        "apiVersion": "driftloop/v1",
        "kind": "Model",
        "metadata": {"name": _MODEL, "description": "", "labels": {}},
        "spec": {
            "label": "species",
            "features": {"feature_service": "iris_classifier"},
            "trigger": {"cooldown_seconds": 120.0},
        },
    }
    return trainer.ModelDeclared(
        model_name=_MODEL,
        revision=3,
        document_json=json.dumps(document, sort_keys=True),
        digest="9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        applied_by="alice",
        apply_time=_T0 - timedelta(days=1),
    )


# --- the catalog ----------------------------------------------------------------------

_SPECS: tuple[EventSpec[Any], ...] = (
    EventSpec[tracking.RunCreated](
        type="driftloop.tracking.run.created",
        message=tracking.RunCreated,
        topic="tracking.runs",
        source="/driftloop/tracking",
        key=lambda m: m.run_id,
        subject=lambda m: f"runs/{_seg(m.run_id)}",
        example=_run_created,
    ),
    EventSpec[tracking.RunFinished](
        type="driftloop.tracking.run.finished",
        message=tracking.RunFinished,
        topic="tracking.runs",
        source="/driftloop/tracking",
        key=lambda m: m.run_id,
        subject=lambda m: f"runs/{_seg(m.run_id)}",
        example=_run_finished,
    ),
    EventSpec[registry.ModelVersionCreated](
        type="driftloop.registry.model_version.created",
        message=registry.ModelVersionCreated,
        topic="registry.models",
        source="/driftloop/registry",
        key=lambda m: m.name,
        subject=lambda m: _model_subject(m.name, m.version),
        example=_model_version_created,
    ),
    EventSpec[registry.ModelVersionUpdated](
        type="driftloop.registry.model_version.updated",
        message=registry.ModelVersionUpdated,
        topic="registry.models",
        source="/driftloop/registry",
        key=lambda m: m.name,
        subject=lambda m: _model_subject(m.name, m.version),
        example=_model_version_updated,
    ),
    EventSpec[registry.AliasSet](
        type="driftloop.registry.alias.set",
        message=registry.AliasSet,
        topic="registry.models",
        source="/driftloop/registry",
        key=lambda m: m.name,
        subject=lambda m: f"models/{_seg(m.name)}/aliases/{_seg(m.alias)}",
        example=_alias_set,
    ),
    EventSpec[registry.AliasDeleted](
        type="driftloop.registry.alias.deleted",
        message=registry.AliasDeleted,
        topic="registry.models",
        source="/driftloop/registry",
        key=lambda m: m.name,
        subject=lambda m: f"models/{_seg(m.name)}/aliases/{_seg(m.alias)}",
        example=_alias_deleted,
    ),
    EventSpec[features.FeatureRow](
        type="driftloop.features.row.pushed",
        message=features.FeatureRow,
        topic="features.ingest",
        source="/driftloop/features",
        key=entity_key,
        subject=lambda m: f"push_sources/{_seg(m.push_source)}",
        example=_feature_row,
    ),
    EventSpec[features.FeaturesIngested](
        type="driftloop.features.ingested",
        message=features.FeaturesIngested,
        topic="features.events",
        source="/driftloop/features",
        key=lambda m: m.push_source,
        subject=lambda m: f"push_sources/{_seg(m.push_source)}",
        example=_features_ingested,
    ),
    EventSpec[features.FeaturesMaterialized](
        type="driftloop.features.materialized",
        message=features.FeaturesMaterialized,
        topic="features.events",
        source="/driftloop/features",
        key=lambda m: m.feature_view,
        subject=lambda m: f"feature_views/{_seg(m.feature_view)}",
        example=_features_materialized,
    ),
    EventSpec[trainer.TrainingRequested](
        type="driftloop.trainer.training.requested",
        message=trainer.TrainingRequested,
        topic="trainer.jobs",
        source="/driftloop/trainer",
        key=lambda m: m.model_name,
        subject=lambda m: f"jobs/{_seg(m.job_id)}",
        example=_training_requested,
    ),
    EventSpec[trainer.TrainingStarted](
        type="driftloop.trainer.training.started",
        message=trainer.TrainingStarted,
        topic="trainer.jobs",
        source="/driftloop/trainer",
        key=lambda m: m.model_name,
        subject=lambda m: f"jobs/{_seg(m.job_id)}",
        example=_training_started,
    ),
    EventSpec[trainer.TrainingCompleted](
        type="driftloop.trainer.training.completed",
        message=trainer.TrainingCompleted,
        topic="trainer.jobs",
        source="/driftloop/trainer",
        key=lambda m: m.model_name,
        subject=lambda m: f"jobs/{_seg(m.job_id)}",
        example=_training_completed,
    ),
    EventSpec[trainer.TrainingFailed](
        type="driftloop.trainer.training.failed",
        message=trainer.TrainingFailed,
        topic="trainer.jobs",
        source="/driftloop/trainer",
        key=lambda m: m.model_name,
        subject=lambda m: f"jobs/{_seg(m.job_id)}",
        example=_training_failed,
    ),
    EventSpec[trainer.TrainingEscalated](
        type="driftloop.trainer.training.escalated",
        message=trainer.TrainingEscalated,
        topic="trainer.jobs",
        source="/driftloop/trainer",
        key=lambda m: m.model_name,
        subject=lambda m: f"models/{_seg(m.model_name)}/episodes/{_seg(m.episode_id)}",
        example=_training_escalated,
    ),
    EventSpec[trainer.ModelDeclared](
        type="driftloop.trainer.model.declared",
        message=trainer.ModelDeclared,
        topic="trainer.models",
        source="/driftloop/trainer",
        key=lambda m: m.model_name,
        subject=lambda m: f"models/{_seg(m.model_name)}/revisions/{m.revision}",
        example=_model_declared,
    ),
    EventSpec[serving.PredictionLogged](
        type="driftloop.serving.prediction.logged",
        message=serving.PredictionLogged,
        topic="predictions",
        source="/driftloop/serving",
        # The model: one consumer (a monitor replica) owns all windows of a model.
        key=lambda m: m.model.name,
        subject=lambda m: _model_subject(m.model.name, m.model.version),
        example=_prediction_logged,
    ),
    EventSpec[monitor.LabelRecorded](
        type="driftloop.monitor.label.recorded",
        message=monitor.LabelRecorded,
        topic="labels",
        source="/driftloop/monitor",
        # As its prediction's (same partition count): the label meets it in one consumer.
        key=lambda m: m.model_name or m.request_id,
        subject=lambda m: f"predictions/{_seg(m.request_id)}",
        example=_label_recorded,
    ),
    EventSpec[monitor.DriftDetected](
        type="driftloop.monitor.drift.detected",
        message=monitor.DriftDetected,
        topic="monitor.alerts",
        source="/driftloop/monitor",
        key=lambda m: m.model.name,
        subject=lambda m: _model_subject(m.model.name, m.model.version),
        example=_drift_detected,
    ),
    EventSpec[monitor.DriftCleared](
        type="driftloop.monitor.drift.cleared",
        message=monitor.DriftCleared,
        topic="monitor.alerts",
        source="/driftloop/monitor",
        key=lambda m: m.model.name,
        subject=lambda m: _model_subject(m.model.name, m.model.version),
        example=_drift_cleared,
    ),
    EventSpec[monitor.PerformanceDegraded](
        type="driftloop.monitor.performance.degraded",
        message=monitor.PerformanceDegraded,
        topic="monitor.alerts",
        source="/driftloop/monitor",
        key=lambda m: m.model.name,
        subject=lambda m: _model_subject(m.model.name, m.model.version),
        example=_performance_degraded,
    ),
    EventSpec[monitor.PerformanceRecovered](
        type="driftloop.monitor.performance.recovered",
        message=monitor.PerformanceRecovered,
        topic="monitor.alerts",
        source="/driftloop/monitor",
        key=lambda m: m.model.name,
        subject=lambda m: _model_subject(m.model.name, m.model.version),
        example=_performance_recovered,
    ),
)

CATALOG: Mapping[str, EventSpec[Any]] = MappingProxyType({spec.type: spec for spec in _SPECS})
_BY_MESSAGE: Mapping[str, EventSpec[Any]] = MappingProxyType(
    {spec.message_name: spec for spec in _SPECS}
)
_BY_CLASS: Mapping[type, EventSpec[Any]] = MappingProxyType({spec.message: spec for spec in _SPECS})


def spec_for(message_or_type: Message | type[Message] | str) -> EventSpec[Any]:
    """Look an event up by ``ce_type``, by message class or by message instance.

    Raises:
        UnknownEventType: Nothing in the catalog matches.
    """
    if isinstance(message_or_type, str):
        spec = CATALOG.get(message_or_type)
        if spec is None:
            raise UnknownEventType(message_or_type, list(CATALOG))
        return spec
    # Fast path for the publish loop: the generated class itself, or an instance of it.
    cls = message_or_type if isinstance(message_or_type, type) else type(message_or_type)
    found = _BY_CLASS.get(cls)
    if found is not None:
        return found
    name: str = message_or_type.DESCRIPTOR.full_name
    spec = _BY_MESSAGE.get(name)
    if spec is None:
        raise UnknownEventType(name, list(_BY_MESSAGE))
    return spec


def topic_events(topic: str) -> list[EventSpec[Any]]:
    """Return the event types published to ``topic``, in catalog order."""
    return [spec for spec in _SPECS if spec.topic == topic]
