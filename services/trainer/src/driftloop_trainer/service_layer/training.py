"""The trainer's use cases: a trigger becomes a decision, a job, a verdict and a promotion.

Both entrypoints (the HTTP app and the trigger consumer) call :class:`Training`,
built once in :func:`driftloop_trainer.service_layer.bootstrap.bootstrap`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from driftloop_events.catalog import spec_for
from driftloop_events.envelope import CloudEvent, new_event_id
from driftloop_kit import tracing
from driftloop_kit.declarations import ModelDeclaration, TriggerPolicy
from driftloop_kit.errors import Conflict, InvalidInput, NotFound, Unavailable
from driftloop_trainer.domain import episodes
from driftloop_trainer.domain.episodes import Episode
from driftloop_trainer.domain.events import COMPLETED_TYPE, training_escalated
from driftloop_trainer.domain.gate import (
    GateScoringError,
    LabelCheck,
    Paired,
    Verdict,
    evaluate,
)
from driftloop_trainer.domain.jobs import (
    SCORE_ENTRY_POINT,
    JobContext,
    JobKind,
    JobSpec,
    JobStatus,
    ModelConfig,
    ScoreRequest,
    Stage,
    allowed_uri,
)
from driftloop_trainer.domain.leases import Owner, orphaned
from driftloop_trainer.domain.policy import (
    Decision,
    LabelEvidence,
    Outcome,
    Suppression,
    Trigger,
    TriggerKind,
    decide,
    trigger_dict,
    trigger_from_dict,
)
from driftloop_trainer.domain.schedule import due
from driftloop_trainer.service_layer.metrics import record_finished
from driftloop_trainer.service_layer.ports import (
    AliasRegistryPort,
    ExecutorPort,
    GateScoringPort,
    LabelCountPort,
    ResultEvidencePort,
    TrainerStorePort,
)

log = logging.getLogger(__name__)


def utcnow() -> datetime:
    """Now, timezone-aware (the default clock)."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class Endpoints:
    """Where a job finds the other services, and where it keeps its files."""

    tracking_url: str
    registry_url: str
    features_url: str
    experiment_name: str
    jobs_path: Path
    #: Issues a job's own token: ``(job_id, ttl_seconds) -> token`` (none: no token).
    job_token: Callable[[str, float], str] | None = None
    #: The Kafka cluster scoring jobs log their predictions to.
    kafka_bootstrap_servers: str = ""
    #: Where scoring jobs may read and write (folders or URI prefixes).
    score_bases: tuple[str, ...] = ()
    #: The entry point of scoring jobs.
    score_entry_point: str = SCORE_ENTRY_POINT


class Training:
    """Decides on triggers, runs jobs, applies the gate, moves aliases.

    Args:
        models: Policy and job spec per registered model.
        store: Decisions, jobs, alias moves and the outbox.
        registry: Reads and moves aliases.
        executor: Runs the jobs.
        endpoints: What jobs are told.
        clock: Now, for the trigger policies (tests move it).
        evidence: Where a job's report is checked (the version it names must be
            registered from the run it names, the metrics it reports logged in that
            run); None trusts the report (unit tests of the policies).
        gate: The trainer's own scoring of the challenger and the champion on the job's
            held-out rows, which decides; None decides on the job's figures (unit tests
            of the policies).
        labels: The label store, counted when a drift trigger waits for labels of the
            new distribution (``min_new_labels``); None starts such triggers at once.
    """

    def __init__(
        self,
        *,
        models: Mapping[str, ModelConfig],
        store: TrainerStorePort,
        registry: AliasRegistryPort,
        executor: ExecutorPort,
        endpoints: Endpoints,
        clock: Callable[[], datetime] = utcnow,
        evidence: ResultEvidencePort | None = None,
        gate: GateScoringPort | None = None,
        labels: LabelCountPort | None = None,
        lease_seconds: float = 60.0,
    ) -> None:
        self.evidence = evidence
        self.labels = labels
        self.gate = gate
        self.models = dict(models)
        self.store = store
        self.registry = registry
        self.executor = executor
        self.endpoints = endpoints
        self.clock = clock
        self._locks: dict[str, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.owner = Owner.this_process()
        self.lease_seconds = lease_seconds
        self._mine: set[str] = set()  # local jobs this process runs
        self._cancelled: set[str] = set()  # jobs cancelled here: their outcome is moot

    def config(self, model: str) -> ModelConfig:
        """The model's policy and spec.

        Raises:
            NotFound: The trainer has no job for the model.
        """
        found = self.models.get(model)
        if found is None:
            raise NotFound(f"No training job is declared for model {model!r}")
        return found

    # -- model documents -----------------------------------------------------------

    async def load_declarations(self) -> None:
        """Every model's latest applied document replaces what the settings declared."""
        for found in await self.store.latest_declarations():
            declaration = ModelDeclaration.model_validate(found["document"])
            self.models[declaration.name] = ModelConfig.of(declaration, found["revision"])

    async def declare(self, declaration: ModelDeclaration, *, by: str) -> dict[str, Any]:
        """Apply a model's document: stored as its next revision (unless it is the same
        as the latest), published as ``model.declared``, and taken up at once.

        Returns:
            ``name``, ``revision`` and ``changed`` (False: the latest revision already
            was this document).
        """
        name = declaration.name
        async with self._locks.setdefault(name, asyncio.Lock()):
            revision, changed = await self.store.declare(
                model=name,
                document=declaration.document(),
                digest=declaration.digest(),
                by=by,
                now=self.clock(),
            )
            self.models[name] = ModelConfig.of(declaration, revision)
        log.info(
            "model declared",
            extra={"model": name, "revision": revision, "changed": changed, "by": by},
        )
        return {"name": name, "revision": revision, "changed": changed}

    # -- triggers ------------------------------------------------------------------

    async def submit(
        self, trigger: Trigger, *, event: CloudEvent[Any] | None = None
    ) -> tuple[Decision, str | None] | None:
        """Decide on ``trigger`` and start its job when the policy says so.

        Returns:
            The decision and the job id (None when suppressed); None when ``event``
            was a redelivery.

        Raises:
            NotFound: The model has no declared job.
        """
        config = self.config(trigger.model)
        if trigger.episode_id and not trigger.force:
            held = await self.store.episode(trigger.model, trigger.episode_id)
            if held is not None and held.escalated:
                return await self._escalated_already(trigger)
            if trigger.version:
                hold = await self.store.episode(trigger.model, version_hold(trigger.version))
                if hold is not None and hold.escalated:
                    # The episode waits for nothing more: held with its version.
                    episode = await self._load_episode(trigger.model, trigger.episode_id)
                    await self.store.save_episode(episodes.escalated(episode), now=self.clock())
                    return await self._escalated_already(trigger, hold=hold)
        if trigger.kind is TriggerKind.PERFORMANCE:
            trigger = await self._with_drift_onset(trigger)
        labels = await self._label_evidence(trigger, config.policy)
        lock = self._locks.setdefault(trigger.model, asyncio.Lock())
        async with lock:
            found = await self.store.decide(
                trigger=trigger,
                policy=config.policy,
                spec=config.job,
                executor=self.executor.name,
                event=event,
                now=self.clock(),
                labels=labels,
                owner=str(self.owner),
            )
        if found is None:
            log.info("redelivered trigger ignored", extra={"event_id": event and event.id})
            return None
        decision, job_id = found
        if trigger.episode_id:
            await self._episode_decided(trigger, decision, job_id)
        log.info(
            "trigger decided",
            extra={
                "model": trigger.model,
                "kind": trigger.kind.value,
                "outcome": decision.outcome.value,
                "detail": decision.detail,
                "job_id": job_id,
            },
        )
        if job_id is not None:
            self._spawn(job_id, trigger.traceparent)
        return decision, job_id

    async def _with_drift_onset(self, trigger: Trigger) -> Trigger:
        """A performance alert is late evidence of a change (its window waited for
        labels): when a drift episode of the same version is waiting with a later onset,
        that onset is the change's, and the retrained version's reference is drawn from
        the rows since then."""
        onsets = [
            str(episode.pending.get("onset") or "")
            for episode in await self.store.pending_episodes()
            if episode.model == trigger.model
            and episode.pending is not None
            and episode.pending.get("kind") == TriggerKind.DRIFT.value
            and int(episode.pending.get("version") or 0) == trigger.version
        ]
        later = [
            o for o in onsets if o and (not trigger.onset or _moment(o) > _moment(trigger.onset))
        ]
        return replace(trigger, onset=max(later, key=_moment)) if later else trigger

    async def _label_evidence(
        self, trigger: Trigger, policy: TriggerPolicy
    ) -> LabelEvidence | None:
        """The labels observed since the drift began, when the trigger waits for them;
        None when it does not, or the label store cannot say (the trigger is then decided
        as if it did not wait: a job without labels fails and says why)."""
        if self.labels is None or not trigger.needs_labels(policy):
            return None
        since = _moment(trigger.labels_since)
        alerted = _moment(trigger.alerted_at) if trigger.alerted_at else self.clock()
        try:
            count = await self.labels.count(
                trigger.model, since=since, at_least=policy.min_new_labels
            )
        except Unavailable as error:
            log.warning("labels not counted", extra={"model": trigger.model, "error": str(error)})
            return None
        waited = max(0.0, (self.clock() - alerted).total_seconds())
        return LabelEvidence(count=count, since=since, waited_seconds=waited)

    async def _escalated_already(
        self, trigger: Trigger, *, hold: Episode | None = None
    ) -> tuple[Decision, None]:
        """A trigger of an escalated episode (or of a version whose labels were found
        suspect) starts nothing until a person acts (a manual training with ``force``):
        recorded, with why."""
        detail = (
            f"escalated: episode {trigger.episode_id} was handed to a person "
            "(training.escalated); no retraining for it until someone asks with force"
        )
        if hold is not None:
            detail = (
                f"escalated: the labels of version {trigger.version} were found suspect "
                f"(job {', '.join(hold.job_ids)}, training.escalated); no retraining of that "
                "version, whatever the episode, until someone asks with force"
            )
        decision = Decision(
            outcome=Outcome.SUPPRESSED,
            dedup_key=trigger.episode_id,
            suppression=Suppression.ESCALATED,
            detail=detail,
        )
        await self.store.note(
            trigger=trigger,
            outcome=decision.outcome,
            detail=decision.detail,
            now=self.clock(),
            suppression=Suppression.ESCALATED,
        )
        return decision, None

    # -- episodes ------------------------------------------------------------------

    async def _load_episode(self, model: str, episode_id: str) -> Episode:
        found = await self.store.episode(model, episode_id)
        return found or Episode(model=model, episode_id=episode_id)

    async def _episode_decided(
        self, trigger: Trigger, decision: Decision, job_id: str | None
    ) -> None:
        episode = await self._load_episode(trigger.model, trigger.episode_id)
        after = episodes.after_decision(
            episode, decision, trigger=trigger_dict(trigger), job_id=job_id
        )
        if after != episode:
            await self.store.save_episode(after, now=self.clock())

    async def close_episode(self, model: str, episode_id: str, *, why: str) -> None:
        """The monitor closed an episode: a trigger still deferred for it is dropped."""
        if model not in self.models:
            return
        async with self._locks.setdefault(model, asyncio.Lock()):
            episode = await self._load_episode(model, episode_id)
            if not episode.open:
                return
            pending = episode.pending
            closed, dropped = episodes.after_closed(episode)
            now = self.clock()
            await self.store.save_episode(closed, now=now)
            if dropped and pending is not None:
                await self.store.note(
                    trigger=trigger_from_dict(pending),
                    outcome=Outcome.DROPPED,
                    detail=f"episode {episode_id} closed ({why}) before the wait was over: "
                    "the deferred trigger starts no job",
                    now=now,
                )

    async def retry_pending(self) -> list[str]:
        """Re-check every deferred trigger that is due; start a job where the policy lets
        it (one per episode). Returns the jobs started."""
        started: list[str] = []
        for episode in await self.store.pending_episodes():
            config = self.models.get(episode.model)
            if config is None or episode.pending is None:
                continue
            now = self.clock()
            if not episodes.is_due(episode, now):
                continue
            trigger = trigger_from_dict(episode.pending)
            state = await self.store.model_state(
                episode.model, config.policy, now, champion_alias=config.job.evaluation.alias
            )
            labels = await self._label_evidence(trigger, config.policy)
            if not decide(trigger, state, config.policy, now, labels).started:
                continue  # still waiting: no decision recorded until something changes
            found = await self.submit(trigger)
            if found is not None and found[1] is not None:
                started.append(found[1])
        return started

    async def _after_verdict(
        self, job: Mapping[str, Any], verdict: Verdict, promoted: bool
    ) -> None:
        """A challenger of an episode was promoted or refused: resolve, back off or escalate."""
        stored = job.get("trigger") or {}
        episode_id = str(stored.get("episode_id") or "")
        model = job["model_name"]
        config = self.models.get(model)
        if not episode_id or config is None:
            return
        episode = await self._load_episode(model, episode_id)
        now = self.clock()
        if promoted:
            await self.store.save_episode(episodes.after_promotion(episode), now=now)
            return
        trigger = trigger_from_dict(stored)
        refusals = episode.refusals + 1
        retry = replace(trigger, window=f"{trigger.window}#refused-{refusals}")
        after, escalate = episodes.after_refusal(
            episode, trigger=trigger_dict(retry), policy=config.policy, now=now
        )
        if after.pending is not None:
            # New evidence: the retry counts only labels newer than this refusal, and its
            # wait for them is bounded from when the back-off ends.
            due_at = after.not_before or now
            retry = replace(retry, evidence_since=now.isoformat(), alerted_at=due_at.isoformat())
            after = replace(after, pending=trigger_dict(retry))
        if verdict.suspect_labels and not escalate:
            # Retraining on labels that look like noise does not help: a person looks now.
            after, escalate = episodes.escalated(after), True
        await self.store.save_episode(after, now=now)
        if verdict.suspect_labels and trigger.version:
            # Labels are the model's, not the episode's: the version's other episodes
            # (drift and performance alerts of one change) would train on the same noise.
            await self.store.save_episode(
                Episode(
                    model=model,
                    episode_id=version_hold(trigger.version),
                    escalated=True,
                    job_ids=(job["id"],),
                ),
                now=now,
            )
        if not escalate:
            await self.store.note(
                trigger=retry,
                outcome=Outcome.DEFERRED,
                detail=(
                    f"the gate refused job {job['id']} ({verdict.reason}); refusal "
                    f"{refusals} of {config.policy.max_refusals_per_episode} for episode "
                    f"{episode_id}: retrained only if the episode is still open at "
                    f"{after.not_before.isoformat() if after.not_before else 'once due'}"
                    + (
                        f" and {config.policy.min_new_labels} new labels have come since"
                        if config.policy.min_new_labels > 0
                        else ""
                    )
                ),
                now=now,
            )
            return
        rule = (
            "suspect_labels"
            if verdict.suspect_labels
            else f"max_refusals_per_episode={config.policy.max_refusals_per_episode}"
        )
        reason = (
            f"{refusals} challengers refused for episode {episode_id}; the last: {verdict.reason}"
        )
        evidence = {
            "refusals": str(refusals),
            "challenger_score": f"{verdict.challenger_score:.6g}",
            "champion_score": ""
            if verdict.champion_score is None
            else f"{verdict.champion_score:.6g}",
            "evaluation_rows": str(verdict.evaluation_rows),
            "p_value": "" if verdict.p_value is None else f"{verdict.p_value:.6g}",
            "suspect_labels": verdict.suspect_labels,
        }
        await self.store.note(
            trigger=trigger,
            outcome=Outcome.ESCALATED,
            detail=f"escalated ({rule}): {reason}; the trainer stops retraining for it",
            now=now,
            publish=(
                training_escalated(
                    model=model,
                    episode_id=episode_id,
                    reason=reason,
                    rule=rule,
                    job_ids=list(after.job_ids),
                    evidence=evidence,
                    time=now,
                ),
            ),
        )

    def models_reading(self, views: list[str]) -> list[str]:
        """Models whose jobs read any of the feature ``views``."""
        wanted = set(views)
        return [name for name, config in self.models.items() if wanted & feature_views(config.job)]

    # -- jobs ----------------------------------------------------------------------

    async def submit_score(self, request: ScoreRequest, *, by: str) -> str:
        """Queue and start a job of kind ``score``: the file scored by the same executor
        as training jobs (a local process, or a cluster's Job). Its id.

        The model's declared job spec gives its image and timeout (the defaults for a
        model without one).

        Raises:
            InvalidInput: The input or the output lies outside the configured
                ``score_uris``.
        """
        bases = self.endpoints.score_bases
        for what, uri in (("input_uri", request.input_uri), ("output_uri", request.output_uri)):
            if not allowed_uri(uri, bases):
                raise InvalidInput(
                    f"{what} {uri!r} is not under a folder scoring jobs may use "
                    f"({', '.join(bases) or 'none configured'}: the trainer's score_uris)"
                )
        model = request.model_name
        declared = self.models.get(model)
        base = declared.job if declared is not None else JobSpec()
        spec = base.model_copy(update={"entry_point": self.endpoints.score_entry_point})
        job_id = await self.store.create_score_job(
            model=model,
            parameters=request.parameters(self.endpoints.kafka_bootstrap_servers),
            spec=spec,
            executor=self.executor.name,
            requested_by=by,
            now=self.clock(),
        )
        log.info("scoring job queued", extra={"model": model, "job_id": job_id, "by": by})
        self._spawn(job_id)
        return job_id

    def _spawn(self, job_id: str, traceparent: str = "", *, adopt: bool = False) -> None:
        self._mine.add(job_id)
        task = asyncio.create_task(
            self._traced(job_id, traceparent, adopt=adopt), name=f"training-job:{job_id}"
        )
        task.add_done_callback(lambda _: self._mine.discard(job_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def context(self, job: Mapping[str, Any]) -> JobContext:
        """What the job's entry point is given."""
        trigger = job["trigger"]
        return JobContext(
            job_id=job["id"],
            model_name=job["model_name"],
            parameters=job["parameters"],
            spec=JobSpec.model_validate(job["spec"]),
            trigger={
                "kind": str(trigger.get("kind", "")),
                "reason": str(trigger.get("reason", "")),
                "event_id": str(trigger.get("event_id", "")),
                "event_type": str(trigger.get("event_type", "")),
                "event_source": str(trigger.get("event_source", "")),
                "episode_id": str(trigger.get("episode_id", "")),
                "onset": str(trigger.get("onset", "")),
            },
            tracking_url=self.endpoints.tracking_url,
            registry_url=self.endpoints.registry_url,
            features_url=self.endpoints.features_url,
            experiment_name=self.endpoints.experiment_name,
            work_dir=str(self.endpoints.jobs_path / job["id"]),
            token=self._job_token(job),
            kind=str(job.get("kind") or JobKind.TRAINING.value),
        )

    def _job_token(self, job: Mapping[str, Any]) -> str:
        issue = self.endpoints.job_token
        if issue is None:
            return ""
        # Valid while the job may run, and a little longer to report.
        return issue(job["id"], float(job["spec"].get("timeout_seconds", 900.0)) + 600.0)

    async def _traced(self, job_id: str, traceparent: str, *, adopt: bool = False) -> None:
        """:meth:`execute`, in a span that continues the trigger's trace."""
        with tracing.span(
            "trainer.job", parent=traceparent or None, attributes={"driftloop.job_id": job_id}
        ):
            await self.execute(job_id, adopt=adopt)

    async def execute(self, job_id: str, *, adopt: bool = False) -> None:
        """Run a queued job to its end, or, with ``adopt``, follow the running job another
        process started on the cluster."""
        try:
            job = await self.store.get_job(job_id)
            if not JobStatus(job["status"]).active:
                return  # cancelled before it started
            context = self.context(job)
            if adopt:
                outcome = await self.executor.follow(context)
            else:
                await self.store.mark_running(job_id, log_path=str(self.executor.log_path(context)))
                outcome = await self.executor.run(context)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            log.exception("job could not run", extra={"job_id": job_id})
            outcome = {
                "ok": False,
                "stage": Stage.SETUP.value,
                "error": str(error),
                "error_type": type(error).__name__,
            }
        if outcome is None:
            return  # run elsewhere; finished when its result is reported
        try:
            await self.finish(job_id, outcome)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            if isinstance(error, Conflict) and job_id in self._cancelled:
                # Cancelled while it ran: the job was failed then; its end changes nothing.
                self._cancelled.discard(job_id)
                return
            # Left running in the store: the next start of the service fails it.
            log.exception("job outcome could not be recorded", extra={"job_id": job_id})

    async def cancel(self, job_id: str, *, by: str) -> tuple[dict[str, Any], bool]:
        """Cancel a queued or running job: fail it (``Cancelled``, ``training.failed``),
        then have the executor stop its run: a local process is terminated, a cluster's
        Job deleted with its pods (foreground propagation). A result the job reports
        afterwards is refused (the job has finished). The job and whether a run was
        stopped: a local job of another trainer replica keeps running to its end there,
        its outcome refused.

        Raises:
            NotFound: No such job.
            Conflict: The job has finished already.
        """
        job = await self.store.get_job(job_id)
        status = JobStatus(job["status"])
        if not status.active:
            raise Conflict(f"Job {job_id!r} has finished already ({job['status']})")
        self._cancelled.add(job_id)
        await self.store.mark_failed(
            job_id,
            stage=Stage.TRAINING if status is JobStatus.RUNNING else Stage.SETUP,
            error=f"cancelled by {by}",
            error_type="Cancelled",
        )
        stopped = await self.executor.cancel(job_id)
        log.info("job cancelled", extra={"job_id": job_id, "by": by, "stopped": stopped})
        return await self.store.get_job(job_id), stopped

    async def finish(self, job_id: str, outcome: Mapping[str, Any]) -> dict[str, Any]:
        """Apply a job's outcome: fail it, or evaluate, promote and complete it.

        Raises:
            NotFound: No such job.
            Conflict: The job has finished already.
        """
        job = await self._finish(job_id, outcome)
        record_finished(job)
        return job

    async def _finish(self, job_id: str, outcome: Mapping[str, Any]) -> dict[str, Any]:
        job = await self.store.get_job(job_id)
        if not JobStatus(job["status"]).active:
            raise Conflict(f"Training job {job_id!r} has finished already ({job['status']})")
        if not outcome.get("ok"):
            await self.store.mark_failed(
                job_id,
                stage=Stage(outcome.get("stage") or Stage.TRAINING.value),
                error=str(outcome.get("error", "")),
                error_type=str(outcome.get("error_type", "")),
                run_id=str(outcome.get("run_id") or ""),
            )
            return await self.store.get_job(job_id)
        if job.get("kind") == JobKind.SCORE.value:
            # A scoring registers nothing: no evidence to check, no gate, no promotion.
            result = outcome.get("result")
            await self.store.mark_scored(
                job_id, result=dict(result) if isinstance(result, Mapping) else {}
            )
            return await self.store.get_job(job_id)
        model = job["model_name"]
        spec = JobSpec.model_validate(job["spec"])
        run_id = str(outcome["run_id"])
        version = int(outcome["model_version"])
        unverified = await self._unverified(model, run_id, version, outcome.get("metrics") or {})
        if unverified is not None:
            await self.store.mark_failed(
                job_id,
                stage=Stage.EVALUATION,
                error=unverified,
                error_type="UnverifiedResult",
                run_id=run_id,
                model_version=version,
            )
            return await self.store.get_job(job_id)
        try:
            verdict = await self._judge(job, spec, version, outcome)
        except (ValueError, GateScoringError) as error:
            await self.store.mark_failed(
                job_id,
                stage=Stage.EVALUATION,
                error=str(error),
                error_type="EvaluationError"
                if isinstance(error, ValueError)
                else "GateScoringError",
                run_id=run_id,
                model_version=version,
            )
            return await self.store.get_job(job_id)
        event_id = new_event_id()
        moves: list[dict[str, Any]] = []
        if verdict.passed:
            try:
                verdict, moves = await self._promote(model, version, verdict, spec, event_id)
            except Exception as error:
                log.exception("promotion failed", extra={"job_id": job_id})
                await self.store.mark_failed(
                    job_id,
                    stage=Stage.PROMOTION,
                    error=str(error),
                    error_type=type(error).__name__,
                    run_id=run_id,
                    model_version=version,
                )
                return await self.store.get_job(job_id)
        await self.store.mark_completed(
            job_id,
            event_id=event_id,
            run_id=run_id,
            model_version=version,
            verdict=verdict,
            promoted=bool(moves),
            alias=spec.evaluation.alias,
            moves=moves,
        )
        async with self._locks.setdefault(model, asyncio.Lock()):
            await self._after_verdict(job, verdict, promoted=bool(moves))
        return await self.store.get_job(job_id)

    async def _judge(
        self, job: Mapping[str, Any], spec: JobSpec, version: int, outcome: Mapping[str, Any]
    ) -> Verdict:
        """The gate's verdict: on the trainer's own scores of both models on the job's
        held-out rows; the job's figures only when there is no scorer.

        Raises:
            GateScoringError: The trainer could not score.
            ValueError: The scores lack the deciding metric.
        """
        reported = {k: float(v) for k, v in (outcome.get("metrics") or {}).items()}
        if self.gate is None:
            return evaluate(
                spec.evaluation,
                challenger=reported,
                champion=outcome.get("champion_metrics"),
                champion_version=outcome.get("champion_version"),
                rows=int(outcome.get("evaluation_rows") or 0),
                paired=Paired.from_outcome(outcome.get("paired")),
            )
        model = job["model_name"]
        champion = await self.registry.alias_version(model, spec.evaluation.alias)
        if champion == version:
            champion = None
        extra = outcome.get("extra") or {}
        scored = await self.gate.score(
            self.context(job),
            challenger=version,
            champion=champion,
            holdout=extra.get("holdout") if isinstance(extra, Mapping) else None,
            since=_moment(job.get("started_at") or job.get("created_at")),
        )
        if not scored["rows"]:
            raise GateScoringError(
                f"no held-out labelled row to score the challenger on ({scored['rule']})"
            )
        verdict = evaluate(
            spec.evaluation,
            challenger=scored["challenger_metrics"],
            champion=scored["champion_metrics"],
            champion_version=champion,
            rows=int(scored["rows"]),
            paired=Paired.from_outcome(scored["paired"]),
            labels=LabelCheck.from_outcome(scored.get("labels")),
        )
        return replace(
            verdict,
            scored_by="trainer",
            holdout_start=str(scored.get("holdout_start") or ""),
            holdout_end=str(scored.get("holdout_end") or ""),
            rule=str(scored.get("rule") or ""),
            reported=reported,
        )

    async def _unverified(
        self, model: str, run_id: str, version: int, metrics: Mapping[str, Any]
    ) -> str | None:
        """Why a report does not match what the job did; None when it does."""
        if self.evidence is None:
            return None
        registered_from = await self.evidence.version_run(model, version)
        if registered_from is None:
            return f"the report names version {version} of {model!r}, which is not registered"
        if registered_from != run_id:
            return (
                f"version {version} of {model!r} was registered from run {registered_from!r}, "
                f"not from the reported run {run_id!r}"
            )
        logged = await self.evidence.run_metrics(run_id) or {}
        for key, value in metrics.items():
            if key not in logged or abs(logged[key] - float(value)) > 1e-9 * max(1.0, abs(value)):
                return (
                    f"the report's {key}={value} is not what run {run_id!r} logged "
                    f"({logged.get(key, 'nothing')})"
                )
        return None

    async def _promote(
        self, model: str, version: int, verdict: Verdict, spec: JobSpec, event_id: str
    ) -> tuple[Verdict, list[dict[str, Any]]]:
        alias, previous_alias = spec.evaluation.alias, spec.evaluation.previous_alias
        current = await self.registry.alias_version(model, alias)
        if current != verdict.champion_version:
            # The champion moved while the job ran: the scores compare with the wrong one.
            return replace(
                verdict,
                passed=False,
                reason=(
                    f"{alias} moved to version {current} while the challenger was compared "
                    f"with version {verdict.champion_version}; not promoted"
                ),
            ), []
        cause = {"id": event_id, "type": COMPLETED_TYPE, "source": spec_for(COMPLETED_TYPE).source}
        moves: list[dict[str, Any]] = []
        if current is not None and current != version:
            previous = await self.registry.alias_version(model, previous_alias)
            moves.append(_move(model, previous_alias, current, previous, "promotion"))
        try:
            await self.registry.promote(
                model, alias, version, expected=current, previous_alias=previous_alias, cause=cause
            )
        except Conflict as error:
            # Another decider moved the champion between the read above and this move.
            return replace(verdict, passed=False, reason=f"{error}; not promoted"), []
        moves.append(_move(model, alias, version, current, "promotion"))
        return verdict, moves

    async def rollback(self, model: str) -> dict[str, Any]:
        """Move the champion back to the previous version; the two aliases swap.

        Raises:
            NotFound: The model has no declared job, or no previous version.
            Conflict: The champion moved while the rollback was being made.
        """
        evaluation = self.config(model).job.evaluation
        alias, previous_alias = evaluation.alias, evaluation.previous_alias
        async with self._locks.setdefault(model, asyncio.Lock()):
            previous = await self.registry.alias_version(model, previous_alias)
            if previous is None:
                raise NotFound(f"Model {model!r} has no {previous_alias!r} version to roll back to")
            current = await self.registry.alias_version(model, alias)
            await self.registry.promote(
                model, alias, previous, expected=current, previous_alias=previous_alias
            )
            moves = [_move(model, alias, previous, current, "rollback")]
            if current is not None and current != previous:
                moves.append(_move(model, previous_alias, current, previous, "rollback"))
            await self.store.record_moves(moves)
        return {"model_name": model, alias: previous, previous_alias: current}

    async def recover(self) -> None:
        """Take over the jobs whose trainer process is gone: a local job died with it and
        is failed; a job on a cluster outlives it and is followed from now on. On one
        trainer, that is every job a previous process left; with replicas, only those
        whose owner is known dead or let its lease lapse
        (:mod:`driftloop_trainer.domain.leases`), each taken by one replica (a claim that
        compares and sets the owner).
        """
        now = self.clock()
        me = str(self.owner)
        for job in await self.store.active_jobs():
            if job.id in self._mine or not orphaned(
                job, me=self.owner, now=now, lease_seconds=self.lease_seconds
            ):
                continue
            if not await self.store.claim(job, owner=me, now=now):
                continue  # another replica took it first
            if job.local:
                await self.store.mark_failed(
                    job.id,
                    stage=Stage.SETUP,
                    error="the trainer running it stopped while the job was queued or running",
                    error_type="Interrupted",
                )
            else:
                log.info("following a job another trainer started", extra={"job_id": job.id})
                self._spawn(job.id, adopt=True)

    async def keep_leases(self) -> None:
        """Renew the leases of this process's jobs, and fail the orphans of others."""
        await self.store.renew_leases(sorted(self._mine), owner=str(self.owner), now=self.clock())
        await self.recover()

    async def wait_idle(self) -> None:
        """Wait for the jobs running in this process (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def start(self) -> None:
        """Take up the stored model documents; fail what a previous process left behind;
        get the executor ready."""
        await self.load_declarations()
        await self.executor.start()
        await self.recover()
        if self.gate is not None:
            await self.gate.start()

    async def stop(self) -> None:
        """Cancel the running jobs (their subprocesses are killed)."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)
        await self.executor.close()
        if self.gate is not None:
            await self.gate.close()

    # -- schedules -----------------------------------------------------------------

    async def fire_schedules(
        self, *, now: datetime, since: datetime, fired: dict[str, datetime]
    ) -> None:
        """Submit a schedule trigger for each model whose schedule has a new slot due."""
        for name, config in self.models.items():
            slot = due(config.policy.schedule, now=now, since=fired.get(name, since))
            if slot is None or fired.get(name) == slot:
                continue
            fired[name] = slot
            stamp = slot.astimezone(UTC).isoformat().replace("+00:00", "Z")
            await self.submit(
                Trigger(
                    kind=TriggerKind.SCHEDULE,
                    model=name,
                    window=stamp,
                    reason=f"schedule {config.policy.schedule!r} fired for {stamp}",
                    requested_by="trainer-schedule",
                )
            )


def version_hold(version: int) -> str:
    """The key under which the trainer holds a whole version (suspect labels)."""
    return f"version-{version}"


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.6g}"


def feature_views(spec: JobSpec) -> set[str]:
    """The feature views a job reads: named in its spec or in its feature references."""
    views = set(spec.feature_views)
    views.update(ref.split(":", 1)[0] for ref in spec.features if ":" in ref)
    return views


def _move(
    model: str, alias: str, version: int, previous: int | None, action: str
) -> dict[str, Any]:
    return {
        "model_name": model,
        "alias": alias,
        "version": version,
        "previous_version": previous,
        "action": action,
    }


def _moment(value: Any) -> datetime:
    """A job's stored time (a datetime or ISO 8601 text), timezone-aware."""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
