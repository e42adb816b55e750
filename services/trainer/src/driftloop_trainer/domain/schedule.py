"""Schedules: a cron expression or an interval in seconds, and the slot that is due."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from croniter import croniter  # type: ignore[import-untyped]

from driftloop_kit.declarations import validate_schedule

__all__ = ["due", "latest_slot", "validate_schedule"]


def latest_slot(schedule: str, now: datetime) -> datetime | None:
    """The latest time at or before ``now`` at which ``schedule`` fires (None for no schedule).

    An interval fires at every multiple of it since the epoch; a cron expression at
    its matching minutes, in UTC.
    """
    text = schedule.strip()
    if not text:
        return None
    now = now.astimezone(UTC)
    try:
        seconds = float(text)
    except ValueError:
        previous: datetime = croniter(text, now + timedelta(microseconds=1)).get_prev(datetime)
        return previous.astimezone(UTC)
    epoch = now.timestamp()
    return datetime.fromtimestamp(epoch - epoch % seconds, UTC)


def due(schedule: str, *, now: datetime, since: datetime) -> datetime | None:
    """The slot to fire now: the latest slot, if it falls at or after ``since``.

    ``since`` is when the scheduler started (or the last slot it fired), so a
    restart does not fire a slot that passed while nothing ran.
    """
    slot = latest_slot(schedule, now)
    if slot is None or slot < since:
        return None
    return slot
