"""Runs: create, read, update, delete and restore; log metrics, params, tags and inputs;
run search.

Every change other services care about (a run created, a run finished) is staged in
the outbox in the same transaction, so it is published exactly when it is stored.
The per-call paths (log-metric, log-batch, runs/get, search) run on a Core connection
instead of a session: statements only, no unit of work.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from driftloop_events.envelope import CloudEvent
from driftloop_kit.errors import NotFound
from driftloop_tracking.domain import names
from driftloop_tracking.domain.events import run_created, run_finished
from driftloop_tracking.domain.logged_models import LoggedModelMetric, model_not_found
from driftloop_tracking.domain.model import (
    DatasetInput,
    LifecycleStage,
    Metric,
    ModelInput,
    Param,
    Run,
    RunData,
    RunInfo,
    RunStatus,
    Tag,
)
from driftloop_tracking.domain.runs import (
    RUN_NAME_TAG,
    active_experiment_location,
    active_run,
    changed_param,
    last_per_key,
    latest_per_key,
    now_ms,
    params_by_key,
    run_not_found,
    run_tags,
)
from driftloop_tracking.domain.runs import (
    experiment_id as parse_experiment_id,
)
from driftloop_tracking.domain.search import RunSearch
from driftloop_tracking.domain.validation import validate_batch
from driftloop_tracking.service_layer.ports import (
    Executor,
    LoggedModelStorePort,
    OutboxPort,
    RunStorePort,
    TransactionsPort,
)

__all__ = ["Runs"]


@dataclass(frozen=True, kw_only=True, slots=True)
class Runs:
    """The run use cases.

    Args:
        database: Opens the transactions.
        store: Experiments and runs.
        models: Logged models (metrics logged with a ``model_id``, models a run used).
        outbox: Where run events go, in the same transaction as the change.
    """

    database: TransactionsPort
    store: RunStorePort
    models: LoggedModelStorePort
    outbox: OutboxPort

    async def create(
        self,
        *,
        experiment_id: str,
        user_id: str = "",
        start_time: int | None = None,
        run_name: str | None = None,
        tags_: Sequence[Tag] = (),
    ) -> Run:
        """Start a run in an active experiment; publishes ``run.created``."""
        name, tag_map = run_tags(tags=tags_, run_name=run_name, user_id=user_id)
        run_id = uuid.uuid4().hex
        started = start_time if start_time is not None else now_ms()
        experiment = parse_experiment_id(experiment_id)
        async with self.database.session() as session:
            state = await self.store.experiment_state(session, experiment)
            location = active_experiment_location(experiment_id, state)
            run = Run(
                info=RunInfo(
                    run_id=run_id,
                    run_uuid=run_id,
                    run_name=name,
                    experiment_id=str(experiment),
                    user_id=user_id,
                    status=RunStatus.RUNNING,
                    start_time=started,
                    artifact_uri=names.run_artifact_uri(location, run_id),
                ),
                data=RunData(tags=[Tag(key=k, value=v) for k, v in tag_map.items()]),
            )
            # What was written is the run: a new run has nothing else to read back.
            await self.store.insert_run(session, run)
            await self.outbox.add(session, CloudEvent.new(run_created(run)))
        return run

    async def get(self, run_id: str) -> Run:
        """The run with its latest metrics, params, tags and inputs, or NotFound."""
        async with self.database.session() as session:
            found = await self.store.runs(session, [run_id])
        if not found:
            raise run_not_found(run_id)
        return found[0]

    # The artifact listing's lookup (RunLookupPort).
    get_run = get

    async def get_json(self, run_id: str) -> dict[str, Any]:
        """The run in MLflow's JSON form (as ``runs/get`` answers it), or NotFound."""
        async with self.database.connection() as connection:
            found = await self.store.run_page(connection, [run_id])
        if not found:
            raise run_not_found(run_id)
        return found[0]

    async def update(
        self,
        *,
        run_id: str,
        status: RunStatus | None = None,
        end_time: int | None = None,
        run_name: str | None = None,
    ) -> RunInfo:
        """Change status, end time or name; ending a run publishes ``run.finished`` once."""
        async with self.database.session() as session:
            before = active_run(run_id, await self.store.run_state(session, run_id))
            values: dict[str, Any] = {}
            if status is not None:
                values["status"] = status.value
                if status.terminal:
                    values["end_time"] = end_time if end_time is not None else now_ms()
            if end_time is not None:
                values["end_time"] = end_time
            if run_name:
                values["name"] = run_name
                await self.store.upsert_tags(
                    session, run_id, [Tag(key=RUN_NAME_TAG, value=run_name)]
                )
            if values:
                await self.store.update_run(session, run_id, values)
            (run,) = await self.store.runs(session, [run_id])
            if status is not None and status.terminal and not before.status.terminal:
                await self.outbox.add(session, CloudEvent.new(run_finished(run)))
        return run.info

    async def set_lifecycle(self, *, run_id: str, stage: LifecycleStage) -> None:
        """Delete (soft) or restore a run."""
        async with self.database.session() as session:
            if await self.store.run_state(session, run_id) is None:
                raise run_not_found(run_id)
            deleted = now_ms() if stage is LifecycleStage.DELETED else None
            await self.store.set_run_lifecycle(session, run_id, stage, deleted)

    async def log_metric(self, *, run_id: str, metric: Metric) -> None:
        """Log one value: the most frequent call, written with two statements.

        The history row is inserted only if the run is active, so the run is not read
        first; nothing inserted means an unknown or deleted run, told apart by reading
        it then.
        """
        if metric.model_id:
            await self.log_batch(run_id=run_id, metrics_=[metric])
            return
        validate_batch([metric], (), ())
        async with self.database.connection() as connection:
            if not await self.store.insert_metric_of_active_run(connection, run_id, metric):
                active_run(run_id, await self.store.run_state(connection, run_id))
                raise run_not_found(run_id)
            await self.store.upsert_latest_metrics(connection, run_id, [metric])

    async def log_batch(
        self,
        *,
        run_id: str,
        metrics_: Sequence[Metric] = (),
        params_: Sequence[Param] = (),
        tags_: Sequence[Tag] = (),
    ) -> None:
        """Log metrics, params and tags in one transaction (MLflow's limits apply)."""
        validate_batch(metrics_, params_, tags_)
        # One statement per table (many rows each), whatever the batch holds.
        async with self.database.connection() as connection:
            active_run(run_id, await self.store.run_state(connection, run_id))
            if params_:
                wanted = params_by_key(params_)
                existing = await self.store.run_params(connection, run_id)
                changed_param(run_id, wanted, existing)
                new = {k: v for k, v in wanted.items() if k not in existing}
                await self.store.insert_params(connection, run_id, new)
            if tags_:
                await self.store.upsert_tags(connection, run_id, last_per_key(tags_))
            if metrics_:
                if new_metrics := await self._new_run_metrics(connection, run_id, metrics_):
                    await self.store.insert_metrics(connection, run_id, new_metrics)
                    await self.store.upsert_latest_metrics(
                        connection, run_id, latest_per_key(new_metrics)
                    )
                if linked := [m for m in metrics_ if m.model_id]:
                    await self._log_model_metrics(connection, run_id, linked)

    async def delete_tag(self, *, run_id: str, key: str) -> None:
        """Remove a run tag, or NotFound."""
        async with self.database.session() as session:
            active_run(run_id, await self.store.run_state(session, run_id))
            if not await self.store.delete_run_tag(session, run_id, key):
                raise NotFound(f"No tag with name: {key} in run with id {run_id}")

    async def metric_history(
        self, *, run_id: str, key: str, max_results: int | None = None, offset: int = 0
    ) -> list[Metric]:
        """Every value logged for ``key`` in the run, by step then time."""
        async with self.database.session() as session:
            if await self.store.run_state(session, run_id) is None:
                raise run_not_found(run_id)
            return await self.store.metric_history(
                session, run_id=run_id, key=key, max_results=max_results, offset=offset
            )

    async def log_inputs(
        self,
        *,
        run_id: str,
        inputs: Sequence[DatasetInput],
        models: Sequence[ModelInput] = (),
    ) -> None:
        """Record the datasets (deduplicated per experiment by name and digest) and the
        logged models a run used."""
        async with self.database.session() as session:
            run = active_run(run_id, await self.store.run_state(session, run_id))
            if models:
                await self._check_models(session, [m.model_id for m in models])
                await self.models.link_run(
                    session,
                    run_id=run_id,
                    direction="input",
                    models=[(m.model_id, 0) for m in models],
                )
            experiment_id = int(run.experiment_id)
            for item in inputs:
                found = await self.store.dataset_id(session, experiment_id, item.dataset)
                if found is None:
                    found = uuid.uuid4().hex
                    await self.store.insert_dataset(session, found, experiment_id, item.dataset)
                await self.store.upsert_run_input(session, run_id, found, item.tags)

    async def search(self, search: RunSearch) -> tuple[list[dict[str, Any]], str | None]:
        """One page of runs matching ``search`` in MLflow's JSON form, and the token of
        the next page (if any)."""
        if not search.experiment_ids:
            return [], None
        async with self.database.connection() as connection:
            ids = await self.store.run_page_ids(connection, search)
            has_more = len(ids) > search.max_results
            found = await self.store.run_page(connection, ids[: search.max_results])
        return found, search.next_page_token(has_more)

    async def _new_run_metrics(
        self, executor: Executor, run_id: str, metrics_: Sequence[Metric]
    ) -> list[Metric]:
        """Drop model-linked values the run already has: log_model sends the run's values again."""
        linked = [m for m in metrics_ if m.model_id]
        if not linked:
            return list(metrics_)
        existing = await self.store.metric_values(executor, run_id, {m.key for m in linked})
        return [
            m
            for m in metrics_
            if not (m.model_id and (m.key, m.step, m.timestamp, m.value) in existing)
        ]

    async def _log_model_metrics(
        self, executor: Executor, run_id: str, linked: Sequence[Metric]
    ) -> None:
        """Link metrics that carry a ``model_id`` to their models (log-batch's MLflow 3 part)."""
        found = await self.models.existing_ids(executor, [m.model_id for m in linked if m.model_id])
        if missing := sorted(m.model_id for m in linked if m.model_id and m.model_id not in found):
            raise model_not_found(missing[0])
        await self.models.upsert_metrics(
            executor, run_id, [LoggedModelMetric(**m.model_dump()) for m in linked]
        )

    async def _check_models(self, executor: Executor, model_ids: Sequence[str]) -> None:
        wanted = set(model_ids)
        if missing := sorted(wanted - await self.models.existing_ids(executor, list(wanted))):
            raise model_not_found(missing[0])
