"""What the trainer's use cases need of the world, one ``Protocol`` per port.

The adapters fit them structurally (:class:`~driftloop_trainer.adapters.store.TrainerStore`,
:class:`~driftloop_trainer.adapters.registry.RegistryClient`, the executors of
:mod:`driftloop_trainer.adapters.executors`), and so do the fakes of
``tests/fakes/trainer.py``, checked by mypy.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from driftloop_events.envelope import CloudEvent
from driftloop_kit.declarations import TriggerPolicy
from driftloop_trainer.domain.episodes import Episode
from driftloop_trainer.domain.gate import Verdict
from driftloop_trainer.domain.jobs import JobContext, JobSpec, Stage
from driftloop_trainer.domain.leases import ActiveJob
from driftloop_trainer.domain.policy import (
    Decision,
    LabelEvidence,
    ModelState,
    Outcome,
    Suppression,
    Trigger,
)

__all__ = [
    "AliasRegistryPort",
    "ExecutorPort",
    "GateScoringPort",
    "ResultEvidencePort",
    "TrainerStorePort",
]


class TrainerStorePort(Protocol):
    """Decisions, jobs and alias moves; every change publishes its ``training.*`` event."""

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
        """Decide on ``trigger`` by ``policy`` (and the labels it waits for) and record the
        decision, and the job it starts (held by ``owner``).

        Claims ``event`` in the same transaction, so a redelivery decides nothing.

        Returns:
            The decision and the new job's id (None when suppressed); None when
            ``event`` was handled before and nothing was recorded.
        """

    async def get_job(self, job_id: str) -> dict[str, Any]:
        """One job (with its ``log_path``).

        Raises:
            NotFound: No such job.
        """

    async def mark_running(self, job_id: str, *, log_path: str) -> dict[str, Any]:
        """The job starts: ``training.started``."""

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
        """The job failed in ``stage``: ``training.failed``."""

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
        """The job registered and evaluated a version: ``training.completed`` (id ``event_id``),
        recorded with the alias ``moves`` of its promotion."""

    async def record_moves(self, moves: list[dict[str, Any]]) -> None:
        """Alias moves made outside a job (a rollback)."""

    async def active_jobs(self) -> list[ActiveJob]:
        """Local jobs queued or running and cluster jobs running, with who holds each."""

    async def claim(self, job: ActiveJob, *, owner: str, now: datetime) -> bool:
        """Take ``job`` over unless another process did since it was read."""

    async def renew_leases(self, job_ids: list[str], *, owner: str, now: datetime) -> None:
        """``owner`` still runs ``job_ids``."""

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
        """Queue a job of kind ``score`` (no ``training.*`` event); its id."""
        ...

    async def mark_scored(self, job_id: str, *, result: Mapping[str, Any]) -> None:
        """A job of kind ``score`` succeeded with ``result``."""

    async def model_state(
        self, model: str, policy: TriggerPolicy, now: datetime, *, champion_alias: str
    ) -> ModelState:
        """What the trigger policy needs to know about ``model`` now."""

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
        """Record a decision that starts no job, with the events it publishes."""

    async def episode(self, model: str, episode_id: str) -> Episode | None:
        """What the trainer decided for an episode (None: never seen)."""

    async def save_episode(self, episode: Episode, *, now: datetime) -> None:
        """Insert or replace an episode."""

    async def pending_episodes(self) -> list[Episode]:
        """Open episodes with a deferred trigger."""

    async def declare(
        self, *, model: str, document: dict[str, Any], digest: str, by: str, now: datetime
    ) -> tuple[int, bool]:
        """Store a model's document as its next revision and publish ``model.declared``
        (nothing when it is the latest revision's); the revision, and whether it is new."""

    async def latest_declarations(self) -> list[dict[str, Any]]:
        """The latest revision of every model's document (``name``, ``revision``,
        ``document`` ...)."""


class AliasRegistryPort(Protocol):
    """The registry, for the gate: who holds an alias, and moving it."""

    async def alias_version(self, name: str, alias: str) -> int | None:
        """The version ``alias`` names, or None when the model or alias does not exist."""

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
        """Point ``alias`` at ``version`` and ``previous_alias`` at the version it left,
        in one registry transaction, only if ``alias`` points to ``expected`` (None: no
        version); ``cause`` is the event that caused the move.

        Raises:
            Conflict: ``alias`` no longer points to ``expected``; nothing moved.
        """


class GateScoringPort(Protocol):
    """The trainer's own scoring of a challenger and the champion."""

    async def start(self) -> None:
        """Prepare (the service is starting)."""

    async def close(self) -> None:
        """Release what :meth:`start` prepared."""

    async def score(
        self,
        context: JobContext,
        *,
        challenger: int,
        champion: int | None,
        holdout: Mapping[str, Any] | None,
        since: datetime,
    ) -> dict[str, Any]:
        """Both models' scores on the job's held-out rows: ``rows``,
        ``challenger_metrics``, ``champion_metrics`` (None without champion), ``paired``,
        ``holdout_start``, ``holdout_end``, ``rule``.

        Raises:
            GateScoringError: The scoring could not be done.
        """
        ...


class LabelCountPort(Protocol):
    """How many labels the suite's label store holds (the features service)."""

    async def count(self, model: str, *, since: datetime, at_least: int) -> int:
        """Labels of ``model`` observed at or after ``since``, counted up to ``at_least``."""


class ResultEvidencePort(Protocol):
    """What a job did, as the registry and tracking hold it (to check its report)."""

    async def version_run(self, name: str, version: int) -> str | None:
        """The run id of a registered version; None when the version does not exist."""

    async def run_metrics(self, run_id: str) -> dict[str, float] | None:
        """The metrics logged in a run; None when the run does not exist."""


class ExecutorPort(Protocol):
    """Runs a job's entry point somewhere: a local process, a cluster."""

    @property
    def name(self) -> str:
        """Recorded with each job (``local`` jobs die with the service)."""

    def log_path(self, context: JobContext) -> Path:
        """Where the job's output goes."""

    async def run(self, context: JobContext) -> dict[str, Any] | None:
        """Run the job to its end; its outcome, or None when it reports back later."""

    async def follow(self, context: JobContext) -> dict[str, Any] | None:
        """Follow a job a previous process started, as :meth:`run` would."""

    async def cancel(self, job_id: str) -> bool:
        """Stop the job's run (a process, a cluster's Job); whether there was one to stop."""

    async def start(self) -> None:
        """Prepare for jobs (the service is starting)."""

    async def close(self) -> None:
        """Release what :meth:`start` prepared."""
