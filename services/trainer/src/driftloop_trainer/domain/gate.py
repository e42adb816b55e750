"""The evaluation gate: does the challenger replace the champion?

Pure logic. The training job scores the challenger and the current champion on
the same recent labelled data; :func:`evaluate` applies the model's
:class:`EvaluationPolicy` to the scores.

A gain must be supported by evidence, not only be positive: with a champion to beat,
the evaluation needs ``min_evaluation_rows`` rows, and the rows where exactly one of
the two models is right (the discordant pairs) must favour the challenger in an exact
McNemar test at the policy's ``confidence`` (one-sided: is the challenger right more
often than chance would make it on those rows?). A challenger winning by one row out
of a thousand keeps the champion; so does a tie.

Labels are checked before a challenger trained on them can pass (:class:`LabelCheck`):
when no candidate does better on the held-out rows than always answering their most
frequent label (accuracy at most that share plus ``chance_margin``), or the held-out
labels' distribution is further than ``max_label_shift`` (total variation) from the
labels before them, the verdict names the labels as suspect and the trainer escalates
instead of retraining on them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from driftloop_kit.declarations import EvaluationPolicy


class GateScoringError(Exception):
    """The trainer could not score the challenger and the champion itself."""


@dataclass(frozen=True)
class GuardrailResult:
    """One guardrail checked against the challenger."""

    name: str
    metric: str
    value: float
    threshold: float
    passed: bool


@dataclass(frozen=True)
class Verdict:
    """The gate's decision and the numbers behind it."""

    passed: bool
    metric: str
    higher_is_better: bool
    challenger_score: float
    champion_score: float | None
    champion_version: int | None
    evaluation_rows: int
    guardrails: list[GuardrailResult] = field(default_factory=list)
    reason: str = ""
    #: The paired test: its name, the discordant rows and the one-sided p-value.
    test: str = ""
    challenger_only: int | None = None
    champion_only: int | None = None
    p_value: float | None = None
    #: ``trainer`` (its own scoring decided) or ``job`` (the job's report did).
    scored_by: str = "job"
    #: Event times of the first and last row scored.
    holdout_start: str = ""
    holdout_end: str = ""
    #: How the scored rows were chosen.
    rule: str = ""
    #: The job's own figures for its challenger (logged, never deciding).
    reported: Mapping[str, float] | None = None
    #: Why the labels are suspect ("" when they are not): the trainer escalates.
    suspect_labels: str = ""


@dataclass(frozen=True)
class LabelCheck:
    """The held-out rows' labels, against chance and against the labels before them.

    Attributes:
        majority_label: The most frequent label of the held-out rows.
        majority_share: Its share (the accuracy of always answering it).
        label_shift: Total variation distance between the held-out rows' label
            distribution and that of the rows before them (None without such rows).
        earlier_rows: Labelled rows before the held-out ones.
    """

    majority_label: str
    majority_share: float
    label_shift: float | None = None
    earlier_rows: int = 0

    @classmethod
    def from_outcome(cls, found: Mapping[str, Any] | None) -> LabelCheck | None:
        """The check the scorer reported (``labels``), or None when it reported none."""
        if not found:
            return None
        shift = found.get("label_shift")
        return cls(
            majority_label=str(found["majority_label"]),
            majority_share=float(found["majority_share"]),
            label_shift=None if shift is None else float(shift),
            earlier_rows=int(found.get("earlier_rows") or 0),
        )


def suspect_labels(
    policy: EvaluationPolicy,
    labels: LabelCheck,
    *,
    challenger: float,
    champion: float | None,
) -> str:
    """Why the labels are suspect under ``policy``; "" when they are not."""
    if (
        policy.metric == "accuracy"
        and policy.higher_is_better
        and policy.chance_margin >= 0
        and max(challenger, champion if champion is not None else challenger)
        <= labels.majority_share + policy.chance_margin
    ):
        who = "challenger and champion" if champion is not None else "challenger"
        return (
            f"suspect labels: the {who} score no better than always answering "
            f"{labels.majority_label!r} ({labels.majority_share:.4f} of the held-out rows, "
            f"chance_margin {policy.chance_margin:g}): the labels look like noise"
        )
    if (
        policy.max_label_shift < 1
        and labels.label_shift is not None
        and labels.label_shift > policy.max_label_shift
    ):
        return (
            f"suspect labels: the held-out labels are {labels.label_shift:.4f} (total "
            f"variation) from the {labels.earlier_rows} labels before them "
            f"(> max_label_shift {policy.max_label_shift:g})"
        )
    return ""


@dataclass(frozen=True)
class Paired:
    """Rows of the evaluation where exactly one model is right.

    Attributes:
        challenger_only: Rows the challenger gets right and the champion wrong.
        champion_only: Rows the champion gets right and the challenger wrong.
    """

    challenger_only: int
    champion_only: int

    @classmethod
    def from_outcome(cls, found: Mapping[str, Any] | None) -> Paired | None:
        """The counts a job reported (``paired``), or None when it reported none."""
        if not found:
            return None
        try:
            mine, theirs = int(found["challenger_only"]), int(found["champion_only"])
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"paired outcomes need two counts: {error}") from error
        if mine < 0 or theirs < 0:
            raise ValueError("paired outcome counts cannot be negative")
        return cls(mine, theirs)


def mcnemar_p_value(paired: Paired) -> float:
    """One-sided exact McNemar p-value that the challenger is right more often.

    Under the null hypothesis each discordant row is equally likely to favour either
    model: the p-value is P(X >= challenger_only) for X ~ Binomial(discordant, 1/2).
    """
    from scipy.stats import binomtest  # type: ignore[import-untyped]

    discordant = paired.challenger_only + paired.champion_only
    if discordant == 0:
        return 1.0
    return float(binomtest(paired.challenger_only, discordant, 0.5, alternative="greater").pvalue)


def _score(metrics: Mapping[str, float], metric: str, who: str) -> float:
    value = metrics.get(metric)
    if value is None or math.isnan(float(value)):
        raise ValueError(f"the {who} has no {metric!r} score")
    return float(value)


def evaluate(
    policy: EvaluationPolicy,
    *,
    challenger: Mapping[str, float],
    champion: Mapping[str, float] | None,
    champion_version: int | None,
    rows: int,
    paired: Paired | None = None,
    labels: LabelCheck | None = None,
) -> Verdict:
    """Apply ``policy`` to the scores.

    Args:
        policy: The model's evaluation policy.
        challenger: The challenger's metrics on the evaluation data.
        champion: The champion's metrics on the same data; None when there is no champion.
        champion_version: The champion's version, None when there is none.
        rows: Labelled rows scored.
        paired: Rows where exactly one model is right, for the paired test.
        labels: The held-out labels' check (suspect labels fail the gate).

    Raises:
        ValueError: The challenger lacks the deciding metric.
    """
    mine = _score(challenger, policy.metric, "challenger")
    checks: list[GuardrailResult] = []
    for rail in policy.guardrails:
        value = float(challenger.get(rail.metric, math.nan))
        low_ok = rail.min is None or value >= rail.min
        high_ok = rail.max is None or value <= rail.max
        threshold = rail.min if rail.min is not None else (rail.max or 0.0)
        checks.append(
            GuardrailResult(
                rail.name,
                rail.metric,
                value,
                threshold,
                bool(low_ok and high_ok) and not math.isnan(value),
            )
        )
    failed = [c.name for c in checks if not c.passed]
    theirs = None if champion is None else champion.get(policy.metric)
    suspect = (
        "" if labels is None else suspect_labels(policy, labels, challenger=mine, champion=theirs)
    )
    common = {
        "metric": policy.metric,
        "higher_is_better": policy.higher_is_better,
        "challenger_score": mine,
        "champion_version": champion_version if theirs is not None else None,
        "evaluation_rows": rows,
        "guardrails": checks,
    }
    if suspect:
        return Verdict(
            passed=False,
            champion_score=theirs,
            reason=suspect,
            suspect_labels=suspect,
            **common,  # type: ignore[arg-type]
        )
    if failed:
        return Verdict(
            passed=False,
            champion_score=theirs,
            reason=f"guardrails failed: {', '.join(failed)}",
            **common,  # type: ignore[arg-type]
        )
    if theirs is None:
        return Verdict(
            passed=True,
            champion_score=None,
            reason="no champion to beat",
            **common,  # type: ignore[arg-type]
        )
    gain = (mine - theirs) if policy.higher_is_better else (theirs - mine)
    passed = gain >= policy.min_improvement if policy.min_improvement > 0 else gain > 0
    word = "beats" if passed else "does not beat"
    reason = (
        f"challenger {policy.metric} {mine:.4f} {word} champion {theirs:.4f} "
        f"(improvement {gain:+.4f}, required {'>=' if policy.min_improvement > 0 else '>'} "
        f"{policy.min_improvement:g})"
    )
    evidence: dict[str, Any] = {}
    if paired is not None:
        evidence = {
            "test": "mcnemar_exact_one_sided",
            "challenger_only": paired.challenger_only,
            "champion_only": paired.champion_only,
            "p_value": mcnemar_p_value(paired),
        }
    if passed and rows < policy.min_evaluation_rows:
        passed = False
        reason += f"; but {rows} evaluation rows < min_evaluation_rows {policy.min_evaluation_rows}"
    elif passed and policy.confidence > 0:
        alpha = 1 - policy.confidence
        if paired is None:
            passed = False
            reason += (
                "; but the job reported no paired outcomes (paired.challenger_only and "
                "paired.champion_only) for the gate's paired test (evaluation.confidence 0 "
                "decides on the scores alone)"
            )
        elif evidence["p_value"] >= alpha:
            passed = False
            reason += (
                f"; but the gain is not supported: {paired.challenger_only} rows only the "
                f"challenger gets right vs {paired.champion_only} only the champion, "
                f"McNemar p={evidence['p_value']:.4g} >= {alpha:.4g} "
                f"(confidence {policy.confidence:g})"
            )
        else:
            reason += (
                f"; supported: {paired.challenger_only} vs {paired.champion_only} discordant "
                f"rows, McNemar p={evidence['p_value']:.4g} < {alpha:.4g}"
            )
    return Verdict(
        passed=passed,
        champion_score=theirs,
        reason=reason,
        **common,  # type: ignore[arg-type]
        **evidence,
    )


def verdict_dict(verdict: Verdict) -> dict[str, Any]:
    """The gate's verdict as stored with the job and shown by the API."""
    return {
        "passed": verdict.passed,
        "metric": verdict.metric,
        "higher_is_better": verdict.higher_is_better,
        "challenger_score": verdict.challenger_score,
        "champion_score": verdict.champion_score,
        "champion_version": verdict.champion_version,
        "evaluation_rows": verdict.evaluation_rows,
        "guardrails": [asdict(g) for g in verdict.guardrails],
        "reason": verdict.reason,
        "test": verdict.test or None,
        "challenger_only": verdict.challenger_only,
        "champion_only": verdict.champion_only,
        "p_value": verdict.p_value,
        "scored_by": verdict.scored_by,
        "holdout_start": verdict.holdout_start or None,
        "holdout_end": verdict.holdout_end or None,
        "rule": verdict.rule or None,
        "reported_metrics": dict(verdict.reported) if verdict.reported is not None else None,
        "suspect_labels": verdict.suspect_labels or None,
    }
