"""Schedules: a cron expression or an interval in seconds, and the slot that is due."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from croniter import croniter  # type: ignore[import-untyped]


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
