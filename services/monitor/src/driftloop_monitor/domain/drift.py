"""Drift decisions made by Evidently's own per-column statistical tests.

The monitor does not re-derive any statistic. For each watched column it asks Evidently
which test its ``DataDriftPreset`` would run (``get_stattest``: the same choice by column
type, reference size and number of distinct values, or the policy's method) with the same
threshold (``DataDriftOptions.get_threshold``), cleans the columns the way
``get_one_column_drift`` does, and calls that test. The dataset drifts when the share of
drifted columns reaches the policy's ``drift_share`` (Evidently's ``get_dataset_drift``).
That is the decision ``DataDriftPreset`` reports, at the cost of the tests alone (tens of
milliseconds for 1000 rows by 20 columns, where the full report takes seconds).

Evidently is imported on first use: importing it takes seconds.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import numpy as np
import pandas as pd  # type: ignore[import-untyped]

from driftloop_monitor.domain.policy import MonitorPolicy

#: Evidently's column types the drift preset tests (``ColumnType`` values).
DRIFT_TYPES = ("num", "cat", "text")


@dataclass(frozen=True)
class ColumnDecision:
    """The outcome of one column's test.

    Attributes:
        column: Column name.
        column_type: ``"num"``, ``"cat"`` or ``"text"`` (Evidently's ``ColumnType`` values).
        stattest: Evidently's stattest name, e.g. ``"ks"`` or ``"wasserstein"``.
        stattest_display: Its display name in Evidently's reports, e.g. ``"K-S p_value"``.
        score: The test's drift score (a p-value or a distance).
        threshold: The threshold the score was compared with.
        drifted: Evidently's verdict.
    """

    column: str
    column_type: str
    stattest: str
    stattest_display: str
    score: float
    threshold: float
    drifted: bool

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready form."""
        return {
            "column": self.column,
            "column_type": self.column_type,
            "stattest": self.stattest,
            "stattest_display": self.stattest_display,
            "score": self.score,
            "threshold": self.threshold,
            "drifted": self.drifted,
        }


@dataclass(frozen=True)
class DriftDecision:
    """The decision for one window.

    Attributes:
        columns: One result per tested column, in watched order.
        skipped: Watched columns that could not be tested, with the reason.
        share: Share of tested columns that drifted.
        drift_share: The policy's dataset threshold.
        dataset_drift: ``share >= drift_share``, as Evidently decides.
    """

    columns: list[ColumnDecision]
    skipped: dict[str, str] = field(default_factory=dict)
    share: float = 0.0
    drift_share: float = 0.5
    dataset_drift: bool = False

    @property
    def drifted_columns(self) -> list[ColumnDecision]:
        """The columns that drifted."""
        return [c for c in self.columns if c.drifted]


@dataclass(frozen=True)
class ReferenceSet:
    """The reference data of one model version.

    Attributes:
        data: The sample of training inputs.
        column_types: Column -> ``"num"`` / ``"cat"`` / ``"text"`` for the testable columns.
        digest: Content digest, carried in alerts.
        source: Where it came from: ``upload``, or the location it was fetched from.
    """

    data: pd.DataFrame
    column_types: dict[str, str]
    digest: str
    source: str = "upload"
    _cleaned: dict[str, pd.Series] = field(default_factory=dict, compare=False, repr=False)

    def cleaned(self, column: str) -> pd.Series:
        """The column as the tests see it (cleaned once, not per window)."""
        found = self._cleaned.get(column)
        if found is None:
            found = self._cleaned[column] = _clean(self.data[column])
        return found


@cache
def _evidently() -> dict[str, Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from evidently.core import datasets  # type: ignore[import-untyped]
        from evidently.legacy.calculations.stattests import registry  # type: ignore[import-untyped]
        from evidently.legacy.core import ColumnType  # type: ignore[import-untyped]
        from evidently.legacy.options.data_drift import DataDriftOptions  # type: ignore[import-untyped]
    return {
        "datasets": datasets,
        "registry": registry,
        "ColumnType": ColumnType,
        "DataDriftOptions": DataDriftOptions,
    }


def warm_up() -> None:
    """Import Evidently now (seconds), e.g. in a worker thread at start-up."""
    _evidently()


def infer_column_types(
    data: pd.DataFrame, overrides: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Column types as Evidently infers them (``infer_column_type``), with overrides.

    Columns Evidently's drift preset does not test (datetime, lists, unknown) are left out.
    """
    infer = _evidently()["datasets"].infer_column_type
    types: dict[str, str] = {}
    for column in data.columns:
        name = str(column)
        kind = (overrides or {}).get(name) or infer(data[column]).value
        if kind in DRIFT_TYPES:
            types[name] = kind
    return types


def make_reference(
    data: pd.DataFrame, *, overrides: Mapping[str, str] | None = None, source: str = "upload"
) -> ReferenceSet:
    """Build a reference set: types inferred once, and a digest of the content."""
    if data.empty:
        raise ValueError("reference data has no rows")
    data = data.reset_index(drop=True)
    return ReferenceSet(
        data=data,
        column_types=infer_column_types(data, overrides),
        digest=data_digest(data),
        source=source,
    )


def data_digest(data: pd.DataFrame) -> str:
    """A short content digest of a frame (columns and values)."""
    hashed = pd.util.hash_pandas_object(data, index=False).to_numpy()
    digest = hashlib.sha256(",".join(map(str, data.columns)).encode())
    digest.update(hashed.tobytes())
    return digest.hexdigest()[:16]


def watched_columns(reference: ReferenceSet, policy: MonitorPolicy) -> list[str]:
    """The columns tested: the policy's (when in the reference) or every typed column."""
    if policy.columns is None:
        return list(reference.column_types)
    return [c for c in policy.columns if c in reference.column_types]


def _options(policy: MonitorPolicy) -> Any:
    return _evidently()["DataDriftOptions"](
        drift_share=policy.drift_share,
        all_features_stattest=policy.method,
        cat_features_stattest=policy.cat_method,
        num_features_stattest=policy.num_method,
        text_features_stattest=policy.text_method,
        per_feature_stattest=policy.per_column_method,
        all_features_threshold=policy.threshold,
        cat_features_threshold=policy.cat_threshold,
        num_features_threshold=policy.num_threshold,
        text_features_threshold=policy.text_threshold,
        per_feature_threshold=policy.per_column_threshold,
    )


def _clean(column: pd.Series) -> pd.Series:
    # As get_one_column_drift: infinities count as missing, missing values are dropped.
    return column.replace([-np.inf, np.inf], np.nan).dropna()


def current_frame(rows: Sequence[Mapping[str, Any]], reference: ReferenceSet) -> pd.DataFrame:
    """The window's rows as a frame; numerical columns coerced to numbers."""
    frame = pd.DataFrame.from_records(list(rows))
    for column, kind in reference.column_types.items():
        if kind == "num" and column in frame and not pd.api.types.is_numeric_dtype(frame[column]):
            frame[column] = pd.to_numeric(frame[column], errors="coerce")
    return frame


def decide(reference: ReferenceSet, current: pd.DataFrame, policy: MonitorPolicy) -> DriftDecision:
    """Test every watched column of ``current`` against ``reference`` as Evidently does.

    Args:
        reference: The version's reference data.
        current: The window's rows.
        policy: Methods, thresholds, watched columns and the dataset drift share.

    Returns:
        The per-column results and the dataset decision.
    """
    ev = _evidently()
    column_type_of = ev["ColumnType"]
    get_stattest = ev["registry"].get_stattest
    options = _options(policy)
    results: list[ColumnDecision] = []
    skipped: dict[str, str] = {}
    for column in watched_columns(reference, policy):
        kind = reference.column_types[column]
        if column not in current:
            skipped[column] = "missing from the window"
            continue
        column_type = column_type_of(kind)
        ref = reference.cleaned(column)
        cur = _clean(current[column])
        if ref.empty or cur.empty:
            skipped[column] = "no values in the " + ("reference" if ref.empty else "window")
            continue
        if kind == "num" and not (
            pd.api.types.is_numeric_dtype(ref) and pd.api.types.is_numeric_dtype(cur)
        ):
            skipped[column] = "not numerical"
            continue
        stattest_arg = options.get_feature_stattest_func(column, kind)
        threshold = options.get_threshold(column, kind)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            test = get_stattest(ref, cur, column_type, stattest_arg)
            outcome = test(ref, cur, column_type, threshold)
        results.append(
            ColumnDecision(
                column=column,
                column_type=kind,
                stattest=test.name,
                stattest_display=test.display_name,
                score=float(outcome.drift_score),
                threshold=float(outcome.actual_threshold),
                drifted=bool(outcome.drifted),
            )
        )
    drifted = sum(1 for r in results if r.drifted)
    share = drifted / len(results) if results else 0.0
    return DriftDecision(
        columns=results,
        skipped=skipped,
        share=share,
        drift_share=policy.drift_share,
        # Evidently's get_dataset_drift: share_drifted_columns >= drift_share.
        dataset_drift=bool(results) and share >= policy.drift_share,
    )


def data_definition(reference: ReferenceSet, columns: Iterable[str]) -> Any:
    """Evidently's ``DataDefinition`` with the reference's column types."""
    from evidently import DataDefinition  # type: ignore[import-untyped]

    wanted = list(columns)
    by_kind = {
        kind: [c for c in wanted if reference.column_types.get(c) == kind] for kind in DRIFT_TYPES
    }
    return DataDefinition(
        numerical_columns=by_kind["num"],
        categorical_columns=by_kind["cat"],
        text_columns=by_kind["text"],
    )


def full_report(
    reference: ReferenceSet, current: pd.DataFrame, policy: MonitorPolicy
) -> tuple[str, str]:
    """Evidently's whole ``DataDriftPreset`` report for a window: ``(json, html)``.

    Takes seconds: run it off the event loop, and only for windows that need it.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from evidently import Dataset, Report
        from evidently.presets import DataDriftPreset  # type: ignore[import-untyped]

        columns = [c for c in watched_columns(reference, policy) if c in current]
        definition = data_definition(reference, columns)
        preset = DataDriftPreset(
            columns=columns,
            drift_share=policy.drift_share,
            method=policy.method,
            cat_method=policy.cat_method,
            num_method=policy.num_method,
            text_method=policy.text_method,
            per_column_method=policy.per_column_method,
            threshold=policy.threshold,
            cat_threshold=policy.cat_threshold,
            num_threshold=policy.num_threshold,
            text_threshold=policy.text_threshold,
            per_column_threshold=policy.per_column_threshold,
        )
        snapshot = Report([preset], include_tests=True).run(
            Dataset.from_pandas(current[columns], data_definition=definition),
            Dataset.from_pandas(reference.data[columns], data_definition=definition),
        )
        return snapshot.json(), snapshot.get_html_str(as_iframe=False)


def to_parquet(data: pd.DataFrame) -> bytes:
    """Serialise a frame (reference data, kept windows)."""
    buffer = io.BytesIO()
    data.to_parquet(buffer, index=False)
    return buffer.getvalue()


def from_parquet(blob: bytes) -> pd.DataFrame:
    """Read back :func:`to_parquet`."""
    return pd.read_parquet(io.BytesIO(blob))
