"""The tracking store: experiments, runs and what is logged to them, in SQL.

Every change that other services care about (a run created, a run finished) is
written to the outbox in the same transaction, so it is published exactly when
the change is stored.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy import and_, bindparam, delete, false, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from driftloop.tracking.v1 import events_pb2 as tracking_events
from driftloop_bus.outbox import Outbox
from driftloop_events.envelope import CloudEvent
from driftloop_kit.db import Database
from driftloop_kit.errors import AlreadyExists, InvalidInput, NotFound
from driftloop_tracking.adapters.logged_models import (
    LoggedModelMetric,
    link_run_models,
    log_model_metrics,
    run_model_links,
)
from driftloop_tracking.adapters.sql import (
    Executor,
    Query,
    dialect_insert,
    upsert,
    upsert_statement,
)
from driftloop_tracking.adapters.tables import (
    datasets,
    experiment_tags,
    experiments,
    latest_metrics,
    metrics,
    params,
    run_inputs,
    runs,
    searched_row,
    tags,
)
from driftloop_tracking.domain import names
from driftloop_tracking.domain.model import (
    Dataset,
    DatasetInput,
    Experiment,
    LifecycleStage,
    Metric,
    ModelInput,
    Param,
    Run,
    RunData,
    RunInfo,
    RunInputs,
    RunOutputs,
    RunStatus,
    Tag,
)
from driftloop_tracking.domain.validation import (
    validate_batch,
    validate_experiment_name,
    validate_key,
    validate_tag_value,
)

DEFAULT_EXPERIMENT_ID = "0"
DEFAULT_EXPERIMENT_NAME = "Default"
RUN_NAME_TAG = "mlflow.runName"
USER_TAG = "mlflow.user"
DATASET_CONTEXT_TAG = "mlflow.data.context"


def now_ms() -> int:
    """Milliseconds since the epoch, MLflow's time unit."""
    return int(datetime.now(UTC).timestamp() * 1000)


def _experiment_id(value: str | int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise InvalidInput(f"Invalid experiment ID: {value!r}") from None


def _timestamp(ms: int | None) -> Timestamp | None:
    if ms is None:
        return None
    stamp = Timestamp()
    stamp.FromMilliseconds(ms)
    return stamp


def _metric_row(run_id: str, metric: Metric) -> dict[str, Any]:
    is_nan = math.isnan(metric.value)
    return {
        "run_uuid": run_id,
        "key": metric.key,
        "value": 0.0 if is_nan else metric.value,
        "timestamp": metric.timestamp,
        "step": metric.step,
        "is_nan": is_nan,
    }


def _metric_value(row: Any) -> float:
    return math.nan if row.is_nan else float(row.value)


class TrackingStore:
    """Tracking state in the service's database.

    Args:
        database: The service's database.
        outbox: Where run events go, in the same transaction as the change.
        artifact_root: Informational: where the artifact repository keeps files.
    """

    def __init__(self, *, database: Database, outbox: Outbox, artifact_root: str) -> None:
        self.database = database
        self.outbox = outbox
        self.artifact_root = artifact_root

    # -- experiments -------------------------------------------------------------------

    async def ensure_default_experiment(self) -> None:
        """Create experiment ``0`` ("Default"), which MLflow clients use when none is set."""
        async with self.database.session() as session:
            found = await session.scalar(
                select(experiments.c.experiment_id).where(experiments.c.experiment_id == 0)
            )
            if found is None:
                at = now_ms()
                await session.execute(
                    insert(experiments).values(
                        experiment_id=0,
                        name=DEFAULT_EXPERIMENT_NAME,
                        artifact_location=names.experiment_artifact_location(DEFAULT_EXPERIMENT_ID),
                        creation_time=at,
                        last_update_time=at,
                    )
                )

    async def create_experiment(
        self, *, name: str, artifact_location: str | None = None, tags_: Sequence[Tag] = ()
    ) -> str:
        """Create an experiment; return its id."""
        validate_experiment_name(name)
        for tag in tags_:
            validate_key(tag.key, "tag")
        at = now_ms()
        try:
            async with self.database.session() as session:
                result = await session.execute(
                    insert(experiments)
                    .values(
                        name=name,
                        artifact_location=artifact_location or "",
                        creation_time=at,
                        last_update_time=at,
                    )
                    .returning(experiments.c.experiment_id)
                )
                experiment_id = str(result.scalar_one())
                if not artifact_location:
                    await session.execute(
                        update(experiments)
                        .where(experiments.c.experiment_id == int(experiment_id))
                        .values(artifact_location=names.experiment_artifact_location(experiment_id))
                    )
                if tags_:
                    await session.execute(
                        insert(experiment_tags),
                        [
                            {"experiment_id": int(experiment_id), "key": t.key, "value": t.value}
                            for t in tags_
                        ],
                    )
        except IntegrityError:
            raise AlreadyExists(f"Experiment '{name}' already exists.") from None
        return experiment_id

    async def get_experiment(self, experiment_id: str) -> Experiment:
        """The experiment, or NotFound."""
        async with self.database.session() as session:
            return await experiment_entity(session, experiment_id)

    async def get_experiment_by_name(self, name: str) -> Experiment:
        """The experiment named ``name``, or NotFound."""
        async with self.database.session() as session:
            found = await session.scalar(
                select(experiments.c.experiment_id).where(experiments.c.name == name)
            )
            if found is None:
                raise NotFound(f"Could not find experiment with name '{name}'")
            return await experiment_entity(session, str(found))

    async def rename_experiment(self, *, experiment_id: str, new_name: str) -> None:
        """Rename an active experiment."""
        validate_experiment_name(new_name)
        try:
            async with self.database.session() as session:
                await _active_experiment(session, experiment_id)
                await session.execute(
                    update(experiments)
                    .where(experiments.c.experiment_id == _experiment_id(experiment_id))
                    .values(name=new_name, last_update_time=now_ms())
                )
        except IntegrityError:
            raise AlreadyExists(f"Experiment '{new_name}' already exists.") from None

    async def set_experiment_lifecycle(self, *, experiment_id: str, stage: LifecycleStage) -> None:
        """Delete (soft) or restore an experiment and its runs."""
        async with self.database.session() as session:
            experiment = await experiment_entity(session, experiment_id)
            if experiment_id == DEFAULT_EXPERIMENT_ID and stage is LifecycleStage.DELETED:
                raise InvalidInput("Cannot delete the default experiment '0'.")
            if experiment.lifecycle_stage is stage:
                raise InvalidInput(
                    f"Cannot {'delete' if stage is LifecycleStage.DELETED else 'restore'} "
                    f"experiment {experiment_id}: its lifecycle stage is already {stage.value}."
                )
            at = now_ms()
            await session.execute(
                update(experiments)
                .where(experiments.c.experiment_id == int(experiment_id))
                .values(lifecycle_stage=stage.value, last_update_time=at)
            )
            await session.execute(
                update(runs)
                .where(runs.c.experiment_id == int(experiment_id))
                .values(
                    lifecycle_stage=stage.value,
                    deleted_time=at if stage is LifecycleStage.DELETED else None,
                )
            )

    async def set_experiment_tag(self, *, experiment_id: str, key: str, value: str) -> None:
        """Set (or overwrite) a tag of an active experiment."""
        validate_key(key, "tag")
        validate_tag_value(value)
        async with self.database.session() as session:
            await _active_experiment(session, experiment_id)
            await upsert(
                session,
                experiment_tags,
                {"experiment_id": int(experiment_id), "key": key, "value": value},
                ("experiment_id", "key"),
            )

    async def delete_experiment_tag(self, *, experiment_id: str, key: str) -> None:
        """Remove a tag of an active experiment."""
        async with self.database.session() as session:
            await _active_experiment(session, experiment_id)
            result = await session.execute(
                delete(experiment_tags).where(
                    experiment_tags.c.experiment_id == int(experiment_id),
                    experiment_tags.c.key == key,
                )
            )
            if result.rowcount == 0:  # type: ignore[attr-defined]
                raise NotFound(f"No tag with name: {key} in experiment {experiment_id}")

    # -- runs --------------------------------------------------------------------------

    async def create_run(
        self,
        *,
        experiment_id: str,
        user_id: str = "",
        start_time: int | None = None,
        run_name: str | None = None,
        tags_: Sequence[Tag] = (),
    ) -> Run:
        """Start a run in an active experiment; publishes ``run.created``."""
        tag_map = {t.key: t.value for t in tags_}
        for key, value in tag_map.items():
            validate_key(key, "tag")
            validate_tag_value(value)
        if run_name and tag_map.get(RUN_NAME_TAG, run_name) != run_name:
            raise InvalidInput(
                f"Both 'run_name' ({run_name!r}) and the tag '{RUN_NAME_TAG}' "
                f"({tag_map[RUN_NAME_TAG]!r}) were given, and they differ."
            )
        name = run_name or tag_map.get(RUN_NAME_TAG) or names.random_run_name()
        tag_map[RUN_NAME_TAG] = name
        if user_id and USER_TAG not in tag_map:
            tag_map[USER_TAG] = user_id
        run_id = uuid.uuid4().hex
        started = start_time if start_time is not None else now_ms()
        async with self.database.session() as session:
            location = await _active_experiment_location(session, experiment_id)
            run = Run(
                info=RunInfo(
                    run_id=run_id,
                    run_uuid=run_id,
                    run_name=name,
                    experiment_id=str(_experiment_id(experiment_id)),
                    user_id=user_id,
                    status=RunStatus.RUNNING,
                    start_time=started,
                    artifact_uri=names.run_artifact_uri(location, run_id),
                ),
                data=RunData(tags=[Tag(key=k, value=v) for k, v in tag_map.items()]),
            )
            # What was written is the run: a new run has nothing else to read back.
            await _INSERT_RUN.execute_many(
                session,
                [
                    {
                        "run_uuid": run_id,
                        "name": name,
                        "experiment_id": int(run.info.experiment_id),
                        "user_id": user_id,
                        "status": RunStatus.RUNNING.value,
                        "start_time": started,
                        "artifact_uri": run.info.artifact_uri,
                    }
                ],
            )
            await _INSERT_TAGS.execute_many(
                session, [searched_row("run_uuid", run_id, k, v) for k, v in tag_map.items()]
            )
            await self.outbox.add(session, CloudEvent.new(run_created(run)))
        return run

    async def get_run(self, run_id: str) -> Run:
        """The run with its latest metrics, params, tags and inputs, or NotFound."""
        async with self.database.session() as session:
            return await run_entity(session, run_id)

    async def update_run(
        self,
        *,
        run_id: str,
        status: RunStatus | None = None,
        end_time: int | None = None,
        run_name: str | None = None,
    ) -> RunInfo:
        """Change status, end time or name; ending a run publishes ``run.finished`` once."""
        async with self.database.session() as session:
            before = await _active_run(session, run_id)
            values: dict[str, Any] = {}
            if status is not None:
                values["status"] = status.value
                if status.terminal:
                    values["end_time"] = end_time if end_time is not None else now_ms()
            if end_time is not None:
                values["end_time"] = end_time
            if run_name:
                values["name"] = run_name
                await upsert(
                    session,
                    tags,
                    searched_row("run_uuid", run_id, RUN_NAME_TAG, run_name),
                    ("run_uuid", "key"),
                )
            if values:
                await session.execute(
                    update(runs).where(runs.c.run_uuid == run_id).values(**values)
                )
            run = await run_entity(session, run_id)
            if status is not None and status.terminal and not before.status.terminal:
                await self.outbox.add(session, CloudEvent.new(run_finished(run)))
        return run.info

    async def set_run_lifecycle(self, *, run_id: str, stage: LifecycleStage) -> None:
        """Delete (soft) or restore a run."""
        async with self.database.session() as session:
            await _run_row(session, run_id)
            await session.execute(
                update(runs)
                .where(runs.c.run_uuid == run_id)
                .values(
                    lifecycle_stage=stage.value,
                    deleted_time=now_ms() if stage is LifecycleStage.DELETED else None,
                )
            )

    # -- logging -----------------------------------------------------------------------

    async def log_metric(self, *, run_id: str, metric: Metric) -> None:
        """Log one value: the most frequent call, written with two statements.

        The history row is inserted only if the run is active (``INSERT ... SELECT
        ... WHERE EXISTS``), so the run is not read first; nothing inserted means an
        unknown or deleted run, told apart by reading it then.
        """
        if metric.model_id:
            await self.log_batch(run_id=run_id, metrics_=[metric])
            return
        validate_batch([metric], (), ())
        row = _metric_row(run_id, metric)
        async with self.database.connection() as connection:
            if not await _INSERT_METRIC_OF_ACTIVE_RUN.execute(connection, **row):
                await _active_run(connection, run_id)  # raises NotFound or InvalidInput
                raise NotFound(f"Run with id={run_id} not found")
            await _UPSERT_LATEST_METRICS.execute_many(connection, [row])

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
            await _active_run(connection, run_id)
            if params_:
                await _log_params(connection, run_id, params_)
            if tags_:
                await _UPSERT_TAGS.execute_many(
                    connection,
                    [
                        searched_row("run_uuid", run_id, t.key, t.value)
                        for t in _last_per_key(tags_)
                    ],
                )
            if metrics_:
                if new := await _new_run_metrics(connection, run_id, metrics_):
                    await _log_metrics(connection, run_id, new)
                if linked := [m for m in metrics_ if m.model_id]:
                    await log_model_metrics(
                        connection,
                        run_id=run_id,
                        metrics=[LoggedModelMetric(**m.model_dump()) for m in linked],
                    )

    async def delete_tag(self, *, run_id: str, key: str) -> None:
        """Remove a run tag, or NotFound."""
        async with self.database.session() as session:
            await _active_run(session, run_id)
            result = await session.execute(
                delete(tags).where(tags.c.run_uuid == run_id, tags.c.key == key)
            )
            if result.rowcount == 0:  # type: ignore[attr-defined]
                raise NotFound(f"No tag with name: {key} in run with id {run_id}")

    async def metric_history(
        self, *, run_id: str, key: str, max_results: int | None = None, offset: int = 0
    ) -> list[Metric]:
        """Every value logged for ``key`` in the run, by step then time."""
        async with self.database.session() as session:
            await _run_row(session, run_id)
            query = (
                select(metrics)
                .where(metrics.c.run_uuid == run_id, metrics.c.key == key)
                .order_by(metrics.c.step, metrics.c.timestamp, metrics.c.id)
                .offset(offset)
            )
            if max_results is not None:
                query = query.limit(max_results)
            rows = (await session.execute(query)).all()
        return [
            Metric(key=r.key, value=_metric_value(r), timestamp=r.timestamp, step=r.step)
            for r in rows
        ]

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
            run = await _active_run(session, run_id)
            await link_run_models(
                session, run_id=run_id, direction="input", models=[(m.model_id, 0) for m in models]
            )
            experiment_id = int(run.experiment_id)
            for item in inputs:
                ds = item.dataset
                found = await session.scalar(
                    select(datasets.c.dataset_uuid).where(
                        datasets.c.experiment_id == experiment_id,
                        datasets.c.name == ds.name,
                        datasets.c.digest == ds.digest,
                    )
                )
                if found is None:
                    found = uuid.uuid4().hex
                    await session.execute(
                        insert(datasets).values(
                            dataset_uuid=found,
                            experiment_id=experiment_id,
                            name=ds.name,
                            digest=ds.digest,
                            source_type=ds.source_type,
                            source=ds.source,
                            schema=ds.schema_,
                            profile=ds.profile,
                        )
                    )
                await upsert(
                    session,
                    run_inputs,
                    {
                        "run_uuid": run_id,
                        "dataset_uuid": found,
                        "tags": [t.model_dump() for t in item.tags],
                    },
                    ("run_uuid", "dataset_uuid"),
                )


# -- entities, shared with the other adapters -------------------------------------------


async def experiment_entity(session: AsyncSession, experiment_id: str) -> Experiment:
    """Build the MLflow-shaped experiment, or raise NotFound."""
    row = (
        await session.execute(
            select(experiments).where(experiments.c.experiment_id == _experiment_id(experiment_id))
        )
    ).first()
    if row is None:
        raise NotFound(f"No Experiment with id={experiment_id} exists")
    tag_rows = (
        await session.execute(
            select(experiment_tags.c.key, experiment_tags.c.value).where(
                experiment_tags.c.experiment_id == row.experiment_id
            )
        )
    ).all()
    return Experiment(
        experiment_id=str(row.experiment_id),
        name=row.name,
        artifact_location=row.artifact_location,
        lifecycle_stage=LifecycleStage(row.lifecycle_stage),
        creation_time=row.creation_time,
        last_update_time=row.last_update_time,
        tags=[Tag(key=k, value=v) for k, v in tag_rows],
    )


async def run_entity(session: AsyncSession, run_id: str) -> Run:
    """Build the MLflow-shaped run, or raise NotFound."""
    found = await run_entities(session, [run_id])
    if not found:
        raise NotFound(f"Run with id={run_id} not found")
    return found[0]


async def run_entities(session: AsyncSession, run_ids: Sequence[str]) -> list[Run]:
    """Build many runs with one query per table, in the order of ``run_ids``."""
    if not run_ids:
        return []
    ids = list(run_ids)
    run_rows = {
        r.run_uuid: r
        for r in (await session.execute(select(runs).where(runs.c.run_uuid.in_(ids)))).all()
    }
    data: dict[str, RunData] = {rid: RunData() for rid in run_rows}
    for r in (
        await session.execute(select(latest_metrics).where(latest_metrics.c.run_uuid.in_(ids)))
    ).all():
        data[r.run_uuid].metrics.append(
            Metric(key=r.key, value=_metric_value(r), timestamp=r.timestamp, step=r.step)
        )
    for r in (await session.execute(select(params).where(params.c.run_uuid.in_(ids)))).all():
        data[r.run_uuid].params.append(Param(key=r.key, value=r.value))
    for r in (await session.execute(select(tags).where(tags.c.run_uuid.in_(ids)))).all():
        data[r.run_uuid].tags.append(Tag(key=r.key, value=r.value))
    inputs: dict[str, RunInputs] = {rid: RunInputs() for rid in run_rows}
    input_rows = (
        await session.execute(
            select(run_inputs.c.run_uuid, run_inputs.c.tags, datasets)
            .join(datasets, datasets.c.dataset_uuid == run_inputs.c.dataset_uuid)
            .where(run_inputs.c.run_uuid.in_(ids))
        )
    ).all()
    for r in input_rows:
        inputs[r.run_uuid].dataset_inputs.append(
            DatasetInput(
                tags=[Tag(**t) for t in r.tags],
                dataset=Dataset(
                    name=r.name,
                    digest=r.digest,
                    source_type=r.source_type,
                    source=r.source,
                    schema=r.schema,
                    profile=r.profile,
                ),
            )
        )
    links = await run_model_links(session, list(run_rows))
    for rid, (model_inputs, _) in links.items():
        inputs[rid].model_inputs.extend(model_inputs)
    result = []
    for rid in ids:
        row = run_rows.get(rid)
        if row is None:
            continue
        result.append(
            Run(
                info=RunInfo(
                    run_id=row.run_uuid,
                    run_uuid=row.run_uuid,
                    run_name=row.name,
                    experiment_id=str(row.experiment_id),
                    user_id=row.user_id,
                    status=RunStatus(row.status),
                    start_time=row.start_time,
                    end_time=row.end_time,
                    artifact_uri=row.artifact_uri,
                    lifecycle_stage=LifecycleStage(row.lifecycle_stage),
                ),
                data=data[rid],
                inputs=inputs[rid],
                outputs=RunOutputs(model_outputs=links[rid][1]),
            )
        )
    return result


# -- events ----------------------------------------------------------------------------


def run_created(run: Run) -> tracking_events.RunCreated:
    """The ``run.created`` payload."""
    info = run.info
    return tracking_events.RunCreated(
        run_id=info.run_id,
        experiment_id=info.experiment_id,
        run_name=info.run_name,
        user_id=info.user_id,
        status=_event_status(info.status),
        start_time=_timestamp(info.start_time),
        tags={t.key: t.value for t in run.data.tags},
        artifact_uri=info.artifact_uri,
    )


def run_finished(run: Run) -> tracking_events.RunFinished:
    """The ``run.finished`` payload: final status and everything logged."""
    info = run.info
    return tracking_events.RunFinished(
        run_id=info.run_id,
        experiment_id=info.experiment_id,
        run_name=info.run_name,
        user_id=info.user_id,
        status=_event_status(info.status),
        start_time=_timestamp(info.start_time),
        end_time=_timestamp(info.end_time),
        metrics={m.key: m.value for m in run.data.metrics},
        params={p.key: p.value for p in run.data.params},
        tags={t.key: t.value for t in run.data.tags},
        dataset_inputs=[
            tracking_events.DatasetInput(
                name=i.dataset.name,
                digest=i.dataset.digest,
                source_type=i.dataset.source_type,
                source=i.dataset.source,
                schema=i.dataset.schema_ or "",
                profile=i.dataset.profile or "",
                context=next((t.value for t in i.tags if t.key == DATASET_CONTEXT_TAG), ""),
            )
            for i in run.inputs.dataset_inputs
        ],
        artifact_uri=info.artifact_uri,
    )


def _event_status(status: RunStatus) -> Any:
    return tracking_events.RunStatus.Value(f"RUN_STATUS_{status.value}")


# -- helpers ---------------------------------------------------------------------------


async def _active_experiment(session: AsyncSession, experiment_id: str) -> Experiment:
    experiment = await experiment_entity(session, experiment_id)
    if experiment.lifecycle_stage is not LifecycleStage.ACTIVE:
        raise InvalidInput(
            f"The experiment {experiment_id} must be in the 'active' state. "
            f"Current state is {experiment.lifecycle_stage.value}."
        )
    return experiment


async def _active_experiment_location(session: AsyncSession, experiment_id: str) -> str:
    """The artifact location of an active experiment (NotFound, or InvalidInput if deleted)."""
    row = await _EXPERIMENT_LOCATION.first(session, experiment_id=_experiment_id(experiment_id))
    if row is None:
        raise NotFound(f"No Experiment with id={experiment_id} exists")
    location, stage = row
    if stage != LifecycleStage.ACTIVE.value:
        raise InvalidInput(
            f"The experiment {experiment_id} must be in the 'active' state. "
            f"Current state is {stage}."
        )
    return str(location)


async def _run_row(session: AsyncSession, run_id: str) -> Any:
    row = (await session.execute(select(runs).where(runs.c.run_uuid == run_id))).first()
    if row is None:
        raise NotFound(f"Run with id={run_id} not found")
    return row


class _RunState:
    def __init__(self, experiment_id: int, status: str) -> None:
        self.experiment_id = str(experiment_id)
        self.status = RunStatus(status)


async def _active_run(executor: Executor, run_id: str) -> _RunState:
    row = await _RUN_STATE.first(executor, run_id=run_id)
    if row is None:
        raise NotFound(f"Run with id={run_id} not found")
    experiment_id, status, stage = row
    if stage != LifecycleStage.ACTIVE.value:
        raise InvalidInput(
            f"The run {run_id} must be in the 'active' state. Current state is {stage}."
        )
    return _RunState(experiment_id, status)


def _last_per_key(items: Iterable[Tag]) -> list[Tag]:
    return list({t.key: t for t in items}.values())


async def _log_params(executor: Executor, run_id: str, params_: Sequence[Param]) -> None:
    wanted: dict[str, str] = {}
    for p in params_:
        if p.key in wanted and wanted[p.key] != p.value:
            raise InvalidInput(
                f"Duplicate parameter keys with different values in the batch: {p.key!r}"
            )
        wanted[p.key] = p.value
    # All the run's params: one statement whatever the batch (a run has few).
    existing = dict(await _RUN_PARAMS.all(executor, run_id=run_id))
    changed = {k: (existing[k], v) for k, v in wanted.items() if k in existing and existing[k] != v}
    if changed:
        key, (old, new) = next(iter(changed.items()))
        raise InvalidInput(
            f"Changing param values is not allowed. Param with key='{key}' was already logged "
            f"with value='{old}' for run ID='{run_id}'. Attempted logging new value '{new}'."
        )
    new_rows = [
        searched_row("run_uuid", run_id, k, v) for k, v in wanted.items() if k not in existing
    ]
    await _INSERT_PARAMS.execute_many(executor, new_rows)


async def _log_metrics(executor: Executor, run_id: str, metrics_: Sequence[Metric]) -> None:
    rows = [_metric_row(run_id, m) for m in metrics_]
    await _INSERT_METRICS.execute_many(executor, rows)
    # The latest value per key: highest step, then timestamp, then value (MLflow's rule),
    # first within the batch, then against the stored row by the upsert's condition.
    newest: dict[str, dict[str, Any]] = {}
    for row in rows:
        key = row["key"]
        if key not in newest or _order(row) >= _order(newest[key]):
            newest[key] = row
    await _UPSERT_LATEST_METRICS.execute_many(executor, list(newest.values()))


def _latest_metric_upsert(dialect: str) -> Any:
    """Insert a latest value, or replace the stored one if the new one is not older."""
    lm = latest_metrics
    statement = dialect_insert(dialect, lm)
    new = statement.excluded
    not_older = or_(
        new.step > lm.c.step,
        and_(
            new.step == lm.c.step,
            or_(
                new.timestamp > lm.c.timestamp,
                and_(
                    new.timestamp == lm.c.timestamp,
                    # NaN compares false with any value, as in Python's tuple order.
                    new.is_nan == false(),
                    lm.c.is_nan == false(),
                    new.value >= lm.c.value,
                ),
            ),
        ),
    )
    return statement.on_conflict_do_update(
        index_elements=["run_uuid", "key"],
        set_={c: new[c] for c in ("value", "timestamp", "step", "is_nan")},
        where=not_older,
    )


async def _new_run_metrics(
    executor: Executor, run_id: str, metrics_: Sequence[Metric]
) -> list[Metric]:
    """Drop model-linked values the run already has: log_model sends the run's values again."""
    linked = [m for m in metrics_ if m.model_id]
    if not linked:
        return list(metrics_)
    query = select(
        metrics.c.key, metrics.c.step, metrics.c.timestamp, metrics.c.value, metrics.c.is_nan
    ).where(metrics.c.run_uuid == run_id, metrics.c.key.in_({m.key for m in linked}))
    rows = (await executor.execute(query)).all()
    existing = {(r.key, r.step, r.timestamp, _metric_value(r)) for r in rows}
    return [
        m
        for m in metrics_
        if not (m.model_id and (m.key, m.step, m.timestamp, m.value) in existing)
    ]


def _order(row: dict[str, Any]) -> tuple[int, int, float]:
    return (row["step"], row["timestamp"], math.nan if row["is_nan"] else row["value"])


# The statements of the per-call paths, through the driver (see Query).
_METRIC_COLUMNS = ("run_uuid", "key", "value", "timestamp", "step", "is_nan")
_SEARCHED_COLUMNS = ("run_uuid", "key", "value", "value_prefix")
_RUN_COLUMNS = (
    "run_uuid",
    "name",
    "experiment_id",
    "user_id",
    "status",
    "start_time",
    "artifact_uri",
)
_INSERT_METRICS = Query(lambda _dialect: insert(metrics), _METRIC_COLUMNS)
_UPSERT_LATEST_METRICS = Query(_latest_metric_upsert, _METRIC_COLUMNS)
_INSERT_PARAMS = Query(lambda _dialect: insert(params), _SEARCHED_COLUMNS)
_INSERT_TAGS = Query(lambda _dialect: insert(tags), _SEARCHED_COLUMNS)
_UPSERT_TAGS = Query(
    lambda dialect: upsert_statement(dialect, tags, _SEARCHED_COLUMNS, ("run_uuid", "key")),
    _SEARCHED_COLUMNS,
)
_INSERT_RUN = Query(lambda _dialect: insert(runs), _RUN_COLUMNS)
_INSERT_METRIC_OF_ACTIVE_RUN = Query(
    lambda _dialect: insert(metrics).from_select(
        list(_METRIC_COLUMNS),
        select(*(bindparam(c) for c in _METRIC_COLUMNS)).where(
            select(runs.c.run_uuid)
            .where(
                runs.c.run_uuid == bindparam("run_uuid"),
                runs.c.lifecycle_stage == LifecycleStage.ACTIVE.value,
            )
            .exists()
        ),
    )
)
_RUN_STATE = Query(
    lambda _dialect: select(runs.c.experiment_id, runs.c.status, runs.c.lifecycle_stage).where(
        runs.c.run_uuid == bindparam("run_id")
    )
)
_RUN_PARAMS = Query(
    lambda _dialect: select(params.c.key, params.c.value).where(
        params.c.run_uuid == bindparam("run_id")
    )
)
_EXPERIMENT_LOCATION = Query(
    lambda _dialect: select(experiments.c.artifact_location, experiments.c.lifecycle_stage).where(
        experiments.c.experiment_id == bindparam("experiment_id")
    )
)


__all__ = [
    "DEFAULT_EXPERIMENT_ID",
    "TrackingStore",
    "experiment_entity",
    "now_ms",
    "run_entities",
    "run_entity",
]
