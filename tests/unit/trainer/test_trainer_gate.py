"""The evaluation gate: the challenger against the champion, with guardrails."""

from __future__ import annotations

import pytest

from driftloop_kit.declarations import EvaluationPolicy, GuardrailSpec
from driftloop_trainer.domain.gate import Paired, evaluate, mcnemar_p_value

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
