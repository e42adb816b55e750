"""The holdout: the labelled rows a job must not train on, and the only rows the
trainer's gate scores a challenger and the champion on.

The rule is the trainer's, not the job's: among the **recent** rows (event time at or
after ``recent_start``), a row is held out when the hash of its key, salted with the
job's id, falls in the lower ``share`` of the hash space. A row's key is its event time
and its entity keys (every column that is neither a feature nor the label), so the same
row is held out whoever loads the data, and rows that arrive later do not move the rows
before them. The job reports its ``recent_start`` (``TrainingOutput.extra["holdout"]``);
the trainer reloads the labelled rows and scores both models on exactly the held-out
ones, whatever figures the job reports.

A job that reports no holdout (an entry point that does not call :func:`split`) is
scored on the rows labelled after the job started, which it cannot have trained on.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd  # type: ignore[import-untyped]

__all__ = ["SHARE", "TIMESTAMP", "Holdout", "held_out", "row_keys", "split", "usable"]

#: The labelled rows' event time column.
TIMESTAMP = "event_timestamp"
#: The share of the recent rows held out.
SHARE = 0.5


@dataclass(frozen=True)
class Holdout:
    """Which rows are held out for a job.

    Attributes:
        salt: The job's id (every job holds out other rows).
        recent_start: The first recent event time (ISO 8601); rows before it train.
        share: The share of the recent rows held out.
    """

    salt: str
    recent_start: str
    share: float = SHARE

    def as_dict(self) -> dict[str, Any]:
        """As reported by the job."""
        return {"salt": self.salt, "recent_start": self.recent_start, "share": self.share}

    @classmethod
    def from_report(cls, found: Any, *, salt: str) -> Holdout | None:
        """The holdout a job reported (None when it reported none)."""
        if not isinstance(found, dict) or not found.get("recent_start"):
            return None
        return cls(salt=salt, recent_start=str(found["recent_start"]), share=SHARE)


def usable(frame: pd.DataFrame, *, columns: Sequence[str], label: str) -> pd.DataFrame:
    """The rows with every feature, the label and the event time, oldest first (a key
    column may be empty: a label keyed by request id has no entity keys)."""
    frame = frame.copy()
    frame[TIMESTAMP] = pd.to_datetime(frame[TIMESTAMP], utc=True)
    kept = frame.dropna(subset=[*columns, label, TIMESTAMP])
    return kept.sort_values(TIMESTAMP, kind="stable").reset_index(drop=True)


def row_keys(frame: pd.DataFrame, *, columns: Sequence[str], label: str) -> list[str]:
    """Each row's key: its event time and entity keys (not its features, not its label)."""
    keys = [c for c in frame.columns if c not in set(columns) | {label, TIMESTAMP}]
    times = pd.to_datetime(frame[TIMESTAMP], utc=True).map(lambda t: t.isoformat())
    parts = [times.astype(str)] + [frame[c].astype(str) for c in sorted(keys)]
    return ["\x1f".join(values) for values in zip(*parts, strict=True)]


def held_out(keys: Sequence[str], *, salt: str, share: float = SHARE) -> np.ndarray[Any, Any]:
    """Whether each key is in the held-out share for ``salt``."""
    limit = int(share * 2**64)
    return np.array(
        [
            int.from_bytes(hashlib.blake2b(f"{salt}\x1e{key}".encode(), digest_size=8).digest())
            < limit
            for key in keys
        ],
        dtype=bool,
    )


def mask(frame: pd.DataFrame, holdout: Holdout, *, columns: Sequence[str], label: str) -> Any:
    """The held-out rows of ``frame`` (a boolean array)."""
    times = pd.to_datetime(frame[TIMESTAMP], utc=True)
    recent = (times >= pd.Timestamp(holdout.recent_start)).to_numpy()
    keys = row_keys(frame, columns=columns, label=label)
    return recent & held_out(keys, salt=holdout.salt, share=holdout.share)


def split(
    frame: pd.DataFrame, *, columns: Sequence[str], label: str, salt: str, recent_rows: int
) -> tuple[pd.DataFrame, pd.DataFrame, Holdout]:
    """Training and held-out rows of ``frame`` (sorted by event time): the recent rows
    are the newest ``recent_rows``; the holdout is the trainer's rule over them."""
    times = pd.to_datetime(frame[TIMESTAMP], utc=True)
    first_recent = times.iloc[-min(len(frame), max(1, recent_rows))]
    holdout = Holdout(salt=salt, recent_start=pd.Timestamp(first_recent).isoformat())
    chosen = mask(frame, holdout, columns=columns, label=label)
    return frame[~chosen], frame[chosen], holdout
