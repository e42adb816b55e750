"""The events the trainer publishes (``training.*`` on ``trainer.jobs``), built from a job.

- ``training.requested``: a trigger decision started a job (:func:`training_requested`);
- ``training.started``: the job's process started (:func:`training_started`);
- ``training.failed``: the job failed in a stage, no alias moved (:func:`training_failed`);
- ``training.completed``: the job registered and evaluated a version, promoted or not
  (:func:`training_completed`);
- ``training.escalated``: the trainer stopped retraining for an episode and needs a
  person (:func:`training_escalated`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from driftloop.common.v1.common_pb2 import EventRef
from driftloop.trainer.v1 import events_pb2 as events
from driftloop_events.envelope import CloudEvent
from driftloop_trainer.domain.gate import Verdict
from driftloop_trainer.domain.jobs import Stage
from driftloop_trainer.domain.policy import Trigger, TriggerKind

__all__ = [
    "COMPLETED_TYPE",
    "model_declared",
    "training_completed",
    "training_escalated",
    "training_failed",
    "training_requested",
    "training_started",
]

COMPLETED_TYPE = "driftloop.trainer.training.completed"

_KINDS = {
    TriggerKind.DRIFT: events.TRIGGER_KIND_DRIFT,
    TriggerKind.PERFORMANCE: events.TRIGGER_KIND_PERFORMANCE,
    TriggerKind.NEW_DATA: events.TRIGGER_KIND_NEW_DATA,
    TriggerKind.SCHEDULE: events.TRIGGER_KIND_SCHEDULE,
    TriggerKind.MANUAL: events.TRIGGER_KIND_MANUAL,
}
_STAGES = {
    Stage.SETUP: events.TRAINING_STAGE_SETUP,
    Stage.DATA: events.TRAINING_STAGE_DATA,
    Stage.TRAINING: events.TRAINING_STAGE_TRAINING,
    Stage.REGISTRATION: events.TRAINING_STAGE_REGISTRATION,
    Stage.EVALUATION: events.TRAINING_STAGE_EVALUATION,
    Stage.PROMOTION: events.TRAINING_STAGE_PROMOTION,
}


def _trigger_message(trigger: Trigger) -> events.Trigger:
    message = events.Trigger(
        kind=_KINDS[trigger.kind], reason=trigger.reason, episode_id=trigger.episode_id
    )
    if trigger.event_id:
        message.event.CopyFrom(
            EventRef(id=trigger.event_id, type=trigger.event_type, source=trigger.event_source)
        )
    return message


def training_requested(
    *, job_id: str, trigger: Trigger, parameters: Mapping[str, str], time: datetime
) -> CloudEvent[Any]:
    """A decision started job ``job_id`` for ``trigger``."""
    return CloudEvent.new(
        events.TrainingRequested(
            job_id=job_id,
            model_name=trigger.model,
            trigger=_trigger_message(trigger),
            parameters=dict(parameters),
            requested_by=trigger.requested_by,
        ),
        time=time,
    )


def training_started(*, job_id: str, model: str, attempt: int, time: datetime) -> CloudEvent[Any]:
    """Job ``job_id`` started running."""
    return CloudEvent.new(
        events.TrainingStarted(job_id=job_id, model_name=model, attempt=attempt, start_time=time),
        time=time,
    )


def training_failed(
    *,
    job_id: str,
    model: str,
    run_id: str,
    stage: Stage,
    error: str,
    error_type: str,
    attempt: int,
    time: datetime,
) -> CloudEvent[Any]:
    """Job ``job_id`` failed in ``stage``; it is not retried."""
    return CloudEvent.new(
        events.TrainingFailed(
            job_id=job_id,
            model_name=model,
            run_id=run_id,
            stage=_STAGES[stage],
            error=error,
            error_type=error_type,
            attempt=attempt,
            will_retry=False,
            fail_time=time,
        ),
        time=time,
    )


def training_completed(
    *,
    event_id: str,
    job_id: str,
    model: str,
    run_id: str,
    model_version: int,
    verdict: Verdict,
    promoted: bool,
    alias: str,
    start_time: datetime,
    time: datetime,
) -> CloudEvent[Any]:
    """Job ``job_id`` registered and evaluated ``model_version``; its id is ``event_id``
    (the cause the alias moves of its promotion name)."""
    evaluation = events.EvaluationResult(
        passed=verdict.passed,
        metric=verdict.metric,
        challenger_score=verdict.challenger_score,
        higher_is_better=verdict.higher_is_better,
        evaluation_rows=verdict.evaluation_rows,
        scored_by=verdict.scored_by,
        holdout_start=verdict.holdout_start,
        holdout_end=verdict.holdout_end,
        reason=verdict.reason,
        reported_metrics=dict(verdict.reported or {}),
        guardrails=[
            events.Guardrail(
                name=g.name, metric=g.metric, value=g.value, threshold=g.threshold, passed=g.passed
            )
            for g in verdict.guardrails
        ],
    )
    if verdict.champion_score is not None:
        evaluation.champion_score = verdict.champion_score
    if verdict.champion_version is not None:
        evaluation.champion_version = verdict.champion_version
    return CloudEvent.new(
        events.TrainingCompleted(
            job_id=job_id,
            model_name=model,
            run_id=run_id,
            model_version=model_version,
            evaluation=evaluation,
            promoted=promoted,
            alias=alias if promoted else "",
            start_time=start_time,
            end_time=time,
        ),
        time=time,
        id=event_id,
    )


def training_escalated(
    *,
    model: str,
    episode_id: str,
    reason: str,
    rule: str,
    job_ids: list[str],
    evidence: Mapping[str, str],
    time: datetime,
) -> CloudEvent[Any]:
    """``training.escalated``: retraining for ``episode_id`` stopped; a person must look."""
    message = events.TrainingEscalated(
        model_name=model,
        episode_id=episode_id,
        reason=reason,
        rule=rule,
        job_ids=job_ids,
        evidence=dict(evidence),
    )
    message.escalate_time.FromDatetime(time)
    return CloudEvent.new(message, time=time)


def model_declared(
    *, model: str, revision: int, document: Mapping[str, Any], digest: str, by: str, time: datetime
) -> CloudEvent[Any]:
    """``model.declared``: revision ``revision`` of the model's document was applied."""
    message = events.ModelDeclared(
        model_name=model,
        revision=revision,
        document_json=json.dumps(document, sort_keys=True),
        digest=digest,
        applied_by=by,
    )
    message.apply_time.FromDatetime(time)
    return CloudEvent.new(message, time=time)
