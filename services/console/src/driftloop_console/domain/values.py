"""Small values every page uses: instants in UTC, pages of a list, panels that may fail."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

__all__ = ["Page", "Panel", "as_utc", "iso_utc"]

T = TypeVar("T")

# Epoch numbers above this are milliseconds (MLflow's timestamps), below it seconds.
_MILLISECONDS_FROM = 10**11


def as_utc(value: Any) -> datetime | None:
    """An instant from what the upstreams send: epoch seconds or milliseconds, ISO 8601.

    Naive ISO strings are taken as UTC (the services write UTC). Anything else is None.
    """
    moment: datetime | None = None
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        moment = _from_epoch(value)
    elif isinstance(value, str) and value:
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            try:
                moment = _from_epoch(float(value))
            except ValueError:
                moment = None
    if moment is None:
        return None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _from_epoch(value: float) -> datetime | None:
    seconds = value / 1000 if abs(value) >= _MILLISECONDS_FROM else value
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def iso_utc(value: Any) -> str | None:
    """``2026-12-04T14:45:00Z`` (seconds; milliseconds when there are some), or None."""
    moment = as_utc(value)
    if moment is None:
        return None
    spec = "milliseconds" if moment.microsecond else "seconds"
    return moment.isoformat(timespec=spec).replace("+00:00", "Z")


@dataclass(frozen=True)
class Panel(Generic[T]):
    """What one part of a page shows: its data, or why it has none.

    Attributes:
        value: The data, when the upstream answered.
        error: A message for the viewer (which service, at which URL, what failed).
        denied: The upstream refused the viewer's credential or role.
    """

    value: T | None = None
    error: str | None = None
    denied: bool = False

    @property
    def ok(self) -> bool:
        """The panel has its data."""
        return self.error is None


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list.

    Attributes:
        items: The rows of this page.
        number: 1-based page number.
        size: Rows per page.
        has_next: Whether a next page exists.
    """

    items: list[T]
    number: int
    size: int
    has_next: bool

    @property
    def has_previous(self) -> bool:
        """Whether a previous page exists."""
        return self.number > 1

    @classmethod
    def of(cls, rows: list[T], *, number: int, size: int) -> Page[T]:
        """The ``number``-th page of ``rows`` fetched as ``number * size + 1`` rows (or fewer).

        The one extra row tells whether a next page exists.
        """
        start = (number - 1) * size
        return cls(
            items=rows[start : start + size],
            number=number,
            size=size,
            has_next=len(rows) > start + size,
        )
