"""The promotion step on a real database, with a fake registry and executor (no broker)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from driftloop_bus.outbox import Outbox
from driftloop_bus.tables import outbox
from driftloop_events.envelope import from_record
from driftloop_kit.db import Database
from driftloop_kit.declarations import TriggerPolicy
from driftloop_kit.migrations import upgrade_async
from driftloop_trainer.adapters.store import TrainerStore
from driftloop_trainer.domain.jobs import ModelConfig
from driftloop_trainer.domain.policy import Trigger, TriggerKind
from driftloop_trainer.entrypoints.app import MIGRATIONS
from driftloop_trainer.service_layer.training import Endpoints, Training
from tests.fakes.trainer import FakeExecutor, FakeRegistry

pytestmark = pytest.mark.integration

MODEL = "iris"
OPEN = TriggerPolicy(debounce_seconds=0, cooldown_seconds=0, max_concurrent=10)


def outcome(
    accuracy: float, champion: float | None, champion_version: int | None
) -> dict[str, Any]:
    return {
        "ok": True,
        "run_id": "a" * 32,
        "model_version": 5,
        "metrics": {"accuracy": accuracy},
        "champion_metrics": None if champion is None else {"accuracy": champion},
        "champion_version": champion_version,
        "evaluation_rows": 40,
        # The rows behind the scores, for the gate's paired test.
        "paired": None
        if champion is None
        else {
            "challenger_only": max(0, round((accuracy - champion) * 40)),
            "champion_only": max(0, round((champion - accuracy) * 40)),
        },
    }


async def run_one(
    database_url: str, tmp_path: Path, registry: FakeRegistry, result: dict[str, Any]
) -> tuple[dict[str, Any], list[Any]]:
    await upgrade_async(database_url, MIGRATIONS)
    database = Database(database_url)
    try:
        store = TrainerStore(database=database, outbox=Outbox(), consumer="test")
        training = Training(
            models={MODEL: ModelConfig(policy=OPEN)},
            store=store,
            registry=registry,
            executor=FakeExecutor(result),
            endpoints=Endpoints("http://t", "http://r", "http://f", "exp", tmp_path),
        )
        found = await training.submit(
            Trigger(kind=TriggerKind.MANUAL, model=MODEL, window=str(tmp_path))
        )
        assert found is not None
        decision, job_id = found
        assert job_id is not None, decision.detail
        await training.wait_idle()
        job = await store.get_job(job_id)
        async with database.session() as session:
            rows = (await session.execute(select(outbox).order_by(outbox.c.id))).all()
        events = [
            from_record(r.value, [(k, v.encode()) for k, v in r.headers])
            for r in rows
            if from_record(r.value, [(k, v.encode()) for k, v in r.headers]).key == MODEL
        ]
        return job, [e for e in events if e.data.job_id == job_id]
    finally:
        await database.dispose()


async def test_a_winner_moves_previous_then_champion_caused_by_its_completed_event(
    database_url: str, tmp_path: Path
) -> None:
    registry = FakeRegistry({"champion": 4, "previous": 2})
    job, events = await run_one(database_url, tmp_path, registry, outcome(0.97, 0.70, 4))
    assert (job["status"], job["promoted"]) == ("succeeded", True)
    completed = events[-1]
    assert completed.type == "driftloop.trainer.training.completed"
    assert completed.data.promoted is True
    cause = {"id": completed.id, "type": completed.type, "source": "/driftloop/trainer"}
    assert registry.moves == [("previous", 4, cause), ("champion", 5, cause)]
    assert [e.type.rsplit(".", 1)[-1] for e in events] == ["requested", "started", "completed"]


async def test_a_winner_is_not_promoted_when_the_champion_moved_while_it_ran(
    database_url: str, tmp_path: Path
) -> None:
    registry = FakeRegistry({"champion": 6})  # someone promoted v6 meanwhile
    job, events = await run_one(database_url, tmp_path, registry, outcome(0.97, 0.70, 4))
    assert (job["status"], job["promoted"]) == ("succeeded", False)
    assert "moved to version 6" in job["evaluation"]["reason"]
    assert registry.moves == []
    assert events[-1].data.promoted is False


async def test_a_registry_failure_during_promotion_fails_the_job_in_that_stage(
    database_url: str, tmp_path: Path
) -> None:
    registry = FakeRegistry()
    registry.broken = True
    job, events = await run_one(database_url, tmp_path, registry, outcome(0.97, None, None))
    assert (job["status"], job["stage"]) == ("failed", "promotion")
    assert "registry unreachable" in job["error"]
    failed = events[-1]
    assert failed.type == "driftloop.trainer.training.failed"
    assert failed.data.error_type == "ConnectionError"
