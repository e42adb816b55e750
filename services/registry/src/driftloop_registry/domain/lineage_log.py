"""The lineage log: every event about a model, and the chain of one version.

The registry writes one :class:`LogEntry` per event about a model: its own
(``model_version.created``, ``alias.set``, ``alias.deleted``, written with the
change) and the ones it consumes from the monitor (``drift.*``,
``performance.degraded``) and the trainer (``training.*``). An entry keeps the
CloudEvents attributes, the model and version it is about, the training job it
belongs to, the event that caused it, and a summary of the payload.

:func:`version_chain` picks out of a model's log what led to one version (the
alerts that triggered its training, the job that made it) and what happened to
it since (alias moves to and from it, drift reports on it, the retraining they
caused, the versions that retraining made).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp
from pydantic import Field

from driftloop.common.v1.common_pb2 import Window
from driftloop.monitor.v1 import events_pb2 as monitor
from driftloop.registry.v1 import events_pb2 as registry
from driftloop.trainer.v1 import events_pb2 as trainer
from driftloop_events.catalog import spec_for
from driftloop_events.envelope import CloudEvent
from driftloop_registry.domain.model import LineageEvent, Model

VERSION_CREATED = spec_for(registry.ModelVersionCreated).type
ALIAS_SET = spec_for(registry.AliasSet).type
ALIAS_DELETED = spec_for(registry.AliasDeleted).type
DRIFT_DETECTED = spec_for(monitor.DriftDetected).type
DRIFT_CLEARED = spec_for(monitor.DriftCleared).type
PERFORMANCE_DEGRADED = spec_for(monitor.PerformanceDegraded).type
PERFORMANCE_RECOVERED = spec_for(monitor.PerformanceRecovered).type
TRAINING_REQUESTED = spec_for(trainer.TrainingRequested).type
TRAINING_STARTED = spec_for(trainer.TrainingStarted).type
TRAINING_COMPLETED = spec_for(trainer.TrainingCompleted).type
TRAINING_FAILED = spec_for(trainer.TrainingFailed).type
TRAINING_ESCALATED = spec_for(trainer.TrainingEscalated).type

#: The monitor's verdicts on a version.
MONITORING = frozenset({DRIFT_DETECTED, DRIFT_CLEARED, PERFORMANCE_DEGRADED, PERFORMANCE_RECOVERED})
#: A training job's lifecycle.
TRAINING = frozenset({TRAINING_REQUESTED, TRAINING_STARTED, TRAINING_COMPLETED, TRAINING_FAILED})


class InvalidEvent(ValueError):
    """An event that cannot be logged (no model name, no job id)."""


class Role(StrEnum):
    """How an event stands to the version whose chain is shown."""

    TRIGGER = "trigger"
    """An alert that triggered the training that made the version."""
    TRAINING = "training"
    """The training job that made the version."""
    REGISTERED = "registered"
    """The version's creation."""
    ALIAS = "alias"
    """An alias moved to or from the version, or deleted from it."""
    MONITORING = "monitoring"
    """A drift or performance report on the version."""
    RETRAIN = "retrain"
    """A training job those reports triggered."""
    NEXT_VERSION = "next_version"
    """A version that retraining made."""


class LogEntry(Model):
    """One row of the lineage log.

    Attributes:
        id: The event's id (``ce_id``).
        type: The event's type (``ce_type``).
        source: The event's source (``ce_source``).
        time: When it happened (``ce_time``), timezone-aware.
        model: The registered model it is about.
        version: The version it is about (the one created, the alias's new target,
            the monitored one, the one a job registered); None when it names none.
        job_id: The training job it belongs to (``training.*``, and a version made
            by a job).
        cause_id: The event that caused it: a training request's trigger, an alias
            move's cause, the alert a ``drift.cleared`` clears, a version's trigger.
        summary: The payload's useful fields, JSON-ready.
    """

    id: str
    type: str
    source: str
    time: datetime
    model: str
    version: int | None = None
    job_id: str | None = None
    cause_id: str | None = None
    summary: dict[str, Any] = Field(default_factory=dict)


def _time(stamp: Timestamp) -> str | None:
    return stamp.ToJsonString() if stamp.seconds or stamp.nanos else None


def _number(value: float) -> float | str:
    # PostgreSQL's json has no NaN: spelled as proto3 JSON spells it.
    if math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


def _window(window: Window) -> dict[str, Any]:
    return _compact(
        {
            "id": window.id,
            "start": _time(window.start_time),
            "end": _time(window.end_time),
            "rows": window.rows,
        }
    )


def _compact(values: Mapping[str, Any]) -> dict[str, Any]:
    """Without empty strings, lists, maps and Nones (unset proto3 fields)."""
    return {k: v for k, v in values.items() if v is not None and v not in ("", [], {})}


def _enum_name(prefix: str, name: str) -> str:
    return name.removeprefix(prefix).lower()


def _version(value: int) -> int | None:
    return int(value) if value > 0 else None


def _required(value: str, field: str, event: CloudEvent[Any]) -> str:
    if not value:
        raise InvalidEvent(f"{event.type} {event.id} has no {field}")
    return value


def _version_created(event: CloudEvent[registry.ModelVersionCreated]) -> LogEntry:
    data = event.data
    lineage = data.lineage
    return _entry(
        event,
        model=_required(data.name, "name", event),
        version=_version(data.version),
        job_id=lineage.training_job_id or None,
        cause_id=lineage.triggering_event.id or None,
        summary={
            "version": data.version,
            "source": data.source,
            "run_id": data.run_id,
            "training_job_id": lineage.training_job_id,
            "trigger_event_id": lineage.triggering_event.id,
            "trigger_event_type": lineage.triggering_event.type,
            "feature_views": list(lineage.feature_views),
            "dataset_digests": list(lineage.dataset_digests),
            "user_id": data.user_id,
        },
    )


def _alias_set(event: CloudEvent[registry.AliasSet]) -> LogEntry:
    data = event.data
    return _entry(
        event,
        model=_required(data.name, "name", event),
        version=_version(data.version),
        cause_id=data.cause.id or None,
        summary={
            "alias": data.alias,
            "version": data.version,
            "previous_version": (
                data.previous_version if data.HasField("previous_version") else None
            ),
            "run_id": data.run_id,
            "cause_event_id": data.cause.id,
            "cause_event_type": data.cause.type,
            "user_id": data.user_id,
        },
    )


def _alias_deleted(event: CloudEvent[registry.AliasDeleted]) -> LogEntry:
    data = event.data
    return _entry(
        event,
        model=_required(data.name, "name", event),
        version=_version(data.version),
        summary={"alias": data.alias, "version": data.version, "user_id": data.user_id},
    )


def _drift_detected(event: CloudEvent[monitor.DriftDetected]) -> LogEntry:
    data = event.data
    return _entry(
        event,
        model=_required(data.model.name, "model name", event),
        version=_version(data.model.version),
        summary={
            "run_id": data.model.run_id,
            "window": _window(data.window),
            "columns": len(data.columns),
            "drifted_columns": [c.column for c in data.columns if c.drifted],
            "drift_share": _number(data.drift_share),
            "dataset_drift_threshold": _number(data.dataset_drift_threshold),
            "report_id": data.report_id,
            "report_url": data.report_url,
            "reference_digest": data.reference_digest,
            "episode_id": data.episode_id,
        },
    )


def _drift_cleared(event: CloudEvent[monitor.DriftCleared]) -> LogEntry:
    data = event.data
    return _entry(
        event,
        model=_required(data.model.name, "model name", event),
        version=_version(data.model.version),
        cause_id=data.cleared_event.id or None,
        summary={
            "run_id": data.model.run_id,
            "window": _window(data.window),
            "drift_share": _number(data.drift_share),
            "dataset_drift_threshold": _number(data.dataset_drift_threshold),
            "report_id": data.report_id,
            "report_url": data.report_url,
            "cleared_event_id": data.cleared_event.id,
            "episode_id": data.episode_id,
        },
    )


def _performance_degraded(event: CloudEvent[monitor.PerformanceDegraded]) -> LogEntry:
    data = event.data
    return _entry(
        event,
        model=_required(data.model.name, "model name", event),
        version=_version(data.model.version),
        summary={
            "run_id": data.model.run_id,
            "metric": data.metric,
            "value": _number(data.value),
            "threshold": _number(data.threshold),
            "higher_is_better": data.higher_is_better,
            "window": _window(data.window),
            "labelled_rows": data.labelled_rows,
            "report_id": data.report_id,
            "report_url": data.report_url,
            "episode_id": data.episode_id,
        },
    )


def _performance_recovered(event: CloudEvent[monitor.PerformanceRecovered]) -> LogEntry:
    data = event.data
    return _entry(
        event,
        model=_required(data.model.name, "model name", event),
        version=_version(data.model.version),
        summary={
            "run_id": data.model.run_id,
            "metric": data.metric,
            "value": _number(data.value),
            "threshold": _number(data.threshold),
            "window": _window(data.window),
            "labelled_rows": data.labelled_rows,
            "episode_id": data.episode_id,
        },
    )


def _training_requested(event: CloudEvent[trainer.TrainingRequested]) -> LogEntry:
    data = event.data
    trigger = data.trigger
    return _entry(
        event,
        model=_required(data.model_name, "model_name", event),
        job_id=_required(data.job_id, "job_id", event),
        cause_id=trigger.event.id or None,
        summary={
            "job_id": data.job_id,
            "trigger_kind": _enum_name("TRIGGER_KIND_", trainer.TriggerKind.Name(trigger.kind)),
            "trigger_event_id": trigger.event.id,
            "trigger_event_type": trigger.event.type,
            "reason": trigger.reason,
            "episode_id": trigger.episode_id,
            "parameters": dict(data.parameters),
            "requested_by": data.requested_by,
        },
    )


def _training_started(event: CloudEvent[trainer.TrainingStarted]) -> LogEntry:
    data = event.data
    return _entry(
        event,
        model=_required(data.model_name, "model_name", event),
        job_id=_required(data.job_id, "job_id", event),
        summary={"job_id": data.job_id, "run_id": data.run_id, "attempt": data.attempt},
    )


def _training_completed(event: CloudEvent[trainer.TrainingCompleted]) -> LogEntry:
    data = event.data
    result = data.evaluation
    evaluation = {
        "passed": result.passed,
        "metric": result.metric,
        "challenger_score": _number(result.challenger_score),
        "champion_score": (
            _number(result.champion_score) if result.HasField("champion_score") else None
        ),
        "champion_version": (
            result.champion_version if result.HasField("champion_version") else None
        ),
        "higher_is_better": result.higher_is_better,
        "evaluation_rows": result.evaluation_rows,
        "scored_by": result.scored_by or None,
        "holdout_start": result.holdout_start or None,
        "holdout_end": result.holdout_end or None,
        "reason": result.reason or None,
        "reported_metrics": dict(result.reported_metrics) or None,
    }
    return _entry(
        event,
        model=_required(data.model_name, "model_name", event),
        version=_version(data.model_version),
        job_id=_required(data.job_id, "job_id", event),
        summary={
            "job_id": data.job_id,
            "run_id": data.run_id,
            "model_version": data.model_version,
            "evaluation": _compact(evaluation) if data.HasField("evaluation") else None,
            "promoted": data.promoted,
            "alias": data.alias,
        },
    )


def _training_failed(event: CloudEvent[trainer.TrainingFailed]) -> LogEntry:
    data = event.data
    return _entry(
        event,
        model=_required(data.model_name, "model_name", event),
        job_id=_required(data.job_id, "job_id", event),
        summary={
            "job_id": data.job_id,
            "run_id": data.run_id,
            "stage": _enum_name("TRAINING_STAGE_", trainer.TrainingStage.Name(data.stage)),
            "error": data.error,
            "error_type": data.error_type,
            "attempt": data.attempt,
            "will_retry": data.will_retry,
        },
    )


def _entry(
    event: CloudEvent[Any],
    *,
    model: str,
    summary: Mapping[str, Any],
    version: int | None = None,
    job_id: str | None = None,
    cause_id: str | None = None,
) -> LogEntry:
    return LogEntry(
        id=event.id,
        type=event.type,
        source=event.source,
        time=event.time,
        model=model,
        version=version,
        job_id=job_id,
        cause_id=cause_id,
        summary=_compact(summary),
    )


def _training_escalated(event: CloudEvent[trainer.TrainingEscalated]) -> LogEntry:
    data = event.data
    return _entry(
        event,
        model=_required(data.model_name, "model_name", event),
        summary={
            "episode_id": data.episode_id,
            "reason": data.reason,
            "rule": data.rule,
            "job_ids": list(data.job_ids),
            "evidence": dict(data.evidence),
        },
    )


_ENTRIES: dict[str, Callable[[CloudEvent[Any]], LogEntry]] = {
    VERSION_CREATED: _version_created,
    ALIAS_SET: _alias_set,
    ALIAS_DELETED: _alias_deleted,
    DRIFT_DETECTED: _drift_detected,
    DRIFT_CLEARED: _drift_cleared,
    PERFORMANCE_DEGRADED: _performance_degraded,
    PERFORMANCE_RECOVERED: _performance_recovered,
    TRAINING_REQUESTED: _training_requested,
    TRAINING_STARTED: _training_started,
    TRAINING_COMPLETED: _training_completed,
    TRAINING_FAILED: _training_failed,
    TRAINING_ESCALATED: _training_escalated,
}

#: Every event type the log records.
LOGGED_TYPES = frozenset(_ENTRIES)


def log_entry(event: CloudEvent[Any]) -> LogEntry:
    """The log entry of ``event``.

    Raises:
        InvalidEvent: If the event names no model (or, for a job's event, no job),
            or is of a type the log does not record.
    """
    make = _ENTRIES.get(event.type)
    if make is None:
        raise InvalidEvent(f"{event.type} is not recorded in the lineage log")
    return make(event)


def version_chain(
    entries: Sequence[LogEntry],
    version: int,
    *,
    training_job_id: str = "",
    trigger_event_id: str = "",
) -> list[tuple[LogEntry, Role]]:
    """The entries of a model's log that belong to ``version``'s chain, in log order.

    Args:
        entries: The model's whole log, oldest first.
        version: The version whose chain is wanted.
        training_job_id: The job that made it, from its lineage (a
            ``training.completed`` naming the version counts too).
        trigger_event_id: The event that triggered that job, from its lineage (the
            job's ``training.requested`` names it too).
    """
    roles: dict[str, Role] = {}

    def mark(found: Iterable[LogEntry], role: Role) -> None:
        for entry in found:
            roles.setdefault(entry.id, role)

    def of_type(types: frozenset[str] | str) -> list[LogEntry]:
        wanted = {types} if isinstance(types, str) else types
        return [e for e in entries if e.type in wanted]

    created = [e for e in of_type(VERSION_CREATED) if e.version == version]
    jobs = {training_job_id} | {e.job_id or "" for e in created}
    jobs |= {e.job_id or "" for e in of_type(TRAINING_COMPLETED) if e.version == version}
    jobs.discard("")
    triggers = {trigger_event_id} | {
        e.cause_id or "" for e in of_type(TRAINING_REQUESTED) if e.job_id in jobs
    }
    triggers.discard("")

    mark(created, Role.REGISTERED)
    mark((e for e in entries if e.id in triggers), Role.TRIGGER)
    mark((e for e in of_type(TRAINING) if e.job_id in jobs), Role.TRAINING)
    mark(
        (
            e
            for e in of_type(frozenset({ALIAS_SET, ALIAS_DELETED}))
            if e.version == version or e.summary.get("previous_version") == version
        ),
        Role.ALIAS,
    )
    reports = [e for e in of_type(MONITORING) if e.version == version]
    mark(reports, Role.MONITORING)
    alerts = {e.id for e in reports}
    retrains = {e.job_id for e in of_type(TRAINING_REQUESTED) if e.cause_id in alerts}
    made = {e.version for e in of_type(TRAINING_COMPLETED) if e.job_id in retrains}
    made.discard(None)
    mark(
        (
            e
            for e in of_type(VERSION_CREATED)
            if e.version != version and (e.job_id in retrains or e.version in made)
        ),
        Role.NEXT_VERSION,
    )
    mark((e for e in of_type(TRAINING) if e.job_id in retrains), Role.RETRAIN)
    return [(e, roles[e.id]) for e in entries if e.id in roles]


def event_view(entry: LogEntry, role: str | None = None) -> LineageEvent:
    """How the lineage endpoint shows a log entry (with its role in a version's chain)."""
    return LineageEvent(
        id=entry.id,
        type=entry.type,
        source=entry.source,
        time=entry.time.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z"),
        version=None if entry.version is None else str(entry.version),
        role=role,
        summary=entry.summary,
    )
