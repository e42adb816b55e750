"""Trigger policies: whether a trigger starts a training job, and if not, why.

Pure logic, no I/O: the store loads a model's :class:`ModelState`, calls
:func:`decide` and records the :class:`Decision` it returns, started or not.

The checks, in order:

1. **duplicate** — a job was started for a trigger with the same dedup key within
   ``dedup_seconds`` (e.g. the monitor re-alerting on the same window of the same version);
2. **superseded** — a drift or performance alert about a version older than the one the
   trainer has since made champion (the monitor's last windows of a replaced model);
3. **max_concurrent** — the model already has ``max_concurrent`` jobs queued or running;
4. **cooldown** — a job of the model finished less than ``cooldown_seconds`` ago;
5. **debounce** — a job of the model was started less than ``debounce_seconds`` ago:
   the first alert of a burst starts a job, the rest of the burst joins it;
6. **awaiting_labels** — a drift trigger whose model asks for ``min_new_labels``
   labels observed since the drift began, while the label store holds fewer and the
   alert is less than ``label_wait_seconds`` old (then it starts with what there is).

A manual trigger with ``force`` skips the cooldown and the debounce, never the
concurrency limit.

A drift or performance trigger that belongs to a monitor episode and is stopped by
checks 3-6 is **deferred**, not suppressed: the trainer keeps it and re-checks it when
the wait is over, if the episode is still open (``domain/episodes.py``).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from driftloop_kit.declarations import TriggerPolicy


class TriggerKind(enum.StrEnum):
    """What asked for a training (the ``TriggerKind`` of the event contract)."""

    DRIFT = "drift"
    PERFORMANCE = "performance"
    NEW_DATA = "new_data"
    SCHEDULE = "schedule"
    MANUAL = "manual"


class Outcome(enum.StrEnum):
    """What a decision did."""

    STARTED = "started"
    SUPPRESSED = "suppressed"
    #: Kept for the episode and re-checked later (cooldown, debounce, a running job).
    DEFERRED = "deferred"
    #: A deferred trigger given up: its episode closed, or was resolved.
    DROPPED = "dropped"
    #: The gate refused the episode's challengers too often: a person has to look.
    ESCALATED = "escalated"


class Suppression(enum.StrEnum):
    """Why a trigger started no job."""

    DUPLICATE = "duplicate"
    MAX_CONCURRENT = "max_concurrent"
    COOLDOWN = "cooldown"
    DEBOUNCE = "debounce"
    BELOW_THRESHOLD = "below_threshold"
    SUPERSEDED = "superseded"
    #: The trigger's episode was escalated: a person has to look before it retrains.
    ESCALATED = "escalated"
    #: Too few labels of the new distribution yet (``min_new_labels``).
    AWAITING_LABELS = "awaiting_labels"


#: Suppressions that defer a trigger of an episode instead of dropping it.
DEFERRABLE = frozenset(
    {
        Suppression.COOLDOWN,
        Suppression.DEBOUNCE,
        Suppression.MAX_CONCURRENT,
        Suppression.AWAITING_LABELS,
    }
)


@dataclass(frozen=True)
class Trigger:
    """One request for a training, from an event, a schedule or a person.

    Attributes:
        kind: What asked.
        model: Registered model name.
        reason: Human-readable, e.g. "3 of 4 columns drifted (share 0.75 >= 0.5)".
        event_id: ``ce_id`` of the triggering event ("" for none).
        event_type: ``ce_type`` of the triggering event.
        event_source: ``ce_source`` of the triggering event.
        version: Model version the trigger is about (0 when none).
        window: The monitored window (drift, performance) or schedule slot.
        rows: New rows (``features.ingested``).
        parameters: Training parameters overriding the job spec's.
        requested_by: Person or service.
        force: Skip cooldown and debounce (manual requests only).
        episode_id: The monitor episode of a drift or performance trigger ("" for none).
        onset: When the drift or the degradation began: the start of the alerting
            window (ISO 8601, "" for none); rows observed since then are the new
            distribution's (a drift job waits for their labels; the new version's
            reference sample is drawn from them).
        alerted_at: When the alert was published (ISO 8601, "" for none); for a retry
            after a refusal, when the retry became due.
        evidence_since: For a retry after the gate refused the episode's challenger: the
            refusal's time; the retry waits for ``min_new_labels`` labels observed since
            then (new evidence), not since the onset.
        traceparent: The trace context of the triggering event (when tracing is on): the
            job continues that trace, even when it starts after a deferral.
    """

    kind: TriggerKind
    model: str
    reason: str = ""
    event_id: str = ""
    event_type: str = ""
    event_source: str = ""
    version: int = 0
    window: str = ""
    rows: int = 0
    parameters: Mapping[str, str] = field(default_factory=dict)
    requested_by: str = "trainer-policy"
    force: bool = False
    episode_id: str = ""
    onset: str = ""
    alerted_at: str = ""
    evidence_since: str = ""
    traceparent: str = ""

    def needs_labels(self, policy: TriggerPolicy) -> bool:
        """Whether this trigger waits for labels first: a drift trigger for labels of the
        new distribution, a retry after a refusal for labels newer than the refusal."""
        return (
            policy.min_new_labels > 0
            and not self.force
            and (bool(self.evidence_since) or (self.kind is TriggerKind.DRIFT and bool(self.onset)))
        )

    @property
    def labels_since(self) -> str:
        """Labels observed since this time count for :meth:`needs_labels`."""
        return self.evidence_since or self.onset

    def dedup_key(self, policy: TriggerPolicy) -> str:
        """This trigger's key under ``policy``'s template."""
        return policy.dedup_key.format(
            kind=self.kind.value,
            model=self.model,
            version=self.version,
            window=self.window,
            event_id=self.event_id,
        )


@dataclass(frozen=True)
class ModelState:
    """What the policy needs to know about a model's recent jobs and triggers.

    Attributes:
        active_jobs: Jobs queued or running.
        last_started: When the latest job was started (requested), if any.
        last_finished: When the latest job finished (completed or failed), if any.
        recent_keys: Dedup keys of recent triggers that started a job, and when.
        rows_since_last_job: New rows counted since the latest job (new-data triggers).
        champion_version: The version the trainer last moved the champion alias to
            (promotion or rollback), if any.
    """

    active_jobs: int = 0
    last_started: datetime | None = None
    last_finished: datetime | None = None
    recent_keys: Mapping[str, datetime] = field(default_factory=dict)
    rows_since_last_job: int = 0
    champion_version: int | None = None


@dataclass(frozen=True)
class LabelEvidence:
    """Labels of the new distribution a drift trigger has to train on.

    Attributes:
        count: Labels observed since the drift began (counted up to what is needed).
        since: When the drift began (the alerting window's start).
        waited_seconds: Seconds since the alert.
    """

    count: int
    since: datetime
    waited_seconds: float


@dataclass(frozen=True)
class Decision:
    """The policy's answer for one trigger.

    Attributes:
        outcome: Started or suppressed.
        dedup_key: The trigger's key, stored with the decision.
        suppression: Why it was suppressed (None when started).
        detail: A sentence saying why, e.g. "cooldown: a job finished 42 s ago (< 600 s)".
    """

    outcome: Outcome
    dedup_key: str
    suppression: Suppression | None = None
    detail: str = ""

    @property
    def started(self) -> bool:
        """True when a job is to be started."""
        return self.outcome is Outcome.STARTED


def _ago(now: datetime, then: datetime) -> float:
    return (now - then).total_seconds()


def decide(
    trigger: Trigger,
    state: ModelState,
    policy: TriggerPolicy,
    now: datetime,
    labels: LabelEvidence | None = None,
) -> Decision:
    """Whether ``trigger`` starts a job for its model now.

    Args:
        trigger: The trigger.
        state: The model's jobs and recent triggers.
        policy: The model's policy.
        now: The current time (timezone-aware).
        labels: The labels of the new distribution, when the trigger waits for them
            (:meth:`Trigger.needs_labels`); None when it does not, or they could not be
            counted.
    """
    key = trigger.dedup_key(policy)
    seen = state.recent_keys.get(key)
    if seen is not None and _ago(now, seen) < policy.dedup_seconds:
        blocked: tuple[Suppression, str] | None = (
            Suppression.DUPLICATE,
            f"a job was started for key {key!r} {_ago(now, seen):.0f} s ago "
            f"(< {policy.dedup_seconds:.0f} s)",
        )
    else:
        blocked = _blocked(trigger, state, policy, now) or _awaiting(trigger, policy, labels)
    if blocked is not None:
        reason, detail = blocked
        if trigger.episode_id and reason in DEFERRABLE:
            return Decision(
                Outcome.DEFERRED,
                key,
                reason,
                f"deferred for episode {trigger.episode_id}, re-checked when the wait is "
                f"over: {reason.value}: {detail}",
            )
        return Decision(Outcome.SUPPRESSED, key, reason, f"{reason.value}: {detail}")
    detail = trigger.reason or f"{trigger.kind.value} trigger"
    if labels is not None and trigger.needs_labels(policy):
        detail += f"; {_labels_seen(labels, policy)}"
    return Decision(Outcome.STARTED, key, None, detail)


def _labels_seen(labels: LabelEvidence, policy: TriggerPolicy) -> str:
    enough = labels.count >= policy.min_new_labels
    return (
        f"{labels.count} labels since {labels.since.isoformat()} "
        f"({'>=' if enough else '<'} min_new_labels {policy.min_new_labels}"
        + ("" if enough else f", waited {labels.waited_seconds:.0f} s: label_wait_seconds over")
        + ")"
    )


def _awaiting(
    trigger: Trigger, policy: TriggerPolicy, labels: LabelEvidence | None
) -> tuple[Suppression, str] | None:
    """A drift trigger waits for labels of the new distribution, for a bounded time."""
    if labels is None or not trigger.needs_labels(policy):
        return None
    if labels.count >= policy.min_new_labels or labels.waited_seconds >= policy.label_wait_seconds:
        return None
    return (
        Suppression.AWAITING_LABELS,
        f"{labels.count} labels since {labels.since.isoformat()} (< min_new_labels "
        f"{policy.min_new_labels}); waited {labels.waited_seconds:.0f} s of at most "
        f"{policy.label_wait_seconds:.0f} s",
    )


def _blocked(
    trigger: Trigger, state: ModelState, policy: TriggerPolicy, now: datetime
) -> tuple[Suppression, str] | None:
    """The first check after the dedup key that stops the trigger, and why."""
    if (
        trigger.kind in (TriggerKind.DRIFT, TriggerKind.PERFORMANCE)
        and trigger.version
        and state.champion_version is not None
        and trigger.version < state.champion_version
    ):
        return (
            Suppression.SUPERSEDED,
            f"the alert is about version {trigger.version}, and version "
            f"{state.champion_version} has replaced it as champion since",
        )
    if trigger.kind is TriggerKind.NEW_DATA:
        total = state.rows_since_last_job + trigger.rows
        if policy.new_data_rows <= 0 or total < policy.new_data_rows:
            return (
                Suppression.BELOW_THRESHOLD,
                f"{total} new rows since the last job (< {policy.new_data_rows})",
            )
    if state.active_jobs >= policy.max_concurrent:
        return (
            Suppression.MAX_CONCURRENT,
            f"{state.active_jobs} job(s) queued or running (max {policy.max_concurrent})",
        )
    return None if trigger.force else _too_soon(state, policy, now)


def _too_soon(
    state: ModelState, policy: TriggerPolicy, now: datetime
) -> tuple[Suppression, str] | None:
    """Cooldown after the latest job, then debounce after the latest start."""
    if state.last_finished is not None and _ago(now, state.last_finished) < policy.cooldown_seconds:
        return (
            Suppression.COOLDOWN,
            f"a job finished {_ago(now, state.last_finished):.0f} s ago "
            f"(< {policy.cooldown_seconds:.0f} s)",
        )
    if state.last_started is not None and _ago(now, state.last_started) < policy.debounce_seconds:
        return (
            Suppression.DEBOUNCE,
            f"a job started {_ago(now, state.last_started):.0f} s ago "
            f"(< {policy.debounce_seconds:.0f} s)",
        )
    return None


def horizon(policy: TriggerPolicy) -> timedelta:
    """How far back the store must look for dedup keys."""
    return timedelta(seconds=policy.dedup_seconds)


def trigger_dict(trigger: Trigger) -> dict[str, Any]:
    """The trigger as stored with its job (JSON)."""
    found = asdict(trigger)
    found["kind"] = trigger.kind.value
    found["parameters"] = dict(trigger.parameters)
    return found


def trigger_from_dict(found: Mapping[str, Any]) -> Trigger:
    """A trigger stored by :func:`trigger_dict` (unknown keys ignored)."""
    known = {f for f in Trigger.__dataclass_fields__ if f != "kind"}
    values = {k: v for k, v in found.items() if k in known}
    return Trigger(kind=TriggerKind(found["kind"]), **values)
