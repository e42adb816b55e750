"""The trainer's use cases against fakes: trigger decisions, redeliveries, the gate, promotion.

The events come in through the consumer's ``HANDLERS``, as the bus would deliver them;
time is a clock the tests move.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from driftloop.common.v1.common_pb2 import ModelRef, Window
from driftloop.monitor.v1 import events_pb2 as monitor
from driftloop_bus.consumer import bind
from driftloop_events.envelope import CloudEvent
from driftloop_kit.declarations import TriggerPolicy
from driftloop_trainer.domain.jobs import ModelConfig
from driftloop_trainer.domain.leases import Owner
from driftloop_trainer.domain.policy import Trigger, TriggerKind
from driftloop_trainer.entrypoints.consumers import HANDLERS
from driftloop_trainer.service_layer.training import Endpoints, Training
from tests.fakes.common import FakeOutbox
from tests.fakes.trainer import (
    FakeEvidence,
    FakeExecutor,
    FakeGate,
    FakeLabels,
    FakeRegistry,
    FakeTrainerStore,
)

pytestmark = pytest.mark.unit

MODEL = "iris"
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
FAILED = {"ok": False, "stage": "data", "error": "no rows", "error_type": "NoData"}


@dataclass
class Clock:
    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class Trainer:
    training: Training
    store: FakeTrainerStore
    registry: FakeRegistry
    outbox: FakeOutbox
    clock: Clock

    async def deliver(self, event: CloudEvent[Any]) -> None:
        """Run the consumer's handlers of ``event``, as the bus would."""
        for handler in bind(HANDLERS, self.training)[type(event.data)]:
            await handler(event)
        await self.training.wait_idle()

    def events(self) -> list[str]:
        return [e.type.rsplit(".", 1)[-1] for e in self.outbox.events]


def trainer(
    tmp_path: Path,
    *,
    policy: TriggerPolicy,
    outcome: dict[str, Any] = FAILED,
    aliases: dict[str, int] | None = None,
    evidence: FakeEvidence | None = None,
    gate: FakeGate | None = None,
    labels: FakeLabels | None = None,
) -> Trainer:
    clock, outbox = Clock(), FakeOutbox()
    store = FakeTrainerStore(outbox=outbox, clock=clock)
    registry = FakeRegistry(aliases)
    training = Training(
        models={MODEL: ModelConfig(policy=policy)},
        store=store,
        registry=registry,
        executor=FakeExecutor(outcome),
        endpoints=Endpoints("http://t", "http://r", "http://f", "exp", tmp_path),
        clock=clock,
        evidence=evidence,
        gate=gate,
        labels=labels,
    )
    return Trainer(training, store, registry, outbox, clock)


def drift_alert(window: str, *, model: str = MODEL) -> CloudEvent[monitor.DriftDetected]:
    return CloudEvent.new(
        monitor.DriftDetected(
            model=ModelRef(name=model, version=1),
            window=Window(id=window),
            columns=[monitor.ColumnDrift(column="petal_width", drifted=True)],
            drift_share=1.0,
            dataset_drift_threshold=0.5,
        )
    )


def scored(accuracy: float, champion: float, champion_version: int) -> dict[str, Any]:
    return {
        "ok": True,
        "run_id": "a" * 32,
        "model_version": 5,
        "metrics": {"accuracy": accuracy},
        "champion_metrics": {"accuracy": champion},
        "champion_version": champion_version,
        "evaluation_rows": 40,
        # The rows behind the scores: only one model right on the difference.
        "paired": {
            "challenger_only": max(0, round((accuracy - champion) * 40)),
            "champion_only": max(0, round((champion - accuracy) * 40)),
        },
    }


OPEN = TriggerPolicy(debounce_seconds=0, cooldown_seconds=0, max_concurrent=5)


async def manual_job(trainer: Trainer) -> dict[str, Any]:
    found = await trainer.training.submit(Trigger(kind=TriggerKind.MANUAL, model=MODEL, window="m"))
    assert found is not None
    decision, job_id = found
    assert job_id is not None, decision.detail
    await trainer.training.wait_idle()
    return await trainer.store.get_job(job_id)


async def test_a_drift_alert_without_an_episode_in_cooldown_starts_no_job(tmp_path: Path) -> None:
    policy = TriggerPolicy(debounce_seconds=0, cooldown_seconds=600, max_concurrent=5)
    running = trainer(tmp_path, policy=policy)
    await running.deliver(drift_alert("w1"))
    (first,) = running.store.jobs.values()
    assert (first["status"], first["finished_at"]) == ("failed", T0)

    running.clock.advance(60)
    await running.deliver(drift_alert("w2"))

    latest = running.store.decisions[-1]
    # Without an episode to keep it for (a monitor before episodes), it is not deferred.
    assert (latest["outcome"], latest["suppression"]) == ("suppressed", "cooldown")
    assert latest["detail"].startswith("cooldown: a job finished")
    assert latest["job_id"] is None
    assert len(running.store.jobs) == 1
    assert running.events() == ["requested", "started", "failed"]


async def test_a_drift_alert_after_the_cooldown_starts_a_job(tmp_path: Path) -> None:
    policy = TriggerPolicy(debounce_seconds=0, cooldown_seconds=600, max_concurrent=5)
    running = trainer(tmp_path, policy=policy)
    await running.deliver(drift_alert("w1"))
    running.clock.advance(601)
    await running.deliver(drift_alert("w2"))
    assert [d["outcome"] for d in running.store.decisions] == ["started", "started"]
    assert len(running.store.jobs) == 2


async def test_a_redelivered_drift_alert_decides_nothing_twice(tmp_path: Path) -> None:
    policy = OPEN.model_copy(update={"dedup_seconds": 0})
    running = trainer(tmp_path, policy=policy)
    alert = drift_alert("w1")
    await running.deliver(alert)
    await running.deliver(alert)  # the same event id, as a redelivery brings it
    assert [d["event_id"] for d in running.store.decisions] == [alert.id]
    (job,) = running.store.jobs.values()
    assert job["trigger"]["event_id"] == alert.id
    assert running.events().count("requested") == 1


async def test_a_redelivered_trigger_is_reported_as_nothing_decided(tmp_path: Path) -> None:
    running = trainer(tmp_path, policy=OPEN)
    alert = drift_alert("w1")
    trigger = Trigger(kind=TriggerKind.DRIFT, model=MODEL, window="w1", event_id=alert.id)
    assert await running.training.submit(trigger, event=alert) is not None
    assert await running.training.submit(trigger, event=alert) is None
    await running.training.wait_idle()
    assert len(running.store.decisions) == 1


async def test_a_drift_alert_for_a_model_without_a_drift_trigger_decides_nothing(
    tmp_path: Path,
) -> None:
    running = trainer(tmp_path, policy=OPEN.model_copy(update={"on_drift": False}))
    await running.deliver(drift_alert("w1"))
    await running.deliver(drift_alert("w1", model="someone-else"))
    assert running.store.decisions == []
    assert running.outbox.events == []


async def test_a_job_that_wins_the_gate_moves_the_champion_alias(tmp_path: Path) -> None:
    running = trainer(tmp_path, policy=OPEN, outcome=scored(0.97, 0.70, 4), aliases={"champion": 4})
    job = await manual_job(running)
    assert (job["status"], job["promoted"]) == ("succeeded", True)
    assert running.registry.aliases == {"champion": 5, "previous": 4}
    completed = running.outbox.events[-1]
    assert completed.type == "driftloop.trainer.training.completed"
    assert (completed.data.promoted, completed.data.alias) == (True, "champion")
    cause = {"id": completed.id, "type": completed.type, "source": "/driftloop/trainer"}
    assert running.registry.moves == [("previous", 4, cause), ("champion", 5, cause)]
    assert [(m["alias"], m["version"], m["previous_version"]) for m in running.store.moves] == [
        ("previous", 4, None),
        ("champion", 5, 4),
    ]


async def test_a_finished_job_is_counted_by_outcome_and_its_duration_observed(
    tmp_path: Path,
) -> None:
    running = trainer(tmp_path, policy=OPEN, outcome=scored(0.97, 0.70, 4), aliases={"champion": 4})
    before = _jobs_metric(MODEL, "succeeded")

    await manual_job(running)

    after = _jobs_metric(MODEL, "succeeded")
    assert after[0] == before[0] + 1
    assert after[1] == before[1] + 1


def _jobs_metric(model: str, status: str) -> tuple[float, float]:
    """(finished jobs promoted, duration observations) of ``model`` with ``status``."""
    from prometheus_client import REGISTRY

    finished = REGISTRY.get_sample_value(
        "driftloop_trainer_jobs_finished_total",
        {"model": model, "status": status, "promoted": "true"},
    )
    observed = REGISTRY.get_sample_value(
        "driftloop_trainer_job_duration_seconds_count", {"model": model, "status": status}
    )
    return (finished or 0.0, observed or 0.0)


async def test_a_job_that_loses_the_gate_does_not_move_the_champion_alias(
    tmp_path: Path,
) -> None:
    running = trainer(tmp_path, policy=OPEN, outcome=scored(0.85, 0.90, 4), aliases={"champion": 4})
    job = await manual_job(running)
    assert (job["status"], job["promoted"]) == ("succeeded", False)
    assert job["evaluation"]["passed"] is False
    assert "does not beat" in job["evaluation"]["reason"]
    assert running.registry.aliases == {"champion": 4}
    assert running.registry.moves == []
    assert running.store.moves == []
    assert running.outbox.events[-1].data.promoted is False


async def test_a_winner_is_not_promoted_when_the_champion_moved_while_it_ran(
    tmp_path: Path,
) -> None:
    running = trainer(tmp_path, policy=OPEN, outcome=scored(0.97, 0.70, 4), aliases={"champion": 6})
    job = await manual_job(running)
    assert (job["status"], job["promoted"]) == ("succeeded", False)
    assert "moved to version 6" in job["evaluation"]["reason"]
    assert running.registry.moves == []


async def test_a_winner_is_not_promoted_when_another_decider_promotes_between_read_and_move(
    tmp_path: Path,
) -> None:
    running = trainer(tmp_path, policy=OPEN, outcome=scored(0.97, 0.70, 4), aliases={"champion": 4})
    running.registry.moved_meanwhile = 6
    job = await manual_job(running)
    assert (job["status"], job["promoted"]) == ("succeeded", False)
    assert "not 4" in job["evaluation"]["reason"]
    assert running.registry.aliases == {"champion": 6}
    assert running.store.moves == []


async def test_a_rollback_swaps_the_champion_and_previous_aliases(tmp_path: Path) -> None:
    running = trainer(tmp_path, policy=OPEN, aliases={"champion": 5, "previous": 4})
    assert await running.training.rollback(MODEL) == {
        "model_name": MODEL,
        "champion": 4,
        "previous": 5,
    }
    assert running.registry.aliases == {"champion": 4, "previous": 5}
    assert [m["action"] for m in running.store.moves] == ["rollback", "rollback"]


async def test_a_schedule_slot_submits_one_trigger_however_often_it_is_checked(
    tmp_path: Path,
) -> None:
    running = trainer(tmp_path, policy=OPEN.model_copy(update={"schedule": "600"}))
    fired: dict[str, datetime] = {}
    since = T0 - timedelta(seconds=1)
    for later in (0, 30, 60):
        await running.training.fire_schedules(
            now=T0 + timedelta(seconds=later), since=since, fired=fired
        )
    await running.training.wait_idle()
    assert [d["kind"] for d in running.store.decisions] == ["schedule"]
    assert fired == {MODEL: T0}


# --- episodes: deferred, not dropped; refusals back off, then escalate -----------------


def episode_alert(window: str, episode: str) -> CloudEvent[monitor.DriftDetected]:
    alert = drift_alert(window)
    alert.data.episode_id = episode
    return alert


def cleared(episode: str) -> CloudEvent[monitor.DriftCleared]:
    return CloudEvent.new(
        monitor.DriftCleared(
            model=ModelRef(name=MODEL, version=1), window=Window(id="w9"), episode_id=episode
        )
    )


async def tick(running: Trainer) -> list[str]:
    """One beat of the trainer's clock (deferred triggers), jobs run to their end."""
    started = await running.training.retry_pending()
    await running.training.wait_idle()
    return started


COOLING = TriggerPolicy(debounce_seconds=0, cooldown_seconds=600, max_concurrent=5)


async def test_drift_during_cooldown_starts_exactly_one_job_when_the_cooldown_ends(
    tmp_path: Path,
) -> None:
    running = trainer(tmp_path, policy=COOLING)
    await running.deliver(drift_alert("w1"))  # a first job; its end starts a cooldown
    running.clock.advance(60)
    await running.deliver(episode_alert("w2", "ep-1"))
    assert len(running.store.jobs) == 1
    deferred = running.store.decisions[-1]
    assert (deferred["outcome"], deferred["suppression"]) == ("deferred", "cooldown")
    assert deferred["detail"].startswith("deferred for episode ep-1")

    running.clock.advance(300)
    assert await tick(running) == []  # still cooling down: nothing, and nothing recorded
    decisions = len(running.store.decisions)
    running.clock.advance(300)
    (job_id,) = await tick(running)
    assert len(running.store.decisions) == decisions + 1
    assert running.store.jobs[job_id]["trigger"]["episode_id"] == "ep-1"
    running.clock.advance(10_000)
    assert await tick(running) == []  # once: the episode's trigger was used
    assert len(running.store.jobs) == 2


async def test_a_deferred_trigger_is_dropped_when_its_episode_closes_first(tmp_path: Path) -> None:
    running = trainer(tmp_path, policy=COOLING)
    await running.deliver(drift_alert("w1"))
    running.clock.advance(60)
    await running.deliver(episode_alert("w2", "ep-1"))
    await running.deliver(cleared("ep-1"))

    dropped = running.store.decisions[-1]
    assert (dropped["outcome"], dropped["episode_id"]) == ("dropped", "ep-1")
    assert "closed" in dropped["detail"]
    running.clock.advance(10_000)
    assert await tick(running) == []
    assert len(running.store.jobs) == 1


async def test_flapping_alerts_within_one_episode_start_one_job(tmp_path: Path) -> None:
    running = trainer(tmp_path, policy=COOLING)
    await running.deliver(drift_alert("w1"))
    for window in ("w2", "w3", "w4"):
        running.clock.advance(60)
        await running.deliver(episode_alert(window, "ep-1"))
    running.clock.advance(1_000)
    assert len(await tick(running)) == 1
    running.clock.advance(1_000)
    assert await tick(running) == []


REFUSING = TriggerPolicy(
    debounce_seconds=0,
    cooldown_seconds=0,
    max_concurrent=5,
    retry_backoff_seconds=100,
    max_refusals_per_episode=3,
)


async def test_a_refused_challenger_is_retried_only_after_the_backoff_then_escalates(
    tmp_path: Path,
) -> None:
    # The challenger never beats the champion: every retrain of the episode is refused.
    running = trainer(
        tmp_path, policy=REFUSING, outcome=scored(0.70, 0.90, 4), aliases={"champion": 4}
    )
    await running.deliver(episode_alert("w1", "ep-1"))
    assert len(running.store.jobs) == 1
    assert running.store.decisions[-1]["outcome"] == "deferred"  # refusal 1: backing off

    assert await tick(running) == []  # no new evidence yet: the back-off holds
    running.clock.advance(101)
    assert len(await tick(running)) == 1  # refusal 2: the back-off doubles
    running.clock.advance(150)
    assert await tick(running) == []
    running.clock.advance(60)
    assert len(await tick(running)) == 1  # refusal 3: escalated

    assert len(running.store.jobs) == 3
    escalated = running.outbox.events[-1]
    assert escalated.type == "driftloop.trainer.training.escalated"
    assert escalated.data.episode_id == "ep-1"
    assert escalated.data.rule == "max_refusals_per_episode=3"
    assert list(escalated.data.job_ids) == list(running.store.jobs)
    assert escalated.data.evidence["refusals"] == "3"
    assert running.store.decisions[-1]["outcome"] == "escalated"
    running.clock.advance(100_000)
    assert await tick(running) == []  # and no further jobs
    assert len(running.store.jobs) == 3
    # Another alert of the escalated episode starts nothing either, and says why.
    await running.deliver(episode_alert("w9", "ep-1"))
    assert len(running.store.jobs) == 3
    last = running.store.decisions[-1]
    assert (last["outcome"], last["suppression"]) == ("suppressed", "escalated")
    assert "handed to a person" in last["detail"]


AWAITING = TriggerPolicy(
    debounce_seconds=0, cooldown_seconds=0, min_new_labels=50, label_wait_seconds=120
)


def onset_alert(window: str, episode: str, onset: datetime) -> CloudEvent[monitor.DriftDetected]:
    alert = episode_alert(window, episode)
    alert.data.window.start_time.FromDatetime(onset)
    return CloudEvent.new(alert.data, time=T0)


async def test_a_drift_job_waits_for_labels_of_the_new_distribution_then_starts_once(
    tmp_path: Path,
) -> None:
    labels = FakeLabels()
    onset = T0 - timedelta(seconds=5)
    labels.add(MODEL, *[onset - timedelta(seconds=60)] * 500)  # the old distribution's
    running = trainer(tmp_path, policy=AWAITING, labels=labels)
    await running.deliver(onset_alert("w1", "ep-1", onset))
    assert running.store.jobs == {}
    waiting = running.store.decisions[-1]
    assert (waiting["outcome"], waiting["suppression"]) == ("deferred", "awaiting_labels")
    assert "0 labels since" in waiting["detail"]

    labels.add(MODEL, *[onset + timedelta(seconds=1)] * 30)
    running.clock.advance(10)
    assert await tick(running) == []  # 30 < 50: still waiting, and nothing recorded again
    assert running.store.decisions[-1] is waiting
    labels.add(MODEL, *[onset + timedelta(seconds=2)] * 20)
    running.clock.advance(10)
    (job_id,) = await tick(running)
    started = running.store.decisions[-1]
    assert started["job_id"] == job_id
    assert "50 labels since" in started["detail"]
    assert running.store.jobs[job_id]["trigger"]["onset"] == onset.isoformat()
    running.clock.advance(1_000)
    assert await tick(running) == []


async def test_a_drift_job_starts_with_the_labels_there_are_when_the_wait_is_over(
    tmp_path: Path,
) -> None:
    labels = FakeLabels()
    onset = T0 - timedelta(seconds=5)
    running = trainer(tmp_path, policy=AWAITING, labels=labels)
    await running.deliver(onset_alert("w1", "ep-1", onset))
    labels.add(MODEL, *[onset + timedelta(seconds=1)] * 7)
    running.clock.advance(100)
    assert await tick(running) == []
    running.clock.advance(21)  # 121 s after the alert: label_wait_seconds is over
    (job_id,) = await tick(running)
    detail = running.store.decisions[-1]["detail"]
    assert "7 labels since" in detail
    assert "label_wait_seconds over" in detail
    assert running.store.jobs[job_id]["trigger"]["episode_id"] == "ep-1"


async def test_a_promotion_resolves_the_episode(tmp_path: Path) -> None:
    running = trainer(
        tmp_path, policy=REFUSING, outcome=scored(0.97, 0.70, 4), aliases={"champion": 4}
    )
    await running.deliver(episode_alert("w1", "ep-1"))
    assert running.store.jobs[next(iter(running.store.jobs))]["promoted"]
    running.clock.advance(100_000)
    assert await tick(running) == []
    assert running.store.episodes[MODEL, "ep-1"].resolved


@pytest.mark.parametrize(
    ("registered", "logged", "reason"),
    [
        (None, {"accuracy": 0.97}, "which is not registered"),
        ("b" * 32, {"accuracy": 0.97}, "was registered from run 'bbbb"),
        ("a" * 32, {"accuracy": 0.71}, "accuracy=0.97 is not what run"),
        ("a" * 32, {}, "accuracy=0.97 is not what run"),
    ],
)
async def test_a_report_that_does_not_match_what_the_job_registered_and_logged_promotes_nothing(
    tmp_path: Path, registered: str | None, logged: dict[str, float], reason: str
) -> None:
    evidence = FakeEvidence()
    if registered is not None:
        evidence.record(MODEL, 5, registered, logged)
    running = trainer(
        tmp_path,
        policy=OPEN,
        outcome=scored(0.97, 0.70, 4),
        aliases={"champion": 4},
        evidence=evidence,
    )

    job = await manual_job(running)

    assert (job["status"], job["stage"], job["error_type"]) == (
        "failed",
        "evaluation",
        "UnverifiedResult",
    )
    assert reason in job["error"]
    assert running.registry.moves == []


async def test_a_report_that_matches_what_the_job_did_is_evaluated_and_promoted(
    tmp_path: Path,
) -> None:
    evidence = FakeEvidence()
    evidence.record(MODEL, 5, "a" * 32, {"accuracy": 0.97, "train_accuracy": 0.99})
    running = trainer(
        tmp_path,
        policy=OPEN,
        outcome=scored(0.97, 0.70, 4),
        aliases={"champion": 4},
        evidence=evidence,
    )

    job = await manual_job(running)

    assert (job["status"], job["promoted"]) == ("succeeded", True)


async def test_an_applied_document_is_taken_up_at_once_and_after_a_restart(
    tmp_path: Path,
) -> None:
    from driftloop_kit.declarations import ModelDeclaration

    t = trainer(tmp_path, policy=TriggerPolicy())
    document = ModelDeclaration.model_validate(
        {
            "apiVersion": "driftloop/v1",
            "kind": "Model",
            "metadata": {"name": "churn"},
            "spec": {
                "label": "churned",
                "features": {"feature_service": "churn_v1"},
                "trigger": {"cooldown_seconds": 42},
                "evaluation": {"min_evaluation_rows": 500},
            },
        }
    )

    first = await t.training.declare(document, by="alice")
    again = await t.training.declare(document, by="alice")

    assert first == {"name": "churn", "revision": 1, "changed": True}
    assert again == {"name": "churn", "revision": 1, "changed": False}
    config = t.training.config("churn")
    assert config.policy.cooldown_seconds == 42
    assert config.job.label == "churned"
    assert config.job.evaluation.min_evaluation_rows == 500
    # A new process on the same store takes the stored document over the settings'.
    restarted = Training(
        models={"churn": ModelConfig()},
        store=t.store,
        registry=t.registry,
        executor=FakeExecutor(FAILED),
        endpoints=Endpoints("http://t", "http://r", "http://f", "exp", tmp_path),
        clock=t.clock,
    )
    await restarted.load_declarations()
    assert restarted.config("churn").revision == 1
    assert restarted.config("churn").policy.cooldown_seconds == 42


async def test_the_trainers_own_scores_decide_and_the_jobs_figures_are_only_kept(
    tmp_path: Path,
) -> None:
    # The job claims a clear win; the trainer's scoring of both models says otherwise.
    gate = FakeGate(
        {
            "rows": 200,
            "challenger_metrics": {"accuracy": 0.61},
            "champion_metrics": {"accuracy": 0.90},
            "paired": {"challenger_only": 4, "champion_only": 62},
            "holdout_start": "2030-01-01T10:00:00+00:00",
            "holdout_end": "2030-01-01T12:00:00+00:00",
            "rule": "held out by the trainer's rule",
        }
    )
    outcome = {**scored(0.99, 0.50, 4), "extra": {"holdout": {"recent_start": "2030-01-01"}}}
    running = trainer(tmp_path, policy=OPEN, outcome=outcome, aliases={"champion": 4}, gate=gate)

    job = await manual_job(running)

    assert (job["status"], job["promoted"]) == ("succeeded", False)
    evaluation = job["evaluation"]
    assert evaluation["scored_by"] == "trainer"
    assert (evaluation["challenger_score"], evaluation["champion_score"]) == (0.61, 0.90)
    assert evaluation["reported_metrics"] == {"accuracy": 0.99}
    assert evaluation["evaluation_rows"] == 200
    assert evaluation["holdout_end"] == "2030-01-01T12:00:00+00:00"
    # The trainer scored the registry's champion, with the holdout the job reported.
    (call,) = gate.calls
    assert (call["challenger"], call["champion"]) == (5, 4)
    assert call["holdout"] == {"recent_start": "2030-01-01"}
    completed = running.outbox.events[-1].data.evaluation
    assert (completed.scored_by, completed.reported_metrics["accuracy"]) == ("trainer", 0.99)
    assert running.registry.aliases == {"champion": 4}


async def test_no_held_out_row_to_score_fails_the_evaluation_and_promotes_nothing(
    tmp_path: Path,
) -> None:
    gate = FakeGate({"rows": 0, "rule": "labelled after the job started"})
    running = trainer(tmp_path, policy=OPEN, outcome=scored(0.99, 0.5, 4), gate=gate)

    job = await manual_job(running)

    assert (job["status"], job["stage"]) == ("failed", "evaluation")
    assert "no held-out labelled row" in job["error"]
    assert job["error_type"] == "GateScoringError"
    assert running.registry.moves == []


async def test_suspect_labels_escalate_the_episode_at_the_first_refusal(tmp_path: Path) -> None:
    # Coin-flip labels: neither model does better than answering the most frequent label.
    gate = FakeGate(
        {
            "rows": 400,
            "challenger_metrics": {"accuracy": 0.52},
            "champion_metrics": {"accuracy": 0.49},
            "paired": {"challenger_only": 60, "champion_only": 48},
            "labels": {"majority_label": "no", "majority_share": 0.51, "label_shift": 0.03},
        }
    )
    running = trainer(
        tmp_path,
        policy=REFUSING,  # three refusals would be allowed
        outcome=scored(0.52, 0.49, 4),
        aliases={"champion": 4},
        gate=gate,
    )
    await running.deliver(episode_alert("w1", "ep-1"))

    (job,) = running.store.jobs.values()
    assert job["promoted"] is False
    assert job["evaluation"]["suspect_labels"].startswith("suspect labels")
    escalated = running.outbox.events[-1]
    assert escalated.type == "driftloop.trainer.training.escalated"
    assert escalated.data.rule == "suspect_labels"
    assert escalated.data.evidence["suspect_labels"] == job["evaluation"]["suspect_labels"]
    running.clock.advance(100_000)
    assert await tick(running) == []
    assert len(running.store.jobs) == 1
    # Another episode of the same version (its performance alert) would train on the same
    # labels: held too, and says why.
    await running.deliver(episode_alert("w2", "ep-2"))
    assert len(running.store.jobs) == 1
    last = running.store.decisions[-1]
    assert (last["outcome"], last["suppression"]) == ("suppressed", "escalated")
    assert "labels of version 1 were found suspect" in last["detail"]


async def test_a_refused_episode_is_retried_only_on_labels_newer_than_the_refusal(
    tmp_path: Path,
) -> None:
    labels = FakeLabels()
    onset = T0 - timedelta(seconds=5)
    labels.add(MODEL, *[onset + timedelta(seconds=1)] * 80)  # the evidence of the first job
    policy = REFUSING.model_copy(update={"min_new_labels": 50, "label_wait_seconds": 1_000})
    running = trainer(
        tmp_path,
        policy=policy,
        outcome=scored(0.70, 0.90, 4),
        aliases={"champion": 4},
        labels=labels,
    )
    await running.deliver(onset_alert("w1", "ep-1", onset))
    assert len(running.store.jobs) == 1  # 80 labels since the onset: it started at once
    refused = running.store.decisions[-1]
    assert refused["outcome"] == "deferred"
    assert "50 new labels have come since" in refused["detail"]

    running.clock.advance(101)  # the back-off is over, but nothing new has been labelled
    assert await tick(running) == []
    labels.add(MODEL, *[running.clock.now] * 49)
    running.clock.advance(5)
    assert await tick(running) == []
    labels.add(MODEL, running.clock.now)
    running.clock.advance(5)
    (job_id,) = await tick(running)
    (started,) = [d for d in running.store.decisions if d["job_id"] == job_id]
    assert "50 labels since" in started["detail"]
    assert running.store.jobs[job_id]["trigger"]["evidence_since"] == (T0.isoformat())


async def test_a_performance_retrain_takes_the_onset_of_the_drift_episode_waiting_for_labels(
    tmp_path: Path,
) -> None:
    labels = FakeLabels()
    drift_onset = T0 - timedelta(seconds=5)
    running = trainer(tmp_path, policy=AWAITING, labels=labels)
    await running.deliver(onset_alert("w1", "ep-d", drift_onset))  # waits for labels
    degraded = monitor.PerformanceDegraded(
        model=ModelRef(name=MODEL, version=1),
        window=Window(id="p1"),
        metric="accuracy",
        value=0.6,
        threshold=0.75,
        labelled_rows=150,
        episode_id="ep-p",
    )
    # Its window of labelled rows began before the change.
    degraded.window.start_time.FromDatetime(drift_onset - timedelta(seconds=30))
    await running.deliver(CloudEvent.new(degraded, time=T0))

    (job,) = running.store.jobs.values()
    assert job["trigger"]["kind"] == "performance"
    assert job["trigger"]["onset"] == drift_onset.isoformat()


async def test_an_episode_waiting_when_its_versions_labels_are_found_suspect_is_held_once(
    tmp_path: Path,
) -> None:
    gate = FakeGate(
        {
            "rows": 400,
            "challenger_metrics": {"accuracy": 0.52},
            "champion_metrics": {"accuracy": 0.49},
            "paired": {"challenger_only": 60, "champion_only": 48},
            "labels": {"majority_label": "no", "majority_share": 0.51},
        }
    )
    policy = REFUSING.model_copy(update={"min_new_labels": 50, "label_wait_seconds": 10_000})
    labels = FakeLabels()
    running = trainer(
        tmp_path,
        policy=policy,
        outcome=scored(0.52, 0.49, 4),
        aliases={"champion": 4},
        gate=gate,
        labels=labels,
    )
    await running.deliver(onset_alert("w1", "ep-waits", T0))  # no labels yet: waits
    await running.deliver(episode_alert("w2", "ep-trains"))  # trains: suspect labels
    assert len(running.store.jobs) == 1
    labels.add(MODEL, *[T0 + timedelta(seconds=1)] * 60)  # the waiting one could start now

    running.clock.advance(10)
    assert await tick(running) == []
    held = running.store.decisions[-1]
    assert (held["episode_id"], held["suppression"]) == ("ep-waits", "escalated")
    decided = len(running.store.decisions)
    for _ in range(3):
        running.clock.advance(10)
        assert await tick(running) == []
    assert len(running.store.decisions) == decided  # held once, not re-decided each tick


async def test_a_restarted_trainer_follows_the_cluster_job_it_left_running_to_its_end(
    tmp_path: Path,
) -> None:
    first = trainer(tmp_path, policy=TriggerPolicy(max_concurrent=1))
    first.training.executor = FakeExecutor(None, name="kubernetes")  # reports later
    job = await manual_job(first)
    assert job["status"] == "running"
    # A new process on the same store (this host, a new process): the Job still runs on
    # the cluster.
    follower = FakeExecutor(FAILED, name="kubernetes")
    first.training.executor = follower
    first.training.owner = Owner.this_process()

    await first.training.recover()
    await first.training.wait_idle()

    assert [c.job_id for c in follower.contexts] == [job["id"]]
    after = await first.store.get_job(job["id"])
    assert after["status"] == "failed"
    assert first.events()[-1] == "failed"
