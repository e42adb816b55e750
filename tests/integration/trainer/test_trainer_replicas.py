"""Two trainer replicas on one PostgreSQL database decide on a model one at a time.

Each replica is a :class:`TrainerStore` on its own connection pool, as two processes
would be. The same drift (one window of one version) reaches both as different events
(the monitor's alert redelivered to a replica after a rebalance, say): the inbox cannot
tell them apart, the dedup key must, and only if the two decisions do not interleave.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from driftloop_bus.outbox import Outbox
from driftloop_kit.db import Database
from driftloop_kit.declarations import TriggerPolicy
from driftloop_kit.migrations import upgrade_async
from driftloop_trainer.adapters.store import TrainerStore
from driftloop_trainer.domain.jobs import JobSpec
from driftloop_trainer.domain.policy import Trigger, TriggerKind
from driftloop_trainer.entrypoints.app import MIGRATIONS

pytestmark = pytest.mark.integration

POLICY = TriggerPolicy(debounce_seconds=0, cooldown_seconds=0, max_concurrent=10)


async def test_two_replicas_start_one_job_for_one_drift_delivered_to_both(
    postgres_databases: Callable[[], str],
) -> None:
    url = postgres_databases()
    await upgrade_async(url, MIGRATIONS)
    databases = [Database(url) for _ in range(2)]
    try:
        replicas = [
            TrainerStore(database=database, outbox=Outbox(), consumer="trainer")
            for database in databases
        ]

        def alert(n: int) -> Trigger:
            return Trigger(
                kind=TriggerKind.DRIFT,
                model="churn",
                version=3,
                window="w-17",
                event_id=f"alert-{n}",
                reason="2 of 4 columns drifted",
            )

        found = await asyncio.gather(
            *(
                replicas[n % 2].decide(
                    trigger=alert(n), policy=POLICY, spec=JobSpec(), executor="local"
                )
                for n in range(8)
            )
        )
        decided = [d for d in found if d is not None]
        assert len(decided) == 8
        started = [job_id for _, job_id in decided if job_id is not None]
        assert len(started) == 1, [decision.detail for decision, _ in decided]
    finally:
        for database in databases:
            await database.dispose()
