"""Trigger policies: debounce, cooldown, concurrency, dedup and new-data thresholds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from driftloop_kit.declarations import TriggerPolicy
from driftloop_trainer.domain.policy import (
    LabelEvidence,
    ModelState,
    Outcome,
    Suppression,
    Trigger,
    TriggerKind,
    decide,
)

pytestmark = pytest.mark.unit

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
POLICY = TriggerPolicy(debounce_seconds=300, cooldown_seconds=600, max_concurrent=1)


def drift(window: str = "w1", version: int = 3) -> Trigger:
    return Trigger(kind=TriggerKind.DRIFT, model="iris", version=version, window=window)


def ago(seconds: float) -> datetime:
    return NOW - timedelta(seconds=seconds)


def test_a_first_drift_alert_starts_a_job() -> None:
    decision = decide(drift(), ModelState(), POLICY, NOW)
    assert decision.outcome is Outcome.STARTED
    assert decision.suppression is None
    assert decision.dedup_key == "drift:iris:3:w1"


def test_a_drift_alert_inside_the_debounce_window_starts_no_job() -> None:
    state = ModelState(last_started=ago(120), last_finished=None)
    decision = decide(drift("w2"), state, POLICY.model_copy(update={"max_concurrent": 5}), NOW)
    assert decision.suppression is Suppression.DEBOUNCE
    assert "120 s ago" in decision.detail


def test_a_drift_alert_after_the_debounce_window_starts_a_job() -> None:
    state = ModelState(last_started=ago(301), last_finished=ago(700))
    assert decide(drift("w2"), state, POLICY, NOW).started


def test_a_drift_alert_in_cooldown_does_not_start_a_job() -> None:
    state = ModelState(last_started=ago(900), last_finished=ago(60))
    decision = decide(drift("w2"), state, POLICY, NOW)
    assert decision.suppression is Suppression.COOLDOWN
    assert decision.detail.startswith("cooldown: a job finished 60 s ago")


def test_a_model_at_its_concurrency_limit_starts_no_job_even_when_forced() -> None:
    state = ModelState(active_jobs=1, last_started=ago(3600))
    forced = Trigger(kind=TriggerKind.MANUAL, model="iris", window="x", force=True)
    assert decide(forced, state, POLICY, NOW).suppression is Suppression.MAX_CONCURRENT


def test_a_forced_manual_trigger_skips_cooldown_and_debounce() -> None:
    state = ModelState(last_started=ago(10), last_finished=ago(5))
    forced = Trigger(kind=TriggerKind.MANUAL, model="iris", window="x", force=True)
    assert decide(forced, state, POLICY, NOW).started


def test_a_trigger_whose_key_already_started_a_job_is_a_duplicate() -> None:
    key = drift().dedup_key(POLICY)
    state = ModelState(recent_keys={key: ago(4000)}, last_started=ago(4000))
    decision = decide(drift(), state, POLICY, NOW)
    assert decision.suppression is Suppression.DUPLICATE
    # Another window of the same version is a new cause.
    assert decide(drift("w9"), state, POLICY, NOW).started


def test_a_dedup_key_is_forgotten_after_dedup_seconds() -> None:
    policy = POLICY.model_copy(update={"dedup_seconds": 60})
    key = drift().dedup_key(policy)
    state = ModelState(recent_keys={key: ago(61)})
    assert decide(drift(), state, policy, NOW).started


def test_the_dedup_key_template_decides_what_counts_as_the_same_trigger() -> None:
    per_version = POLICY.model_copy(update={"dedup_key": "{model}:{version}"})
    key = drift("w1").dedup_key(per_version)
    assert key == "iris:3"
    decision = decide(drift("w2"), ModelState(recent_keys={key: ago(1)}), per_version, NOW)
    assert decision.suppression is Suppression.DUPLICATE


def test_a_dedup_key_template_with_unknown_placeholders_is_refused() -> None:
    with pytest.raises(ValueError, match="dedup_key"):
        TriggerPolicy(dedup_key="{model}:{colour}")


def test_new_data_counts_rows_until_the_threshold_is_reached() -> None:
    policy = POLICY.model_copy(update={"new_data_rows": 1000})
    rows = Trigger(kind=TriggerKind.NEW_DATA, model="iris", rows=400, window="e1")
    below = decide(rows, ModelState(rows_since_last_job=500), policy, NOW)
    assert below.suppression is Suppression.BELOW_THRESHOLD
    assert "900 new rows" in below.detail
    assert decide(rows, ModelState(rows_since_last_job=600), policy, NOW).started


def test_new_data_never_triggers_when_the_policy_has_no_threshold() -> None:
    rows = Trigger(kind=TriggerKind.NEW_DATA, model="iris", rows=10**9, window="e1")
    assert decide(rows, ModelState(), POLICY, NOW).suppression is Suppression.BELOW_THRESHOLD


def test_an_alert_about_a_version_the_trainer_has_replaced_starts_no_job() -> None:
    state = ModelState(champion_version=4, last_started=ago(3600), last_finished=ago(3600))
    stale = decide(drift(version=3), state, POLICY, NOW)
    assert stale.suppression is Suppression.SUPERSEDED
    assert "version 3" in stale.detail
    assert "version 4" in stale.detail
    # The current champion's alerts, and alerts about a version the trainer never
    # promoted past (e.g. moved by hand in the registry), still count.
    assert decide(drift(version=4), state, POLICY, NOW).started
    assert decide(drift(version=5), state, POLICY, NOW).started
    assert decide(drift(version=3), ModelState(), POLICY, NOW).started


# --- evidence before training: a drift job waits for labels of the new distribution ---

WAITING = TriggerPolicy(
    debounce_seconds=0, cooldown_seconds=0, min_new_labels=100, label_wait_seconds=300
)
ONSET = NOW - timedelta(seconds=30)


def onset_drift(**fields: object) -> Trigger:
    return Trigger(
        kind=TriggerKind.DRIFT,
        model="iris",
        version=3,
        window="w1",
        episode_id="ep-1",
        onset=ONSET.isoformat(),
        **fields,  # type: ignore[arg-type]
    )


def test_a_drift_trigger_with_too_few_new_labels_is_deferred_and_says_how_many() -> None:
    labels = LabelEvidence(count=37, since=ONSET, waited_seconds=20)
    decision = decide(onset_drift(), ModelState(), WAITING, NOW, labels)
    assert (decision.outcome, decision.suppression) == (
        Outcome.DEFERRED,
        Suppression.AWAITING_LABELS,
    )
    assert "37 labels since" in decision.detail
    assert "min_new_labels 100" in decision.detail
    assert "waited 20 s of at most 300 s" in decision.detail


def test_a_drift_trigger_starts_once_enough_new_labels_arrived() -> None:
    labels = LabelEvidence(count=100, since=ONSET, waited_seconds=20)
    decision = decide(onset_drift(), ModelState(), WAITING, NOW, labels)
    assert decision.started
    assert "100 labels since" in decision.detail
    assert ">= min_new_labels 100" in decision.detail


def test_the_wait_for_labels_is_bounded_and_the_start_says_it_was_short() -> None:
    labels = LabelEvidence(count=12, since=ONSET, waited_seconds=301)
    decision = decide(onset_drift(), ModelState(), WAITING, NOW, labels)
    assert decision.started
    assert "12 labels since" in decision.detail
    assert "label_wait_seconds over" in decision.detail


def test_a_forced_or_non_drift_trigger_does_not_wait_for_labels() -> None:
    few = LabelEvidence(count=0, since=ONSET, waited_seconds=0)
    assert decide(onset_drift(force=True), ModelState(), WAITING, NOW, few).started
    manual = Trigger(kind=TriggerKind.MANUAL, model="iris", window="m", onset=ONSET.isoformat())
    assert decide(manual, ModelState(), WAITING, NOW, few).started


def test_a_cooldown_is_reported_before_the_wait_for_labels() -> None:
    labels = LabelEvidence(count=0, since=ONSET, waited_seconds=0)
    cooling = WAITING.model_copy(update={"cooldown_seconds": 600})
    decision = decide(onset_drift(), ModelState(last_finished=ago(60)), cooling, NOW, labels)
    assert decision.suppression is Suppression.COOLDOWN
