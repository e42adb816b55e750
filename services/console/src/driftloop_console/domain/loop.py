"""The loop as people read it: which version holds which alias, since when, and why."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["AliasView", "Cause", "alias_views", "cause_of_job", "short_event_type"]

#: The aliases the loop moves, in the order the cards show them.
LOOP_ALIASES = ("champion", "challenger", "previous")


def short_event_type(event_type: str | None) -> str:
    """``driftloop.monitor.drift.detected`` → ``drift.detected``."""
    if not event_type:
        return ""
    parts = event_type.split(".")
    return ".".join(parts[2:]) if len(parts) > 2 and parts[0] == "driftloop" else event_type


@dataclass(frozen=True)
class Cause:
    """Why a job ran: its trigger, and the event behind it (a drift alert...).

    Attributes:
        kind: ``drift``, ``performance``, ``manual``, ``schedule``, ``new_data``...
        reason: The trigger's reason in words.
        event_type: The event that triggered it (``drift.detected``), if any.
        event_id: That event's id.
        requested_by: Who asked (a person for a manual trigger, the policy otherwise).
        version: The model version the alert was about, if any.
    """

    kind: str
    reason: str
    event_type: str
    event_id: str
    requested_by: str
    version: str | None

    @property
    def is_drift_alert(self) -> bool:
        """The job ran because the monitor saw drift."""
        return self.event_type == "drift.detected" or self.kind == "drift"


def cause_of_job(job: Mapping[str, Any]) -> Cause | None:
    """The cause of a job (its ``trigger``), or None when the job says nothing."""
    trigger = job.get("trigger")
    if not isinstance(trigger, Mapping):
        return None
    version = trigger.get("version")
    return Cause(
        kind=str(trigger.get("kind") or ""),
        reason=str(trigger.get("reason") or ""),
        event_type=short_event_type(trigger.get("event_type")),
        event_id=str(trigger.get("event_id") or ""),
        requested_by=str(trigger.get("requested_by") or job.get("requested_by") or ""),
        version=str(version) if version else None,
    )


@dataclass(frozen=True)
class AliasView:
    """One alias of a model.

    Attributes:
        alias: ``champion``...
        version: The version it names now (None: unset).
        moved_at: When the trainer last moved it (None: not moved by the trainer).
        action: ``promotion``, ``rollback``...
        job_id: The job whose result moved it.
        previous_version: The version it named before.
    """

    alias: str
    version: str | None
    moved_at: str | None = None
    action: str | None = None
    job_id: str | None = None
    previous_version: str | None = None


def alias_views(
    aliases: Sequence[Mapping[str, Any]], moves: Sequence[Mapping[str, Any]]
) -> list[AliasView]:
    """The loop's aliases (and any other the model has), each with its latest move.

    Args:
        aliases: The registry's ``[{"alias": ..., "version": ...}]``.
        moves: The trainer's alias moves, latest first.
    """
    current = {str(a.get("alias")): str(a.get("version")) for a in aliases if a.get("alias")}
    latest: dict[str, Mapping[str, Any]] = {}
    for each in moves:
        latest.setdefault(str(each.get("alias")), each)
    names = [*LOOP_ALIASES, *sorted(set(current) - set(LOOP_ALIASES))]
    views = []
    for name in names:
        move: Mapping[str, Any] | None = latest.get(name)
        version = current.get(name)
        # A move counts for the alias only while the alias still names its version.
        if move is not None and str(move.get("version")) != version:
            move = None
        previous = move.get("previous_version") if move else None
        views.append(
            AliasView(
                alias=name,
                version=version,
                moved_at=move.get("moved_at") if move else None,
                action=move.get("action") if move else None,
                job_id=move.get("job_id") if move else None,
                previous_version=str(previous) if previous is not None else None,
            )
        )
    return views
