"""Tumbling windows per model version, closed by row count or by time."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any


@dataclass(frozen=True)
class VersionKey:
    """One model version."""

    model: str
    version: int

    def __str__(self) -> str:
        return f"{self.model}/{self.version}"


@dataclass
class ClosedWindow:
    """The rows of one window, ready for a decision.

    Attributes:
        id: Unique per model version, e.g. ``iris/3/20250301T120000.000000Z-1a2b3c``.
        key: The model version.
        run_id: Tracking run of the version (from the predictions).
        start: Time of the first row (inclusive).
        end: Exclusive upper bound: the time limit, or just after the last row.
        rows: Input rows, column name -> value.
        closed_by: ``"rows"``, ``"time"``, ``"replaced"`` (its version stopped being
            champion) or ``"flush"``.
        traceparent: The trace context of the window's last prediction (when tracing is
            on): the window's decision, and the alert it may publish, continue it.
    """

    id: str
    key: VersionKey
    run_id: str
    start: datetime
    end: datetime
    rows: list[dict[str, Any]]
    closed_by: str
    traceparent: str | None = None


@dataclass
class RowChunk:
    """The rows one consumed batch added to one window, stored together (the durable
    stream engine): a window is put back from its chunks in ``position`` order.

    Attributes:
        window_id: The window.
        position: Index of the chunk's first row in the window.
        partition: The ``predictions`` partition of the window's model.
        key: The model version.
        run_id: Tracking run of the chunk's last prediction.
        start: Event time of the first row, epoch seconds.
        last: Event time of the last row, epoch seconds.
        seen: When the monitor took the first row, epoch seconds.
        rows: Input rows, column name -> value.
        traceparent: The trace context of the last prediction.
    """

    window_id: str
    position: int
    partition: int
    key: VersionKey
    run_id: str
    start: float
    last: float
    seen: float
    rows: list[dict[str, Any]]
    traceparent: str | None = None


@dataclass
class _Open:
    id: str
    start: datetime
    deadline: datetime
    run_id: str
    opened: datetime
    seconds: float = 0.0
    rows: list[dict[str, Any]] = field(default_factory=list)
    last: datetime | None = None
    traceparent: str | None = None


def utc_now() -> datetime:
    """The clock the use cases default to (tests pass a fake one)."""
    return datetime.now(UTC)


def window_id(key: VersionKey, start: datetime, seed: str | None = None) -> str:
    """A window id, unique per model version even for windows starting at the same instant.

    With ``seed`` (the id of the window's first prediction) the id is the same each time
    the same rows make the window, so a window rebuilt from stored rows after a restart or
    a rebalance is recognised as the one decided before; without it, a random suffix.
    """
    stamp = start.astimezone(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    suffix = hashlib.sha1(seed.encode()).hexdigest()[:6] if seed else secrets.token_hex(3)
    return f"{key.model}/{key.version}/{stamp}-{suffix}"


class Windows:
    """Open windows of every model version; each closes at ``rows`` rows or after ``seconds``.

    Time is the rows' event time: a row at or after the open window's deadline (first row's
    time + ``seconds``) closes it first, so a row belongs to exactly one window. When rows
    stop coming, :meth:`expired` closes a window once it has been open ``seconds`` on the
    clock (processing time); replayed or late data with old event times therefore fills
    windows by count and event time, not by the wall clock.
    """

    def __init__(self) -> None:
        self._open: dict[VersionKey, _Open] = {}

    def __len__(self) -> int:
        return len(self._open)

    def add(
        self,
        key: VersionKey,
        *,
        run_id: str,
        time: datetime,
        rows: list[dict[str, Any]],
        max_rows: int,
        max_seconds: float,
        now: datetime | None = None,
        traceparent: str | None = None,
        seed: str | None = None,
        placed: list[tuple[str, int]] | None = None,
    ) -> list[ClosedWindow]:
        """Add the input rows of one prediction; return the windows this closed.

        Args:
            key: The model version.
            run_id: The version's run.
            time: The prediction's event time.
            rows: Its input rows.
            max_rows: Rows that close a window.
            max_seconds: Event-time (and processing-time) length of a window.
            now: The clock, for a window opened by these rows (default: ``time``).
            traceparent: The prediction's trace context, if it carries one.
            seed: The prediction's id: a window it opens gets an id derived from it
                (:func:`window_id`).
            placed: Receives the id of the window each row went into and the row's index
                in it, in order.
        """
        closed: list[ClosedWindow] = []
        current = self._open.get(key)
        if current is not None and time >= current.deadline:
            closed.append(self._close(key, current, "time", end=current.deadline))
            current = None
        for index, row in enumerate(rows):
            if current is None:
                # A prediction whose rows open two windows seeds the second by row index.
                suffix = f"{seed}:{index}" if seed and index else seed
                current = _Open(
                    id=window_id(key, time, suffix),
                    start=time,
                    deadline=time + timedelta(seconds=max_seconds),
                    run_id=run_id,
                    opened=now or time,
                    seconds=max_seconds,
                )
                self._open[key] = current
            if placed is not None:
                placed.append((current.id, len(current.rows)))
            current.rows.append(row)
            current.last = time
            current.traceparent = traceparent
            if run_id:
                current.run_id = run_id
            if len(current.rows) >= max_rows:
                closed.append(self._close(key, current, "rows"))
                current = None
        return closed

    def restore(
        self,
        key: VersionKey,
        *,
        window_id: str,
        run_id: str,
        start: datetime,
        last: datetime,
        rows: list[dict[str, Any]],
        opened: datetime,
        seconds: float,
        full: bool,
        traceparent: str | None = None,
    ) -> list[ClosedWindow]:
        """Put back a window from its stored rows (in order; ``start`` and ``last`` the
        event times of the first and the last); return what it closes.

        Windows of one version are restored oldest first: a window restored while an older
        one of its version is open closes that one (by time: it closed when the newer one
        opened), and a ``full`` window is closed at once (by rows).
        """
        closed: list[ClosedWindow] = []
        current = self._open.get(key)
        if current is not None:
            closed.append(self._close(key, current, "time", end=min(current.deadline, start)))
        window = _Open(
            id=window_id,
            start=start,
            deadline=start + timedelta(seconds=seconds),
            run_id=run_id,
            opened=opened,
            seconds=seconds,
            rows=list(rows),
            last=last,
            traceparent=traceparent,
        )
        self._open[key] = window
        if full:
            closed.append(self._close(key, window, "rows"))
        return closed

    def expired(self, now: datetime, grace: float = 0.0) -> list[ClosedWindow]:
        """Close every window open for its length (plus ``grace`` seconds) on the clock."""
        late = [
            (key, window)
            for key, window in self._open.items()
            if window.opened + timedelta(seconds=window.seconds + grace) <= now
        ]
        return [
            self._close(key, window, "time", end=min(window.deadline, _after(window)))
            for key, window in late
        ]

    def close(self, key: VersionKey) -> ClosedWindow | None:
        """Close ``key``'s open window now (its version was replaced); None if none is open."""
        window = self._open.get(key)
        return None if window is None else self._close(key, window, "replaced")

    def flush(self) -> list[ClosedWindow]:
        """Close every open window (shutdown, tests)."""
        return [self._close(k, w, "flush") for k, w in list(self._open.items())]

    def open_rows(self) -> Iterator[tuple[VersionKey, int]]:
        """Rows waiting in each open window."""
        for key, window in self._open.items():
            yield key, len(window.rows)

    def _close(
        self, key: VersionKey, window: _Open, by: str, *, end: datetime | None = None
    ) -> ClosedWindow:
        del self._open[key]
        return ClosedWindow(
            id=window.id,
            key=key,
            run_id=window.run_id,
            start=window.start,
            end=end or _after(window),
            rows=window.rows,
            closed_by=by,
            traceparent=window.traceparent,
        )


def _after(window: _Open) -> datetime:
    # Half-open bounds: just after the last row.
    return (window.last or window.start) + timedelta(microseconds=1)
