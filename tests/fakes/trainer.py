"""Fakes of the trainer's ports (``driftloop_trainer.service_layer.ports``).

In memory: the store keeps decisions, jobs and alias moves in lists and dicts and
stages its ``training.*`` events in a :class:`~tests.fakes.common.FakeOutbox`, so a use
case's effects are read straight off the fakes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from driftloop_bus.ports import OutboxPort
from driftloop_events.envelope import CloudEvent
from driftloop_kit.declarations import TriggerPolicy
from driftloop_kit.errors import Conflict, NotFound
from driftloop_trainer.domain import events
from driftloop_trainer.domain.episodes import Episode
from driftloop_trainer.domain.gate import Verdict, verdict_dict
from driftloop_trainer.domain.jobs import JobContext, JobSpec, JobStatus, Stage, new_job_id
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
from tests.fakes.common import FakeDatabase, FakeOutbox

__all__ = ["FakeExecutor", "FakeRegistry", "FakeTrainerStore"]

_ACTIVE = (JobStatus.QUEUED.value, JobStatus.RUNNING.value)


def _now() -> datetime:
    return datetime.now(UTC)


class FakeTrainerStore:
    """The trainer's tables in lists (a ``TrainerStorePort``); time read from ``clock``."""

    def __init__(
        self, *, outbox: OutboxPort | None = None, clock: Callable[[], datetime] = _now
    ) -> None:
        self.outbox: OutboxPort = outbox if outbox is not None else FakeOutbox()
        self.clock = clock
        self.database = FakeDatabase()
        self.decisions: list[dict[str, Any]] = []
        self.jobs: dict[str, dict[str, Any]] = {}
        self.moves: list[dict[str, Any]] = []
        self.claimed: set[tuple[str, str]] = set()
        self.episodes: dict[tuple[str, str], Episode] = {}
        #: Every model document applied, oldest first.
        self.documents: list[dict[str, Any]] = []

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
        now = now or self.clock()
        if event is not None:
            claim = (trigger.model, event.id)
            if claim in self.claimed:
                return None
            self.claimed.add(claim)
        state = self._state(trigger.model, policy, now, champion_alias=spec.evaluation.alias)
        decision = decide(trigger, state, policy, now, labels)
        job_id = new_job_id() if decision.started else None
        self.decisions.append(
            {
                "model_name": trigger.model,
                "kind": trigger.kind.value,
                "outcome": decision.outcome.value,
                "suppression": decision.suppression.value if decision.suppression else None,
                "detail": decision.detail,
                "dedup_key": decision.dedup_key,
                "event_id": trigger.event_id or None,
                "rows": trigger.rows,
                "job_id": job_id,
                "episode_id": trigger.episode_id or None,
                "decided_at": now,
            }
        )
        if job_id is not None:
            parameters = {**spec.parameters, **trigger.parameters}
            self.jobs[job_id] = {
                "id": job_id,
                "model_name": trigger.model,
                "status": JobStatus.QUEUED.value,
                "trigger": trigger_dict(trigger),
                "parameters": parameters,
                "spec": spec.model_dump(mode="json"),
                "executor": executor,
                "attempt": 1,
                "created_at": now,
                "started_at": None,
                "finished_at": None,
                "promoted": False,
                "log_path": None,
                "owner": owner,
                "heartbeat_at": now,
            }
            await self._publish(
                events.training_requested(
                    job_id=job_id, trigger=trigger, parameters=parameters, time=now
                )
            )
        return decision, job_id

    async def model_state(
        self, model: str, policy: TriggerPolicy, now: datetime, *, champion_alias: str
    ) -> ModelState:
        return self._state(model, policy, now, champion_alias=champion_alias)

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
        self.decisions.append(
            {
                "model_name": trigger.model,
                "kind": trigger.kind.value,
                "outcome": outcome.value,
                "suppression": suppression.value if suppression else None,
                "detail": detail,
                "dedup_key": trigger.episode_id or trigger.event_id,
                "event_id": trigger.event_id or None,
                "rows": trigger.rows,
                "job_id": None,
                "episode_id": trigger.episode_id or None,
                "decided_at": now,
            }
        )
        for event in publish:
            await self._publish(event)

    async def episode(self, model: str, episode_id: str) -> Episode | None:
        return self.episodes.get((model, episode_id))

    async def save_episode(self, episode: Episode, *, now: datetime) -> None:
        self.episodes[episode.model, episode.episode_id] = episode

    async def pending_episodes(self) -> list[Episode]:
        return [
            e
            for e in self.episodes.values()
            if e.open and not e.resolved and not e.escalated and e.pending is not None
        ]

    async def declare(
        self, *, model: str, document: dict[str, Any], digest: str, by: str, now: datetime
    ) -> tuple[int, bool]:
        mine = [found for found in self.documents if found["name"] == model]
        if mine and mine[-1]["digest"] == digest:
            return mine[-1]["revision"], False
        revision = len(mine) + 1
        self.documents.append(
            {"name": model, "revision": revision, "digest": digest, "document": document}
        )
        return revision, True

    async def latest_declarations(self) -> list[dict[str, Any]]:
        latest: dict[str, dict[str, Any]] = {}
        for found in self.documents:
            latest[found["name"]] = found
        return list(latest.values())

    def _state(
        self, model: str, policy: TriggerPolicy, now: datetime, *, champion_alias: str
    ) -> ModelState:
        jobs = [
            job
            for job in self.jobs.values()
            if job["model_name"] == model and job.get("kind") != "score"  # as the store
        ]
        last_started = max((job["created_at"] for job in jobs), default=None)
        finished = [job["finished_at"] for job in jobs if job["finished_at"] is not None]
        since = now - timedelta(seconds=policy.dedup_seconds)
        mine = [d for d in self.decisions if d["model_name"] == model]
        keys: dict[str, datetime] = {}
        for d in mine:
            if d["outcome"] == Outcome.STARTED.value and d["decided_at"] >= since:
                keys[d["dedup_key"]] = max(d["decided_at"], keys.get(d["dedup_key"], since))
        rows = sum(
            d["rows"] or 0
            for d in mine
            if d["kind"] == TriggerKind.NEW_DATA.value
            and (last_started is None or d["decided_at"] > last_started)
        )
        champions = [
            m["version"]
            for m in self.moves
            if m["model_name"] == model and m["alias"] == champion_alias
        ]
        return ModelState(
            active_jobs=sum(1 for job in jobs if job["status"] in _ACTIVE),
            last_started=last_started,
            last_finished=max(finished, default=None),
            recent_keys=keys,
            rows_since_last_job=rows,
            champion_version=champions[-1] if champions else None,
        )

    async def get_job(self, job_id: str) -> dict[str, Any]:
        if job_id not in self.jobs:
            raise NotFound(f"Training job {job_id!r} not found")
        return dict(self.jobs[job_id])

    async def mark_running(self, job_id: str, *, log_path: str) -> dict[str, Any]:
        job = self.jobs[job_id]
        before = dict(job)
        now = self.clock()
        job.update(status=JobStatus.RUNNING.value, started_at=now, log_path=log_path)
        if job.get("kind") == "score":
            return before  # a scoring job: no training.* event
        await self._publish(
            events.training_started(
                job_id=job_id, model=job["model_name"], attempt=job["attempt"], time=now
            )
        )
        return before

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
        job = self.jobs[job_id]
        now = self.clock()
        job.update(
            status=JobStatus.FAILED.value,
            finished_at=now,
            stage=stage.value,
            error=error,
            error_type=error_type,
            run_id=run_id or None,
            model_version=model_version,
        )
        if job.get("kind") == "score":
            return  # a scoring job: no training.* event
        await self._publish(
            events.training_failed(
                job_id=job_id,
                model=job["model_name"],
                run_id=run_id,
                stage=stage,
                error=error,
                error_type=error_type,
                attempt=job["attempt"],
                time=now,
            )
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
        job = self.jobs[job_id]
        now = self.clock()
        job.update(
            status=JobStatus.SUCCEEDED.value,
            finished_at=now,
            run_id=run_id,
            model_version=model_version,
            evaluation=verdict_dict(verdict),
            promoted=promoted,
        )
        self.moves.extend({**move, "job_id": job_id} for move in moves)
        await self._publish(
            events.training_completed(
                event_id=event_id,
                job_id=job_id,
                model=job["model_name"],
                run_id=run_id,
                model_version=model_version,
                verdict=verdict,
                promoted=promoted,
                alias=alias,
                start_time=job["started_at"] or now,
                time=now,
            )
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
        job_id = new_job_id()
        self.jobs[job_id] = {
            "id": job_id,
            "model_name": model,
            "status": JobStatus.QUEUED.value,
            "trigger": {"kind": "score", "reason": "batch scoring"},
            "parameters": dict(parameters),
            "spec": spec.model_dump(mode="json"),
            "executor": executor,
            "attempt": 1,
            "requested_by": requested_by,
            "created_at": now or self.clock(),
            "finished_at": None,
            "kind": "score",
            "result": None,
        }
        return job_id

    async def mark_scored(self, job_id: str, *, result: Mapping[str, Any]) -> None:
        self.jobs[job_id].update(
            status=JobStatus.SUCCEEDED.value, finished_at=self.clock(), result=dict(result)
        )

    async def record_moves(self, moves: list[dict[str, Any]]) -> None:
        self.moves.extend(moves)

    async def active_jobs(self) -> list[ActiveJob]:
        return [
            ActiveJob(
                id=job["id"],
                owner=job.get("owner"),
                heartbeat_at=job.get("heartbeat_at"),
                created_at=job["created_at"],
                local=job["executor"] == "local",
            )
            for job in self.jobs.values()
            if (job["status"] in _ACTIVE and job["executor"] == "local")
            or (job["status"] == "running" and job["executor"] != "local")
        ]

    async def claim(self, job: ActiveJob, *, owner: str, now: datetime) -> bool:
        found = self.jobs[job.id]
        if (found.get("owner"), found.get("heartbeat_at")) != (job.owner, job.heartbeat_at):
            return False
        found.update(owner=owner, heartbeat_at=now)
        return True

    async def renew_leases(self, job_ids: list[str], *, owner: str, now: datetime) -> None:
        for job_id in job_ids:
            self.jobs[job_id].update(owner=owner, heartbeat_at=now)

    async def _publish(self, event: CloudEvent[Any]) -> None:
        async with self.database.session() as session:
            await self.outbox.add(session, event)


class FakeRegistry:
    """Aliases in a dict (an ``AliasRegistryPort``); moves recorded; a move can be made to fail."""

    def __init__(self, aliases: dict[str, int] | None = None) -> None:
        self.aliases = dict(aliases or {})
        self.moves: list[tuple[str, int, dict[str, str] | None]] = []
        self.broken = False
        # Another decider's promotion, landing between a read and this process's move.
        self.moved_meanwhile: int | None = None

    async def alias_version(self, name: str, alias: str) -> int | None:
        return self.aliases.get(alias)

    async def promote(
        self,
        name: str,
        alias: str,
        version: int,
        *,
        expected: int | None,
        previous_alias: str | None = None,
        cause: dict[str, str] | None = None,
    ) -> None:
        if self.broken:
            raise ConnectionError("registry unreachable")
        if self.moved_meanwhile is not None:
            self.aliases[alias], self.moved_meanwhile = self.moved_meanwhile, None
        current = self.aliases.get(alias)
        if current != expected:
            raise Conflict(f"alias {alias!r} points to {current}, not {expected}")
        if current == version:
            return
        if previous_alias is not None and current is not None:
            self.aliases[previous_alias] = current
            self.moves.append((previous_alias, current, cause))
        self.aliases[alias] = version
        self.moves.append((alias, version, cause))


class FakeGate:
    """The trainer's own scoring, answering what it was given (a ``GateScoringPort``)."""

    def __init__(self, answer: dict[str, Any]) -> None:
        self.answer: dict[str, Any] = {
            "challenger_metrics": {},
            "champion_metrics": None,
            "paired": None,
        }
        self.answer.update(answer)
        self.calls: list[dict[str, Any]] = []

    async def start(self) -> None:
        """Nothing to prepare."""

    async def close(self) -> None:
        """Nothing to release."""

    async def score(
        self,
        context: JobContext,
        *,
        challenger: int,
        champion: int | None,
        holdout: Mapping[str, Any] | None,
        since: datetime,
    ) -> dict[str, Any]:
        self.calls.append(
            {"challenger": challenger, "champion": champion, "holdout": holdout, "since": since}
        )
        return dict(self.answer)


class FakeExecutor:
    """Returns the outcome it was given, as a job would have (an ``ExecutorPort``)."""

    name = "local"

    def __init__(self, outcome: dict[str, Any] | None, *, name: str = "local") -> None:
        self.name = name
        self.outcome = outcome
        self.contexts: list[JobContext] = []

    def log_path(self, context: JobContext) -> Path:
        return Path(context.work_dir) / "job.log"

    async def follow(self, context: JobContext) -> dict[str, Any] | None:
        return await self.run(context)

    async def cancel(self, job_id: str) -> bool:
        return False

    async def run(self, context: JobContext) -> dict[str, Any] | None:
        self.contexts.append(context)
        return self.outcome

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass


class FakeLabels:
    """A label store: the event times of each model's labels."""

    def __init__(self) -> None:
        self.times: dict[str, list[datetime]] = {}
        self.calls = 0

    def add(self, model: str, *times: datetime) -> None:
        self.times.setdefault(model, []).extend(times)

    async def count(self, model: str, *, since: datetime, at_least: int) -> int:
        self.calls += 1
        return min(at_least, sum(1 for t in self.times.get(model, []) if t >= since))


class FakeEvidence:
    """What jobs did, as the registry and tracking would hold it (a ``ResultEvidencePort``)."""

    def __init__(self) -> None:
        self.versions: dict[tuple[str, int], str] = {}
        self.metrics: dict[str, dict[str, float]] = {}

    def record(self, name: str, version: int, run_id: str, metrics: dict[str, float]) -> None:
        self.versions[(name, version)] = run_id
        self.metrics[run_id] = dict(metrics)

    async def version_run(self, name: str, version: int) -> str | None:
        return self.versions.get((name, version))

    async def run_metrics(self, run_id: str) -> dict[str, float] | None:
        return self.metrics.get(run_id)
