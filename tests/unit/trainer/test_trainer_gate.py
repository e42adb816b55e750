"""The evaluation gate: the challenger against the champion, with guardrails."""

from __future__ import annotations

import numpy as np
import pandas as pd  # type: ignore[import-untyped]
import pytest

from driftloop_kit.declarations import EvaluationPolicy, GuardrailSpec
from driftloop_trainer.domain.gate import (
    LabelCheck,
    Paired,
    evaluate,
    mcnemar_p_value,
    verdict_dict,
)
from driftloop_trainer.pipelines.gate import label_check

pytestmark = pytest.mark.unit


def test_a_challenger_better_than_the_champion_passes() -> None:
    verdict = evaluate(
        EvaluationPolicy(min_improvement=0.01),
        challenger={"accuracy": 0.96},
        champion={"accuracy": 0.90},
        champion_version=3,
        rows=100,
        paired=Paired(challenger_only=7, champion_only=1),
    )
    assert verdict.passed
    assert verdict.champion_score == 0.90
    assert verdict.champion_version == 3
    assert "beats" in verdict.reason


def test_a_challenger_worse_than_the_champion_fails_with_both_scores() -> None:
    verdict = evaluate(
        EvaluationPolicy(),
        challenger={"accuracy": 0.33},
        champion={"accuracy": 0.90},
        champion_version=3,
        rows=100,
    )
    assert not verdict.passed
    assert (verdict.challenger_score, verdict.champion_score) == (0.33, 0.90)
    assert "does not beat" in verdict.reason


def test_an_improvement_below_the_minimum_fails_and_a_tie_fails_without_a_minimum() -> None:
    small = evaluate(
        EvaluationPolicy(min_improvement=0.05),
        challenger={"accuracy": 0.93},
        champion={"accuracy": 0.90},
        champion_version=1,
        rows=10,
    )
    assert not small.passed
    tie = evaluate(
        EvaluationPolicy(),
        challenger={"accuracy": 0.9},
        champion={"accuracy": 0.9},
        champion_version=1,
        rows=10,
    )
    assert not tie.passed


def test_lower_is_better_metrics_compare_the_other_way() -> None:
    verdict = evaluate(
        EvaluationPolicy(
            metric="rmse", higher_is_better=False, confidence=0, min_evaluation_rows=0
        ),
        challenger={"rmse": 1.0},
        champion={"rmse": 2.0},
        champion_version=1,
        rows=10,
    )
    assert verdict.passed


def test_without_a_champion_the_challenger_passes_if_its_guardrails_hold() -> None:
    policy = EvaluationPolicy(guardrails=[GuardrailSpec(name="floor", metric="accuracy", min=0.5)])
    assert evaluate(
        policy, challenger={"accuracy": 0.8}, champion=None, champion_version=None, rows=5
    ).passed
    failed = evaluate(
        policy, challenger={"accuracy": 0.4}, champion=None, champion_version=None, rows=5
    )
    assert not failed.passed
    assert failed.guardrails[0].passed is False
    assert failed.reason == "guardrails failed: floor"


def test_a_guardrail_fails_a_challenger_that_beats_the_champion() -> None:
    policy = EvaluationPolicy(guardrails=[GuardrailSpec(name="f1", metric="f1_macro", min=0.9)])
    verdict = evaluate(
        policy,
        challenger={"accuracy": 0.99, "f1_macro": 0.5},
        champion={"accuracy": 0.9},
        champion_version=2,
        rows=5,
    )
    assert not verdict.passed
    assert verdict.guardrails[0].value == 0.5


def test_a_challenger_without_the_deciding_metric_is_an_error() -> None:
    with pytest.raises(ValueError, match="accuracy"):
        evaluate(EvaluationPolicy(), challenger={}, champion=None, champion_version=None, rows=0)


def test_a_win_by_one_row_out_of_a_thousand_keeps_the_champion() -> None:
    verdict = evaluate(
        EvaluationPolicy(),
        challenger={"accuracy": 0.801},
        champion={"accuracy": 0.800},
        champion_version=3,
        rows=1000,
        paired=Paired(challenger_only=31, champion_only=30),
    )
    assert not verdict.passed
    assert verdict.p_value is not None
    assert verdict.p_value > 0.4
    assert "not supported" in verdict.reason
    assert (verdict.challenger_only, verdict.champion_only) == (31, 30)


def test_a_clear_supported_gain_promotes_and_says_why() -> None:
    verdict = evaluate(
        EvaluationPolicy(),
        challenger={"accuracy": 0.95},
        champion={"accuracy": 0.76},
        champion_version=3,
        rows=200,
        paired=Paired(challenger_only=42, champion_only=4),
    )
    assert verdict.passed
    assert verdict.test == "mcnemar_exact_one_sided"
    assert verdict.p_value is not None
    assert verdict.p_value < 1e-6
    assert "supported" in verdict.reason


def test_too_few_evaluation_rows_keep_the_champion() -> None:
    verdict = evaluate(
        EvaluationPolicy(min_evaluation_rows=50),
        challenger={"accuracy": 1.0},
        champion={"accuracy": 0.5},
        champion_version=3,
        rows=20,
        paired=Paired(challenger_only=10, champion_only=0),
    )
    assert not verdict.passed
    assert "min_evaluation_rows" in verdict.reason


def test_a_job_that_reports_no_paired_rows_cannot_promote_on_its_scores_alone() -> None:
    verdict = evaluate(
        EvaluationPolicy(),
        challenger={"accuracy": 0.99},
        champion={"accuracy": 0.50},
        champion_version=3,
        rows=500,
    )
    assert not verdict.passed
    assert "paired" in verdict.reason


def test_the_mcnemar_p_value_is_the_binomial_tail_of_the_discordant_rows() -> None:
    # 8 of 8 discordant rows favour the challenger: 0.5 ** 8.
    assert mcnemar_p_value(Paired(8, 0)) == pytest.approx(0.5**8)
    assert mcnemar_p_value(Paired(0, 0)) == 1.0
    assert mcnemar_p_value(Paired(0, 8)) == 1.0


def test_bad_paired_counts_are_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        Paired.from_outcome({"challenger_only": -1, "champion_only": 0})
    with pytest.raises(ValueError, match="two counts"):
        Paired.from_outcome({"challenger_only": 1})
    assert Paired.from_outcome(None) is None


# --- suspect labels ------------------------------------------------------------------

COIN_FLIPS = LabelCheck(majority_label="yes", majority_share=0.53, label_shift=0.02)


def test_labels_no_candidate_beats_chance_on_are_suspect_and_fail_the_gate() -> None:
    verdict = evaluate(
        EvaluationPolicy(confidence=0),
        challenger={"accuracy": 0.545},
        champion={"accuracy": 0.50},
        champion_version=3,
        rows=400,
        labels=COIN_FLIPS,
    )
    assert not verdict.passed
    assert verdict.suspect_labels.startswith("suspect labels: the challenger and champion")
    assert "'yes' (0.5300" in verdict.suspect_labels
    assert verdict_dict(verdict)["suspect_labels"] == verdict.reason


def test_a_challenger_that_learns_the_new_labels_is_not_suspect_though_the_champion_fails() -> None:
    verdict = evaluate(
        EvaluationPolicy(confidence=0),
        challenger={"accuracy": 0.80},
        champion={"accuracy": 0.52},
        champion_version=3,
        rows=400,
        labels=COIN_FLIPS,
    )
    assert verdict.passed
    assert verdict.suspect_labels == ""


def test_the_chance_check_is_off_with_a_negative_margin_or_another_metric() -> None:
    for policy in (
        EvaluationPolicy(confidence=0, chance_margin=-1),
        EvaluationPolicy(confidence=0, metric="f1_macro"),
    ):
        verdict = evaluate(
            policy,
            challenger={"accuracy": 0.54, "f1_macro": 0.54},
            champion={"accuracy": 0.50, "f1_macro": 0.50},
            champion_version=3,
            rows=400,
            labels=COIN_FLIPS,
        )
        assert verdict.suspect_labels == "", policy


def test_labels_far_from_the_earlier_ones_are_suspect_when_a_bound_is_set() -> None:
    shifted = LabelCheck(
        majority_label="no", majority_share=0.4, label_shift=0.45, earlier_rows=900
    )
    bounded = EvaluationPolicy(confidence=0, max_label_shift=0.3)
    verdict = evaluate(
        bounded,
        challenger={"accuracy": 0.9},
        champion={"accuracy": 0.6},
        champion_version=3,
        rows=400,
        labels=shifted,
    )
    assert not verdict.passed
    assert "0.4500 (total variation) from the 900 labels" in verdict.suspect_labels
    unbounded = evaluate(
        EvaluationPolicy(confidence=0),
        challenger={"accuracy": 0.9},
        champion={"accuracy": 0.6},
        champion_version=3,
        rows=400,
        labels=shifted,
    )
    assert unbounded.passed  # by default a label shift is a concept shift, not noise


def test_the_scorer_measures_chance_and_the_label_shift_from_the_rows() -> None:
    earlier = pd.DataFrame({"y": ["a"] * 80 + ["b"] * 20})
    found = label_check(earlier, np.array(["a"] * 30 + ["b"] * 70), "y")
    assert found["majority_label"] == "b"
    assert found["majority_share"] == pytest.approx(0.7)
    assert found["label_shift"] == pytest.approx(0.5)  # |0.3-0.8|/2 + |0.7-0.2|/2
    assert found["earlier_rows"] == 100
    alone = label_check(earlier.iloc[:0], np.array(["a", "a", "b"]), "y")
    assert alone["label_shift"] is None
    assert LabelCheck.from_outcome(found) == LabelCheck("b", 0.7, 0.5, 100)
