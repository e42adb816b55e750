"""Drift decisions made by Evidently's own per-column statistical tests.

The monitor does not re-derive any statistic. For each watched column it runs the test
Evidently's ``DataDriftPreset`` would run, with the same threshold
(:mod:`~driftloop_monitor.domain.stattests`, the shortcut past the report), on the
columns cleaned the way ``get_one_column_drift`` does. The dataset drifts when the share
of drifted columns reaches the policy's ``drift_share`` (Evidently's
``get_dataset_drift``). That is the decision ``DataDriftPreset`` reports, at the cost of
the tests alone; the full report (:func:`full_report`) is made only for windows that
need it.

Evidently is imported on first use: importing it takes seconds.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd  # type: ignore[import-untyped]

from driftloop_monitor.domain import columns as column_kinds
from driftloop_monitor.domain import stattests
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
        drifted: The verdict: Evidently's, unless the policy asks for a correction.
        adjusted_score: The Benjamini-Hochberg adjusted p-value (policy
            ``multiple_testing``), None when not corrected.
        effect_size: The column's effect size (policy ``min_effect_size``), None when not
            asked for.
    """

    column: str
    column_type: str
    stattest: str
    stattest_display: str
    score: float
    threshold: float
    drifted: bool
    adjusted_score: float | None = None
    effect_size: float | None = None

    @property
    def is_p_value(self) -> bool:
        """Whether the score is a p-value (drift below the threshold), not a distance."""
        return "p_value" in self.stattest_display

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready form."""
        found: dict[str, Any] = {
            "column": self.column,
            "column_type": self.column_type,
            "stattest": self.stattest,
            "stattest_display": self.stattest_display,
            "score": self.score,
            "threshold": self.threshold,
            "drifted": self.drifted,
        }
        if self.adjusted_score is not None:
            found["adjusted_score"] = self.adjusted_score
        if self.effect_size is not None:
            found["effect_size"] = self.effect_size
        return found


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
    _kinds: list[dict[str, str]] = field(default_factory=list, compare=False, repr=False)

    @property
    def value_kinds(self) -> column_kinds.ColumnKinds:
        """Tested column -> the kind of value a window's row must hold there
        (``"number"``, ``"string"``, ``"bool"``; columns of other values are not checked)."""
        if not self._kinds:  # computed once per reference, not per prediction
            found = {c: column_kinds.value_kind(self.data[c]) for c in self.column_types}
            self._kinds.append({c: kind for c, kind in found.items() if kind is not None})
        return self._kinds[0]

    def cleaned(self, column: str) -> pd.Series:
        """The column as the tests see it (cleaned once, not per window)."""
        found = self._cleaned.get(column)
        if found is None:
            found = self._cleaned[column] = _clean(self.data[column])
        return found


def warm_up() -> None:
    """Import Evidently now (seconds), e.g. in a worker thread at start-up."""
    stattests.warm_up()


def infer_column_types(
    data: pd.DataFrame, overrides: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Column types as Evidently infers them (``infer_column_type``), with overrides.

    A column of strings or booleans is categorical (``"cat"``) however many distinct
    values it has (:func:`~driftloop_monitor.domain.columns.categorical`); the
    overrides (the policy's ``column_types``) come first. Columns Evidently's drift preset
    does not test (datetime, lists, unknown) are left out.
    """
    types: dict[str, str] = {}
    for column in data.columns:
        name = str(column)
        kind = (overrides or {}).get(name) or (
            "cat"
            if column_kinds.categorical(data[column])
            else stattests.infer_column_type(data[column])
        )
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


def _clean(column: pd.Series) -> pd.Series:
    # As get_one_column_drift: infinities count as missing, missing values are dropped.
    if column.dtype.kind == "f":  # numbers: one mask, no replace (a quarter of a decision)
        finite = np.isfinite(column.to_numpy())
        return column if finite.all() else column[finite]
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
    options = stattests.options(policy)
    results: list[ColumnDecision] = []
    skipped: dict[str, str] = {}
    for column in watched_columns(reference, policy):
        kind = reference.column_types[column]
        if column not in current:
            skipped[column] = "missing from the window"
            continue
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
        test = stattests.run_test(column, kind, ref, cur, options)
        results.append(
            ColumnDecision(
                column=column,
                column_type=kind,
                stattest=test.stattest,
                stattest_display=test.stattest_display,
                score=test.score,
                threshold=test.threshold,
                drifted=test.drifted,
            )
        )
    results = corrected(results, policy, reference, current)
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


def effect_size(kind: str, reference: pd.Series, current: pd.Series) -> float:
    """How far a column moved, whatever the sample size: for a numerical column the shift
    of the mean in reference standard deviations (Cohen's d against the reference); for
    others the total variation distance between the two frequency tables (0 to 1)."""
    if kind == "num":
        spread = float(reference.std(ddof=1)) if len(reference) > 1 else 0.0
        moved = abs(float(current.mean()) - float(reference.mean()))
        return moved / spread if spread > 0 else (0.0 if moved == 0 else float("inf"))
    before = reference.astype(str).value_counts(normalize=True)
    after = current.astype(str).value_counts(normalize=True)
    return float(before.sub(after, fill_value=0.0).abs().sum() / 2)


def corrected(
    results: list[ColumnDecision],
    policy: MonitorPolicy,
    reference: ReferenceSet | None = None,
    current: pd.DataFrame | None = None,
) -> list[ColumnDecision]:
    """The per-column verdicts after the policy's corrections (none by default, so the
    decision is Evidently's).

    - ``multiple_testing="benjamini_hochberg"``: the p-values of a window's columns are
      adjusted together (the false discovery rate over the columns, not each column's
      own 5%); a p-value column drifts when its adjusted p-value is below its threshold.
      Distance tests (Wasserstein, Jensen-Shannon, PSI) are left as they are.
    - ``min_effect_size``: a column drifts only if it also moved at least this much
      (:func:`effect_size`): with large windows a tiny, harmless shift is significant.
    """
    if policy.multiple_testing == "none" and policy.min_effect_size is None:
        return results
    found = list(results)
    tested = [i for i, r in enumerate(found) if r.is_p_value]
    if policy.multiple_testing == "benjamini_hochberg" and tested:
        from scipy.stats import false_discovery_control  # type: ignore[import-untyped]

        adjusted = false_discovery_control([found[i].score for i in tested], method="bh")
        for i, value in zip(tested, adjusted, strict=True):
            r = found[i]
            found[i] = replace(r, adjusted_score=float(value), drifted=float(value) < r.threshold)
    if policy.min_effect_size is not None and reference is not None and current is not None:
        for i, r in enumerate(found):
            size = effect_size(
                r.column_type, reference.cleaned(r.column), _clean(current[r.column])
            )
            found[i] = replace(
                r, effect_size=size, drifted=r.drifted and size >= policy.min_effect_size
            )
    return found


def data_definition(reference: ReferenceSet, columns: Iterable[str]) -> Any:
    """Evidently's ``DataDefinition`` with the reference's column types."""
    from evidently import DataDefinition

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
        from evidently.presets import DataDriftPreset

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
