"""The lineage log's pure rules: what an event records, and which events make a version's chain."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from driftloop.common.v1.common_pb2 import EventRef, ModelRef
from driftloop.monitor.v1 import events_pb2 as monitor
from driftloop.registry.v1 import events_pb2 as registry
from driftloop.trainer.v1 import events_pb2 as trainer
from driftloop_events.catalog import CATALOG, spec_for
from driftloop_events.envelope import CloudEvent
from driftloop_registry.domain.lineage_log import (
    LOGGED_TYPES,
    InvalidEvent,
    LogEntry,
    Role,
    log_entry,
    version_chain,
)

pytestmark = pytest.mark.unit

T0 = datetime(2026, 11, 30, 15, 0, tzinfo=UTC)


@pytest.mark.parametrize("event_type", sorted(LOGGED_TYPES))
def test_every_logged_type_records_its_model_and_a_json_ready_summary(event_type: str) -> None:
    example = spec_for(event_type).example()
    entry = log_entry(CloudEvent.new(example, id="evt-1", time=T0))
    assert (entry.id, entry.type, entry.time) == ("evt-1", event_type, T0)
    assert entry.model == "iris-classifier"
    assert entry.summary
    json.dumps(entry.summary, allow_nan=False)  # PostgreSQL's json has no NaN


def test_the_log_takes_the_monitor_alerts_and_training_jobs_but_not_the_other_types() -> None:
    consumed = {t for t in LOGGED_TYPES if not t.startswith("driftloop.registry.")}
    assert consumed == {
        "driftloop.monitor.drift.detected",
        "driftloop.monitor.drift.cleared",
        "driftloop.monitor.performance.degraded",
        "driftloop.monitor.performance.recovered",
        "driftloop.trainer.training.requested",
        "driftloop.trainer.training.started",
        "driftloop.trainer.training.completed",
        "driftloop.trainer.training.failed",
        "driftloop.trainer.training.escalated",
    }
    prediction = CATALOG["driftloop.serving.prediction.logged"].example()
    with pytest.raises(InvalidEvent, match="not recorded"):
        log_entry(CloudEvent.new(prediction))


def test_a_drift_alert_records_the_version_the_drifted_columns_and_the_report() -> None:
    entry = log_entry(CloudEvent.new(CATALOG["driftloop.monitor.drift.detected"].example()))
    assert entry.version == 3
    assert entry.summary["drifted_columns"] == ["petal_width", "petal_length", "sepal_length"]
    assert entry.summary["columns"] == 4
    assert entry.summary["drift_share"] == 0.75
    assert entry.summary["report_url"].endswith("/reports/rep-20250301-1300-iris-3")
    assert entry.summary["window"]["start"] == "2025-03-01T13:00:00Z"


def test_a_training_request_records_its_job_and_the_event_that_triggered_it() -> None:
    entry = log_entry(CloudEvent.new(CATALOG["driftloop.trainer.training.requested"].example()))
    assert entry.job_id == "job-7d1c2b"
    assert entry.cause_id == entry.summary["trigger_event_id"] != ""
    assert entry.summary["trigger_kind"] == "drift"
    assert entry.version is None


def test_an_alias_move_records_the_new_and_the_previous_version_and_its_cause() -> None:
    moved = registry.AliasSet(
        name="m", alias="champion", version=2, previous_version=1, cause=EventRef(id="done-1")
    )
    entry = log_entry(CloudEvent.new(moved))
    assert (entry.version, entry.summary["previous_version"], entry.cause_id) == (2, 1, "done-1")
    first = log_entry(CloudEvent.new(registry.AliasSet(name="m", alias="champion", version=1)))
    assert "previous_version" not in first.summary
    assert first.cause_id is None


def test_non_finite_scores_are_stored_as_proto3_json_spells_them() -> None:
    done = trainer.TrainingCompleted(
        job_id="j",
        model_name="m",
        model_version=2,
        evaluation=trainer.EvaluationResult(metric="rmse", challenger_score=math.nan),
    )
    entry = log_entry(CloudEvent.new(done))
    assert entry.summary["evaluation"]["challenger_score"] == "NaN"
    assert "champion_score" not in entry.summary["evaluation"]


@pytest.mark.parametrize(
    "message",
    [
        monitor.DriftDetected(model=ModelRef(name="", version=1)),
        trainer.TrainingStarted(job_id="job-1", model_name=""),
        trainer.TrainingStarted(job_id="", model_name="m"),
        trainer.TrainingCompleted(job_id="", model_name="m", model_version=2),
    ],
)
def test_an_event_without_its_model_or_its_job_cannot_be_logged(message: Any) -> None:
    with pytest.raises(InvalidEvent, match="has no"):
        log_entry(CloudEvent.new(message))


# -- a version's chain -----------------------------------------------------------------


class Log:
    """Builds a model's log, one minute per event."""

    def __init__(self) -> None:
        self.entries: list[LogEntry] = []

    def add(self, message: Any, event_id: str) -> str:
        time = T0 + timedelta(minutes=len(self.entries))
        self.entries.append(log_entry(CloudEvent.new(message, id=event_id, time=time)))
        return event_id


def drift(version: int) -> monitor.DriftDetected:
    return monitor.DriftDetected(model=ModelRef(name="m", version=version), drift_share=0.75)


def requested(job: str, trigger: str) -> trainer.TrainingRequested:
    return trainer.TrainingRequested(
        job_id=job,
        model_name="m",
        trigger=trainer.Trigger(kind=trainer.TRIGGER_KIND_DRIFT, event=EventRef(id=trigger)),
    )


def created(version: int, job: str = "", trigger: str = "") -> registry.ModelVersionCreated:
    message = registry.ModelVersionCreated(name="m", version=version)
    message.lineage.training_job_id = job
    message.lineage.triggering_event.id = trigger
    return message


def completed(job: str, version: int, *, promoted: bool) -> trainer.TrainingCompleted:
    return trainer.TrainingCompleted(
        job_id=job, model_name="m", model_version=version, promoted=promoted, alias="champion"
    )


def alias(version: int, previous: int | None = None, name: str = "champion") -> registry.AliasSet:
    message = registry.AliasSet(name="m", alias=name, version=version)
    if previous is not None:
        message.previous_version = previous
    return message


@pytest.fixture
def log() -> Log:
    """v1 by hand; drift on v1 retrains v2, promoted; drift on v2 retrains v3, not promoted."""
    log = Log()
    log.add(created(1), "v1")
    log.add(alias(1), "champion-1")
    log.add(alias(1, name="canary"), "canary-1")
    log.add(drift(1), "drift-1")
    log.add(requested("job-a", "drift-1"), "req-a")
    log.add(trainer.TrainingStarted(job_id="job-a", model_name="m"), "start-a")
    log.add(created(2, "job-a", "drift-1"), "v2")
    log.add(alias(2, 1), "champion-2")
    log.add(completed("job-a", 2, promoted=True), "done-a")
    log.add(drift(1), "drift-1-late")  # still some traffic on v1 (the canary)
    log.add(drift(2), "drift-2")
    log.add(requested("job-b", "drift-2"), "req-b")
    log.add(trainer.TrainingFailed(job_id="job-b", model_name="m"), "fail-b")
    log.add(requested("job-c", "drift-2"), "req-c")
    log.add(created(3, "job-c", "drift-2"), "v3")
    log.add(completed("job-c", 3, promoted=False), "done-c")
    return log


def chain(log: Log, version: int, **lineage: str) -> list[tuple[str, Role]]:
    return [(e.id, role) for e, role in version_chain(log.entries, version, **lineage)]


def test_a_retrained_version_shows_what_led_to_it_and_what_happened_to_it_since(
    log: Log,
) -> None:
    assert chain(log, 2, training_job_id="job-a", trigger_event_id="drift-1") == [
        ("drift-1", Role.TRIGGER),
        ("req-a", Role.TRAINING),
        ("start-a", Role.TRAINING),
        ("v2", Role.REGISTERED),
        ("champion-2", Role.ALIAS),
        ("done-a", Role.TRAINING),
        ("drift-2", Role.MONITORING),
        ("req-b", Role.RETRAIN),
        ("fail-b", Role.RETRAIN),
        ("req-c", Role.RETRAIN),
        ("v3", Role.NEXT_VERSION),
        ("done-c", Role.RETRAIN),
    ]


def test_the_job_that_made_a_version_is_found_without_its_lineage_tags(log: Log) -> None:
    assert chain(log, 2)[:3] == [
        ("drift-1", Role.TRIGGER),
        ("req-a", Role.TRAINING),
        ("start-a", Role.TRAINING),
    ]


def test_the_first_version_shows_its_aliases_its_drift_and_the_version_that_replaced_it(
    log: Log,
) -> None:
    assert chain(log, 1) == [
        ("v1", Role.REGISTERED),
        ("champion-1", Role.ALIAS),
        ("canary-1", Role.ALIAS),
        ("drift-1", Role.MONITORING),
        ("req-a", Role.RETRAIN),
        ("start-a", Role.RETRAIN),
        ("v2", Role.NEXT_VERSION),
        ("champion-2", Role.ALIAS),  # moved away from it
        ("done-a", Role.RETRAIN),
        ("drift-1-late", Role.MONITORING),
    ]


def test_a_version_nothing_happened_to_yet_shows_only_its_origin(log: Log) -> None:
    assert [role for _, role in chain(log, 3)] == [
        Role.TRIGGER,
        Role.TRAINING,
        Role.REGISTERED,
        Role.TRAINING,
    ]
