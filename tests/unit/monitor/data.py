"""Generated inputs with a known shift, shared by the monitor tests."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd  # type: ignore[import-untyped]

NUMERIC = [f"x{i}" for i in range(6)]
CATEGORICAL = ["colour", "flag"]


def frame(
    rows: int, *, seed: int, shifted: Iterable[str] = (), integers: bool = False
) -> pd.DataFrame:
    """Rows of 6 normal columns, a 3-level and a 2-level category; ``shifted`` ones moved."""
    rng = np.random.default_rng(seed)
    moved = set(shifted)
    data: dict[str, object] = {}
    for column in NUMERIC:
        data[column] = rng.normal(loc=1.5 if column in moved else 0.0, size=rows)
    data["colour"] = rng.choice(
        ["red", "green", "blue"], size=rows, p=[0.8, 0.1, 0.1] if "colour" in moved else None
    )
    data["flag"] = rng.choice(["yes", "no"], size=rows, p=[0.9, 0.1] if "flag" in moved else None)
    if integers:
        # Few distinct values: Evidently picks chi-square / z / Jensen-Shannon for these.
        data["level"] = rng.integers(0, 4 if "level" not in moved else 2, size=rows).astype(float)
    return pd.DataFrame(data)
