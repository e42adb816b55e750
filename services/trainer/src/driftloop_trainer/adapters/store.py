"""The trainer store: decisions, jobs and alias moves in SQL, events through the outbox.

A decision and the job it starts are written in one transaction with the
``training.requested`` event, and with the inbox claim of the triggering event
when there is one, so a redelivered event neither decides nor starts again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from driftloop_bus.inbox import claim
from driftloop_bus.ports import OutboxPort
from driftloop_events.envelope import CloudEvent
from driftloop_kit.db import Database, lock_for_transaction
from driftloop_kit.declarations import TriggerPolicy
from driftloop_kit.errors import NotFound
from driftloop_trainer.adapters.tables import alias_moves, decisions, declarations, episodes, jobs
from driftloop_trainer.domain import events
from driftloop_trainer.domain.episodes import Episode
from driftloop_trainer.domain.gate import Verdict, verdict_dict
from driftloop_trainer.domain.jobs import JobKind, JobSpec, JobStatus, Stage, new_job_id
from driftloop_trainer.domain.leases import ActiveJob
from driftloop_trainer.domain.policy import (
    Decision,
    LabelEvidence,
    ModelState,
    Outcome,
    Suppression,
    Trigger,
    TriggerKind,
    decide,
    trigger_dict,
)


def utcnow() -> datetime:
    """Now, timezone-aware."""
    return datetime.now(UTC)


_RUNNING = JobStatus.RUNNING.value
_ACTIVE = [JobStatus.QUEUED.value, _RUNNING]


def aware(moment: datetime | None) -> datetime | None:
    """SQLite gives naive datetimes back; they were stored in UTC."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def _iso(moment: datetime | None) -> str | None:
    found = aware(moment)
    return found.isoformat().replace("+00:00", "Z") if found else None


def decision_view(row: Any) -> dict[str, Any]:
    """A decision as the REST API shows it."""
    return {
        "id": row.id,
        "model_name": row.model_name,
        "kind": row.kind,
        "outcome": row.outcome,
        "suppression": row.suppression,
        "detail": row.detail,
        "reason": row.reason,
        "dedup_key": row.dedup_key,
        "event": (
            {"id": row.event_id, "type": row.event_type, "source": row.event_source}
            if row.event_id
            else None
        ),
        "rows": row.rows,
        "job_id": row.job_id,
        "episode_id": row.episode_id,
        "decided_at": _iso(row.decided_at),
    }


def job_view(row: Any) -> dict[str, Any]:
    """A job as the REST API shows it."""
    return {
        "id": row.id,
        "model_name": row.model_name,
        "status": row.status,
        "trigger": row.trigger,
        "parameters": row.parameters,
        "executor": row.executor,
        "attempt": row.attempt,
        "requested_by": row.requested_by,
        "created_at": _iso(row.created_at),
        "started_at": _iso(row.started_at),
        "finished_at": _iso(row.finished_at),
        "run_id": row.run_id,
        "model_version": row.model_version,
        "stage": row.stage,
        "error": row.error,
        "error_type": row.error_type,
        "evaluation": row.evaluation,
        "promoted": bool(row.promoted),
        "spec": row.spec,
        "kind": row.kind,
        "result": row.result,
    }


class TrainerStore:
    """Decisions, jobs and alias moves of the trainer.

    Args:
        database: The trainer's database.
        outbox: Where ``training.*`` events are written.
        consumer: Inbox name of the trigger consumer.
    """

    def __init__(self, *, database: Database, outbox: OutboxPort, consumer: str) -> None:
        self.database = database
        self.outbox = outbox
        self.consumer = consumer

    # -- decisions -----------------------------------------------------------------

    async def decide(
        self,
        *,
        trigger: Trigger,
        policy: TriggerPolicy,
        spec: JobSpec,
        executor: str,
        event: CloudEvent[Any] | None = None,
        now: datetime | None = None,
        labels: LabelEvidence | None = None,
        owner: str | None = None,
    ) -> tuple[Decision, str | None] | None:
        """Decide on ``trigger``, record the decision and, when it starts a job, the job
        (held by ``owner``, the process that will run it).

        Returns:
            The decision and the new job's id (None when suppressed); None when
            ``event`` was handled before (a redelivery) and nothing was recorded.
        """
        now = now or utcnow()
        async with self.database.session() as session:
            # Replicas on one database decide on a model one at a time: each sees the
            # jobs, decisions and cooldowns the other recorded (one job per trigger).
            await lock_for_transaction(session, f"trainer.decide/{trigger.model}")
            # One inbox entry per model: one features.ingested event may concern several.
            inbox_name = f"{self.consumer}/{trigger.model}"
            if event is not None and not await claim(session, consumer=inbox_name, event=event):
                return None
            state = await self._state(
                session, trigger.model, policy, now, champion_alias=spec.evaluation.alias
            )
            decision = decide(trigger, state, policy, now, labels)
            job_id = new_job_id() if decision.started else None
            await session.execute(
                insert(decisions).values(
                    model_name=trigger.model,
                    kind=trigger.kind.value,
                    outcome=decision.outcome.value,
                    suppression=decision.suppression.value if decision.suppression else None,
                    detail=decision.detail,
                    reason=trigger.reason,
                    dedup_key=decision.dedup_key,
                    event_id=trigger.event_id or None,
                    event_type=trigger.event_type or None,
                    event_source=trigger.event_source or None,
                    rows=trigger.rows,
                    job_id=job_id,
                    decided_at=now,
                    episode_id=trigger.episode_id or None,
                )
            )
            if job_id is not None:
                parameters = {**spec.parameters, **trigger.parameters}
                await session.execute(
                    insert(jobs).values(
                        id=job_id,
                        model_name=trigger.model,
                        status=JobStatus.QUEUED.value,
                        trigger=trigger_dict(trigger),
                        parameters=parameters,
                        spec=spec.model_dump(mode="json"),
                        executor=executor,
                        attempt=1,
                        requested_by=trigger.requested_by,
                        created_at=now,
                        promoted=False,
                        owner=owner,
                        heartbeat_at=now,
                    )
                )
                await self.outbox.add(
                    session,
                    events.training_requested(
                        job_id=job_id, trigger=trigger, parameters=parameters, time=now
                    ),
                )
        return decision, job_id

    async def model_state(
        self, model: str, policy: TriggerPolicy, now: datetime, *, champion_alias: str
    ) -> ModelState:
        """What the trigger policy needs to know about ``model`` now."""
        async with self.database.session() as session:
            return await self._state(session, model, policy, now, champion_alias=champion_alias)

    async def note(
        self,
        *,
        trigger: Trigger,
        outcome: Outcome,
        detail: str,
        now: datetime,
        publish: tuple[CloudEvent[Any], ...] = (),
        suppression: Suppression | None = None,
    ) -> None:
        """Record a decision that starts no job (a dropped or escalated episode), with
        the events it publishes, in one transaction."""
        async with self.database.session() as session:
            await session.execute(
                insert(decisions).values(
                    model_name=trigger.model,
                    kind=trigger.kind.value,
                    outcome=outcome.value,
                    suppression=suppression.value if suppression else None,
                    detail=detail,
                    reason=trigger.reason,
                    dedup_key=trigger.episode_id or trigger.event_id,
                    event_id=trigger.event_id or None,
                    event_type=trigger.event_type or None,
                    event_source=trigger.event_source or None,
                    rows=trigger.rows,
                    job_id=None,
                    decided_at=now,
                    episode_id=trigger.episode_id or None,
                )
            )
            if publish:
                await self.outbox.add(session, *publish)

    async def episode(self, model: str, episode_id: str) -> Episode | None:
        """What the trainer decided for an episode, None for an episode it never saw."""
        async with self.database.session() as session:
            row = (
                await session.execute(
                    select(episodes).where(
                        (episodes.c.model_name == model) & (episodes.c.episode_id == episode_id)
                    )
                )
            ).first()
        return None if row is None else _episode(row)

    async def save_episode(self, episode: Episode, *, now: datetime) -> None:
        """Insert or replace an episode."""
        values = {
            "open": episode.open,
            "resolved": episode.resolved,
            "pending": dict(episode.pending) if episode.pending is not None else None,
            "not_before": episode.not_before,
            "refusals": episode.refusals,
            "escalated": episode.escalated,
            "job_ids": list(episode.job_ids),
            "updated_at": now,
        }
        key = (episodes.c.model_name == episode.model) & (
            episodes.c.episode_id == episode.episode_id
        )
        async with self.database.session() as session:
            updated = await session.execute(update(episodes).where(key).values(**values))
            if not updated.rowcount:  # type: ignore[attr-defined]
                await session.execute(
                    insert(episodes).values(
                        model_name=episode.model, episode_id=episode.episode_id, **values
                    )
                )

    async def pending_episodes(self) -> list[Episode]:
        """Open episodes with a deferred trigger."""
        async with self.database.session() as session:
            rows = (
                await session.execute(
                    select(episodes)
                    .where(
                        episodes.c.open
                        & ~episodes.c.resolved
                        & ~episodes.c.escalated
                        & episodes.c.pending.is_not(None)
                    )
                    .order_by(episodes.c.updated_at)
                )
            ).all()
        return [_episode(row) for row in rows if row.pending is not None]

    async def _state(
        self,
        session: AsyncSession,
        model: str,
        policy: TriggerPolicy,
        now: datetime,
        *,
        champion_alias: str,
    ) -> ModelState:
        # Scoring jobs neither count as running trainings nor start a cooldown.
        training_jobs = jobs.c.kind == JobKind.TRAINING.value
        active = await session.scalar(
            select(func.count())
            .select_from(jobs)
            .where(
                (jobs.c.model_name == model)
                & training_jobs
                & jobs.c.status.in_([JobStatus.QUEUED.value, JobStatus.RUNNING.value])
            )
        )
        last_started = aware(
            await session.scalar(
                select(func.max(jobs.c.created_at)).where(
                    (jobs.c.model_name == model) & training_jobs
                )
            )
        )
        last_finished = aware(
            await session.scalar(
                select(func.max(jobs.c.finished_at)).where(
                    (jobs.c.model_name == model) & training_jobs
                )
            )
        )
        since = now - timedelta(seconds=policy.dedup_seconds)
        keys = (
            await session.execute(
                select(decisions.c.dedup_key, func.max(decisions.c.decided_at))
                .where(
                    (decisions.c.model_name == model)
                    & (decisions.c.outcome == Outcome.STARTED.value)
                    & (decisions.c.decided_at >= since)
                )
                .group_by(decisions.c.dedup_key)
            )
        ).all()
        rows_query = select(func.coalesce(func.sum(decisions.c.rows), 0)).where(
            (decisions.c.model_name == model) & (decisions.c.kind == TriggerKind.NEW_DATA.value)
        )
        if last_started is not None:
            rows_query = rows_query.where(decisions.c.decided_at > last_started)
        rows = int(await session.scalar(rows_query) or 0)
        champion = await session.scalar(
            select(alias_moves.c.version)
            .where((alias_moves.c.model_name == model) & (alias_moves.c.alias == champion_alias))
            .order_by(alias_moves.c.id.desc())
            .limit(1)
        )
        return ModelState(
            active_jobs=int(active or 0),
            last_started=last_started,
            last_finished=last_finished,
            recent_keys={key: aware(seen) or now for key, seen in keys},
            rows_since_last_job=rows,
            champion_version=int(champion) if champion is not None else None,
        )

    async def list_decisions(
        self, *, model: str | None = None, outcome: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        """Latest decisions first."""
        query = select(decisions).order_by(decisions.c.id.desc()).limit(limit)
        if model:
            query = query.where(decisions.c.model_name == model)
        if outcome:
            query = query.where(decisions.c.outcome == outcome)
        async with self.database.session() as session:
            return [decision_view(row) for row in (await session.execute(query)).all()]

    # -- jobs ----------------------------------------------------------------------

    async def get_job(self, job_id: str) -> dict[str, Any]:
        """One job.

        Raises:
            NotFound: No such job.
        """
        async with self.database.session() as session:
            row = (await session.execute(select(jobs).where(jobs.c.id == job_id))).first()
        if row is None:
            raise NotFound(f"Training job {job_id!r} not found")
        found = job_view(row)
        found["log_path"] = row.log_path
        return found

    async def list_jobs(
        self,
        *,
        model: str | None = None,
        status: str | None = None,
        limit: int = 100,
        ids: Sequence[str] | None = None,
    ) -> list[dict[str, Any]]:
        """Latest jobs first; ``ids`` keeps only those jobs."""
        query = select(jobs).order_by(jobs.c.created_at.desc()).limit(limit)
        if model:
            query = query.where(jobs.c.model_name == model)
        if status:
            query = query.where(jobs.c.status == status)
        if ids is not None:
            query = query.where(jobs.c.id.in_(list(ids)))
        async with self.database.session() as session:
            return [job_view(row) for row in (await session.execute(query)).all()]

    async def mark_running(self, job_id: str, *, log_path: str) -> dict[str, Any]:
        """The job starts: ``training.started``."""
        now = utcnow()
        async with self.database.session() as session:
            row = (await session.execute(select(jobs).where(jobs.c.id == job_id))).one()
            await session.execute(
                update(jobs)
                .where(jobs.c.id == job_id)
                .values(status=JobStatus.RUNNING.value, started_at=now, log_path=log_path)
            )
            if row.kind != JobKind.TRAINING.value:
                return job_view(row)  # a scoring job: no training.* event
            await self.outbox.add(
                session,
                events.training_started(
                    job_id=job_id, model=row.model_name, attempt=row.attempt, time=now
                ),
            )
            return job_view(row)

    async def mark_failed(
        self,
        job_id: str,
        *,
        stage: Stage,
        error: str,
        error_type: str,
        run_id: str = "",
        model_version: int | None = None,
        evaluation: Mapping[str, Any] | None = None,
    ) -> None:
        """The job failed: ``training.failed``; no alias moved."""
        now = utcnow()
        async with self.database.session() as session:
            row = (await session.execute(select(jobs).where(jobs.c.id == job_id))).one()
            await session.execute(
                update(jobs)
                .where(jobs.c.id == job_id)
                .values(
                    status=JobStatus.FAILED.value,
                    finished_at=now,
                    stage=stage.value,
                    error=error[:4000],
                    error_type=error_type,
                    run_id=run_id or None,
                    model_version=model_version,
                    evaluation=dict(evaluation) if evaluation else None,
                )
            )
            if row.kind != JobKind.TRAINING.value:
                return  # a scoring job: no training.* event
            await self.outbox.add(
                session,
                events.training_failed(
                    job_id=job_id,
                    model=row.model_name,
                    run_id=run_id,
                    stage=stage,
                    error=error[:4000],
                    error_type=error_type,
                    attempt=row.attempt,
                    time=now,
                ),
            )

    async def mark_completed(
        self,
        job_id: str,
        *,
        event_id: str,
        run_id: str,
        model_version: int,
        verdict: Verdict,
        promoted: bool,
        alias: str,
        moves: list[dict[str, Any]],
    ) -> None:
        """The job registered and evaluated a version: ``training.completed`` (id ``event_id``).

        ``moves`` are the alias moves made on promotion, recorded with the job.
        """
        now = utcnow()
        async with self.database.session() as session:
            row = (await session.execute(select(jobs).where(jobs.c.id == job_id))).one()
            await session.execute(
                update(jobs)
                .where(jobs.c.id == job_id)
                .values(
                    status=JobStatus.SUCCEEDED.value,
                    finished_at=now,
                    run_id=run_id,
                    model_version=model_version,
                    evaluation=verdict_dict(verdict),
                    promoted=promoted,
                    completed_event_id=event_id,
                )
            )
            for move in moves:
                await session.execute(
                    insert(alias_moves).values(**move, job_id=job_id, moved_at=now)
                )
            await self.outbox.add(
                session,
                events.training_completed(
                    event_id=event_id,
                    job_id=job_id,
                    model=row.model_name,
                    run_id=run_id,
                    model_version=model_version,
                    verdict=verdict,
                    promoted=promoted,
                    alias=alias,
                    start_time=aware(row.started_at) or now,
                    time=now,
                ),
            )

    async def create_score_job(
        self,
        *,
        model: str,
        parameters: Mapping[str, str],
        spec: JobSpec,
        executor: str,
        requested_by: str,
        now: datetime | None = None,
    ) -> str:
        """Queue a job of kind ``score``; its id. It publishes no ``training.*`` event."""
        job_id = new_job_id()
        async with self.database.session() as session:
            await session.execute(
                insert(jobs).values(
                    id=job_id,
                    model_name=model,
                    status=JobStatus.QUEUED.value,
                    trigger={"kind": JobKind.SCORE.value, "reason": "batch scoring"},
                    parameters=dict(parameters),
                    spec=spec.model_dump(mode="json"),
                    executor=executor,
                    attempt=1,
                    requested_by=requested_by,
                    created_at=now or utcnow(),
                    promoted=False,
                    kind=JobKind.SCORE.value,
                )
            )
        return job_id

    async def mark_scored(self, job_id: str, *, result: Mapping[str, Any]) -> None:
        """A job of kind ``score`` succeeded: what it did is its ``result``."""
        async with self.database.session() as session:
            await session.execute(
                update(jobs)
                .where(jobs.c.id == job_id)
                .values(
                    status=JobStatus.SUCCEEDED.value,
                    finished_at=utcnow(),
                    result=dict(result),
                )
            )

    async def record_moves(self, moves: list[dict[str, Any]]) -> None:
        """Alias moves made outside a job (a rollback)."""
        now = utcnow()
        async with self.database.session() as session:
            for move in moves:
                await session.execute(insert(alias_moves).values(**move, moved_at=now))

    async def list_moves(self, model: str, *, limit: int | None = None) -> list[dict[str, Any]]:
        """A model's alias moves made by the trainer, latest first (the ``limit`` latest)."""
        query = (
            select(alias_moves)
            .where(alias_moves.c.model_name == model)
            .order_by(alias_moves.c.id.desc())
        )
        if limit is not None:
            query = query.limit(limit)
        async with self.database.session() as session:
            rows = (await session.execute(query)).all()
        return [
            {
                "alias": r.alias,
                "version": r.version,
                "previous_version": r.previous_version,
                "action": r.action,
                "job_id": r.job_id,
                "moved_at": _iso(r.moved_at),
            }
            for r in rows
        ]

    # -- model documents -----------------------------------------------------------

    async def declare(
        self, *, model: str, document: dict[str, Any], digest: str, by: str, now: datetime
    ) -> tuple[int, bool]:
        """Store a model's document as its next revision and publish ``model.declared``,
        in one transaction; the same document as the latest revision stores nothing.

        Returns:
            The revision, and whether it is new.
        """
        async with self.database.session() as session:
            latest = (
                await session.execute(
                    select(declarations.c.revision, declarations.c.digest)
                    .where(declarations.c.model_name == model)
                    .order_by(declarations.c.revision.desc())
                    .limit(1)
                    .with_for_update()
                )
            ).first()
            if latest is not None and latest.digest == digest:
                return int(latest.revision), False
            revision = 1 if latest is None else int(latest.revision) + 1
            await session.execute(
                insert(declarations).values(
                    model_name=model,
                    revision=revision,
                    digest=digest,
                    document=document,
                    applied_by=by,
                    applied_at=now,
                )
            )
            await self.outbox.add(
                session,
                events.model_declared(
                    model=model,
                    revision=revision,
                    document=document,
                    digest=digest,
                    by=by,
                    time=now,
                ),
            )
        return revision, True

    async def declarations(self, model: str | None = None) -> list[dict[str, Any]]:
        """Every revision of ``model``'s document (of every model), latest first."""
        query = select(declarations).order_by(
            declarations.c.model_name, declarations.c.revision.desc()
        )
        if model is not None:
            query = query.where(declarations.c.model_name == model)
        async with self.database.session() as session:
            rows = (await session.execute(query)).all()
        return [
            {
                "name": row.model_name,
                "revision": row.revision,
                "digest": row.digest,
                "applied_by": row.applied_by,
                "applied_at": _iso(aware(row.applied_at)),
                "document": row.document,
            }
            for row in rows
        ]

    async def latest_declarations(self) -> list[dict[str, Any]]:
        """The latest revision of every declared model's document."""
        seen: set[str] = set()
        latest = []
        for found in await self.declarations():
            if found["name"] not in seen:
                seen.add(found["name"])
                latest.append(found)
        return latest

    async def active_jobs(self) -> list[ActiveJob]:
        """Jobs some trainer process holds: local ones queued or running, and those
        running on an executor they outlive (a cluster), with who holds each."""
        async with self.database.session() as session:
            rows = (
                await session.execute(
                    select(
                        jobs.c.id,
                        jobs.c.executor,
                        jobs.c.owner,
                        jobs.c.heartbeat_at,
                        jobs.c.created_at,
                    ).where(
                        (
                            jobs.c.status.in_([JobStatus.QUEUED.value, JobStatus.RUNNING.value])
                            & (jobs.c.executor == "local")
                        )
                        | (
                            (jobs.c.status == JobStatus.RUNNING.value)
                            & (jobs.c.executor != "local")
                        )
                    )
                )
            ).all()
        return [
            ActiveJob(
                id=row.id,
                owner=row.owner,
                heartbeat_at=aware(row.heartbeat_at),
                created_at=aware(row.created_at) or utcnow(),
                local=row.executor == "local",
            )
            for row in rows
        ]

    async def claim(self, job: ActiveJob, *, owner: str, now: datetime) -> bool:
        """Take ``job`` over from its owner, unless another process took it since it was
        read (compare-and-set on its owner and last renewal); whether this one did."""
        async with self.database.session() as session:
            found = await session.execute(
                update(jobs)
                .where(
                    (jobs.c.id == job.id)
                    & (jobs.c.owner.is_(None) if job.owner is None else jobs.c.owner == job.owner)
                    & (
                        jobs.c.heartbeat_at.is_(None)
                        if job.heartbeat_at is None
                        else jobs.c.heartbeat_at == job.heartbeat_at
                    )
                )
                .values(owner=owner, heartbeat_at=now)
            )
            return bool(cast(CursorResult[Any], found).rowcount)

    async def renew_leases(self, job_ids: list[str], *, owner: str, now: datetime) -> None:
        """``owner`` runs ``job_ids`` (and still does)."""
        if not job_ids:
            return
        async with self.database.session() as session:
            await session.execute(
                update(jobs).where(jobs.c.id.in_(job_ids)).values(owner=owner, heartbeat_at=now)
            )


def _episode(row: Any) -> Episode:
    return Episode(
        model=row.model_name,
        episode_id=row.episode_id,
        open=bool(row.open),
        resolved=bool(row.resolved),
        pending=row.pending,
        not_before=aware(row.not_before),
        refusals=int(row.refusals),
        escalated=bool(row.escalated),
        job_ids=tuple(row.job_ids or ()),
    )
