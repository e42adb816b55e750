"""Monitor episodes as the trainer sees them: deferred, not dropped; refusals back off.

The monitor publishes one alert per episode (``drift.detected`` or
``performance.degraded``, with an ``episode_id``) and closes it with ``drift.cleared``
or ``performance.recovered``. The trainer keeps what it decided per episode:

- A trigger suppressed by cooldown, debounce or a running job is **deferred**: it is
  kept as the episode's pending trigger; the trainer's clock re-checks it and, when the
  policy lets a job start and the episode is still open, starts exactly one. An episode
  that closes first drops its pending trigger, with a decision that says so.
- A challenger the gate refuses does not end the episode: the same trigger becomes
  pending again, due only after ``retry_backoff_seconds * 2 ** (refusals - 1)``; after
  ``max_refusals_per_episode`` refusals the trainer stops and escalates
  (``training.escalated``: a person has to look). A refusal because the labels are
  suspect escalates at once: retraining on noise would not help.
- A promotion resolves the episode for the trainer (the new version has its own windows).

Pure: the use case (``service_layer/training.py``) loads an :class:`Episode`, applies
these functions and stores the result, with the decisions they imply.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from driftloop_kit.declarations import TriggerPolicy
from driftloop_trainer.domain.policy import DEFERRABLE, Decision

__all__ = [
    "Episode",
    "after_closed",
    "after_decision",
    "after_promotion",
    "after_refusal",
    "escalated",
    "is_due",
]


@dataclass(frozen=True)
class Episode:
    """What the trainer knows and decided about one monitor episode.

    Attributes:
        model: Registered model name.
        episode_id: The monitor's episode id.
        open: False once the monitor closed it.
        resolved: True once a challenger of the episode was promoted.
        pending: The deferred trigger (as stored with a job), None when nothing waits.
        not_before: A pending trigger is not re-checked before this time.
        refusals: Challengers of the episode the gate refused.
        escalated: The trainer gave up and asked for a person.
        job_ids: Jobs started for the episode, oldest first.
    """

    model: str
    episode_id: str
    open: bool = True
    resolved: bool = False
    pending: Mapping[str, Any] | None = None
    not_before: datetime | None = None
    refusals: int = 0
    escalated: bool = False
    job_ids: tuple[str, ...] = field(default_factory=tuple)


def after_decision(
    episode: Episode, decision: Decision, *, trigger: Mapping[str, Any], job_id: str | None
) -> Episode:
    """The episode after a trigger of it was decided: started, deferred or suppressed."""
    if job_id is not None:
        return replace(episode, pending=None, not_before=None, job_ids=(*episode.job_ids, job_id))
    if decision.suppression in DEFERRABLE and episode.open and not episode.escalated:
        # The newest trigger of the episode stands for it; the re-check time is kept.
        return replace(episode, pending=dict(trigger))
    return episode


def after_closed(episode: Episode) -> tuple[Episode, bool]:
    """The episode after the monitor closed it; True when a pending trigger was dropped."""
    dropped = episode.pending is not None
    return replace(episode, open=False, pending=None, not_before=None), dropped


def after_promotion(episode: Episode) -> Episode:
    """A challenger of the episode was promoted: nothing more to do for it."""
    return replace(episode, resolved=True, pending=None, not_before=None)


def after_refusal(
    episode: Episode, *, trigger: Mapping[str, Any], policy: TriggerPolicy, now: datetime
) -> tuple[Episode, bool]:
    """The episode after the gate refused one of its challengers.

    Returns:
        The new episode, and True when this refusal escalates (the trainer stops).
    """
    refusals = episode.refusals + 1
    if refusals >= policy.max_refusals_per_episode:
        return replace(
            episode, refusals=refusals, escalated=True, pending=None, not_before=None
        ), True
    wait = policy.retry_backoff_seconds * 2 ** (refusals - 1)
    return replace(
        episode,
        refusals=refusals,
        pending=dict(trigger) if episode.open else None,
        not_before=now + timedelta(seconds=wait),
    ), False


def escalated(episode: Episode) -> Episode:
    """The trainer hands the episode to a person (e.g. its labels are suspect)."""
    return replace(episode, escalated=True, pending=None, not_before=None)


def is_due(episode: Episode, now: datetime) -> bool:
    """Whether the episode's pending trigger is to be re-checked now."""
    return (
        episode.pending is not None
        and episode.open
        and not episode.resolved
        and not episode.escalated
        and (episode.not_before is None or now >= episode.not_before)
    )
