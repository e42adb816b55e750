"""Two trainer replicas on one PostgreSQL database: they decide on a model one at a
time, and one fails the other's local job only once the other stopped holding it.

Each replica is a :class:`TrainerStore` on its own connection pool, as two processes
would be. The same drift (one window of one version) reaches both as different events
(the monitor's alert redelivered to a replica after a rebalance, say): the inbox cannot
tell them apart, the dedup key must, and only if the two decisions do not interleave.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from driftloop_bus.outbox import Outbox
from driftloop_kit.db import Database
from driftloop_kit.declarations import TriggerPolicy
from driftloop_kit.migrations import upgrade_async
from driftloop_trainer.adapters.store import TrainerStore
from driftloop_trainer.domain.jobs import JobSpec, ModelConfig
from driftloop_trainer.domain.leases import Owner
from driftloop_trainer.domain.policy import Trigger, TriggerKind
from driftloop_trainer.entrypoints.app import MIGRATIONS
from driftloop_trainer.service_layer.training import Endpoints, Training
from tests.fakes.trainer import FakeExecutor, FakeRegistry

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


async def test_a_replica_fails_another_replicas_job_only_once_its_lease_lapsed(
    postgres_databases: Callable[[], str], tmp_path: Path
) -> None:
    url = postgres_databases()
    await upgrade_async(url, MIGRATIONS)
    databases = [Database(url) for _ in range(2)]
    clock = [datetime(2026, 12, 4, 12, 0, tzinfo=UTC)]
    try:
        a, b = (
            Training(
                models={"churn": ModelConfig(policy=POLICY)},
                store=TrainerStore(database=database, outbox=Outbox(), consumer="trainer"),
                registry=FakeRegistry(),
                executor=FakeExecutor({"ok": True}),
                endpoints=Endpoints("http://t", "http://r", "http://f", "exp", tmp_path),
                clock=lambda: clock[0],
                lease_seconds=60,
            )
            for database in databases
        )
        a.owner = Owner("trainer-a", 7, "aaaa")  # two hosts, as two pods would be
        b.owner = Owner("trainer-b", 7, "bbbb")
        # A decided and holds a job (its process is busy with it).
        found = await a.store.decide(
            trigger=Trigger(kind=TriggerKind.MANUAL, model="churn", window="w"),
            policy=POLICY,
            spec=JobSpec(),
            executor="local",
            now=clock[0],
            owner=str(a.owner),
        )
        assert found is not None
        job_id = found[1]
        assert job_id is not None
        a._mine.add(job_id)

        clock[0] += timedelta(seconds=50)
        await a.keep_leases()  # A renews its hold
        await b.recover()  # B starts: A's job is alive
        assert (await b.store.get_job(job_id))["status"] == "queued"

        clock[0] += timedelta(seconds=59)
        await b.keep_leases()  # 59 s since A's renewal: within the lease
        assert (await b.store.get_job(job_id))["status"] == "queued"

        clock[0] += timedelta(seconds=2)  # A went silent: its lease lapsed
        await b.keep_leases()
        failed = await b.store.get_job(job_id)
        assert (failed["status"], failed["error_type"]) == ("failed", "Interrupted")
    finally:
        for database in databases:
            await database.dispose()


async def test_of_two_replicas_taking_over_a_lapsed_job_exactly_one_gets_it(
    postgres_databases: Callable[[], str],
) -> None:
    url = postgres_databases()
    await upgrade_async(url, MIGRATIONS)
    databases = [Database(url) for _ in range(2)]
    try:
        stores = [
            TrainerStore(database=database, outbox=Outbox(), consumer="trainer")
            for database in databases
        ]
        then = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
        found = await stores[0].decide(
            trigger=Trigger(kind=TriggerKind.MANUAL, model="churn", window="w"),
            policy=POLICY,
            spec=JobSpec(),
            executor="kubernetes",
            now=then,
            owner="trainer-gone/7/dead",
        )
        assert found is not None
        assert found[1] is not None
        await stores[0].mark_running(found[1], log_path="job.log")
        (job,) = await stores[0].active_jobs()
        assert not job.local
        claims = await asyncio.gather(
            *(
                store.claim(job, owner=f"trainer-{n}/1/aaaa", now=then + timedelta(minutes=5))
                for n, store in enumerate(stores)
            )
        )
        assert sorted(claims) == [False, True]
    finally:
        for database in databases:
            await database.dispose()
