"""Experiments, runs and what is logged to them, in SQL (the tracking store).

Every method runs in the caller's transaction: a session, or for the per-call paths
a Core connection (:meth:`~driftloop_kit.db.Database.connection`), whose statements
go through the driver (:mod:`driftloop_tracking.adapters.driver_sql`). The use cases
(:mod:`driftloop_tracking.service_layer`) open the transaction, check the rules and
decide what is written and published.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import and_, bindparam, delete, false, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from driftloop_kit.errors import AlreadyExists, NotFound
from driftloop_tracking.adapters import search_sql
from driftloop_tracking.adapters.driver_sql import Query
from driftloop_tracking.adapters.logged_models import run_model_links
from driftloop_tracking.adapters.search_sql import RunJSON
from driftloop_tracking.adapters.sql import Executor, dialect_insert, upsert, upsert_statement
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
from driftloop_tracking.domain.model import (
    Dataset,
    DatasetInput,
    Experiment,
    LifecycleStage,
    Metric,
    Param,
    Run,
    RunData,
    RunInfo,
    RunInputs,
    RunOutputs,
    RunStatus,
    Tag,
)
from driftloop_tracking.domain.runs import ExperimentState, RunState
from driftloop_tracking.domain.runs import experiment_id as _experiment_id
from driftloop_tracking.domain.search import ExperimentSearch, RunSearch

__all__ = ["SqlTrackingStore", "experiment_entity", "run_entities"]


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


class SqlTrackingStore:
    """Experiments and runs in the service's database (a :class:`RunStorePort`)."""

    # -- experiments -------------------------------------------------------------------

    async def has_experiment(self, session: AsyncSession, experiment_id: int) -> bool:
        """Whether the experiment exists (deleted or not)."""
        found = await session.scalar(
            select(experiments.c.experiment_id).where(experiments.c.experiment_id == experiment_id)
        )
        return found is not None

    async def experiment_id_named(self, session: AsyncSession, name: str) -> str | None:
        """The id of the experiment named ``name``, if there is one."""
        found = await session.scalar(
            select(experiments.c.experiment_id).where(experiments.c.name == name)
        )
        return None if found is None else str(found)

    async def experiment(self, session: AsyncSession, experiment_id: str) -> Experiment:
        """The experiment with its tags, or NotFound."""
        return await experiment_entity(session, experiment_id)

    async def experiment_state(
        self, executor: Executor, experiment_id: int
    ) -> ExperimentState | None:
        """The experiment's artifact location and lifecycle stage, if it exists."""
        row = await _EXPERIMENT_LOCATION.first(executor, experiment_id=experiment_id)
        return None if row is None else ExperimentState(str(row[0]), str(row[1]))

    async def insert_experiment(
        self,
        session: AsyncSession,
        *,
        name: str,
        artifact_location: str,
        at: int,
        tags_: Sequence[Tag] = (),
        experiment_id: int | None = None,
    ) -> str:
        """Write a new experiment with its tags; its id.

        Raises:
            AlreadyExists: If the name is taken.
        """
        values: dict[str, Any] = {
            "name": name,
            "artifact_location": artifact_location,
            "creation_time": at,
            "last_update_time": at,
        }
        if experiment_id is not None:
            values["experiment_id"] = experiment_id
        try:
            result = await session.execute(
                insert(experiments).values(**values).returning(experiments.c.experiment_id)
            )
            new_id = int(result.scalar_one())
            if tags_:
                await session.execute(
                    insert(experiment_tags),
                    [{"experiment_id": new_id, "key": t.key, "value": t.value} for t in tags_],
                )
        except IntegrityError:
            raise AlreadyExists(f"Experiment '{name}' already exists.") from None
        return str(new_id)

    async def update_experiment(
        self, session: AsyncSession, experiment_id: int, values: Mapping[str, Any]
    ) -> None:
        """Set columns of the experiment (``name``, ``artifact_location``, ...).

        Raises:
            AlreadyExists: If a new name is taken.
        """
        try:
            await session.execute(
                update(experiments)
                .where(experiments.c.experiment_id == experiment_id)
                .values(**values)
            )
        except IntegrityError:
            raise AlreadyExists(f"Experiment '{values.get('name')}' already exists.") from None

    async def set_experiment_lifecycle(
        self, session: AsyncSession, experiment_id: int, stage: LifecycleStage, at: int
    ) -> None:
        """Delete (soft) or restore an experiment and all its runs."""
        await session.execute(
            update(experiments)
            .where(experiments.c.experiment_id == experiment_id)
            .values(lifecycle_stage=stage.value, last_update_time=at)
        )
        await session.execute(
            update(runs)
            .where(runs.c.experiment_id == experiment_id)
            .values(
                lifecycle_stage=stage.value,
                deleted_time=at if stage is LifecycleStage.DELETED else None,
            )
        )

    async def upsert_experiment_tag(
        self, session: AsyncSession, experiment_id: int, key: str, value: str
    ) -> None:
        """Set (or overwrite) a tag of the experiment."""
        await upsert(
            session,
            experiment_tags,
            {"experiment_id": experiment_id, "key": key, "value": value},
            ("experiment_id", "key"),
        )

    async def delete_experiment_tag(
        self, session: AsyncSession, experiment_id: int, key: str
    ) -> int:
        """Remove a tag of the experiment; how many rows went (0 or 1)."""
        result = await session.execute(
            delete(experiment_tags).where(
                experiment_tags.c.experiment_id == experiment_id, experiment_tags.c.key == key
            )
        )
        return int(result.rowcount)  # type: ignore[attr-defined]

    # -- runs --------------------------------------------------------------------------

    async def insert_run(self, executor: Executor, run: Run) -> None:
        """Write a new run and its tags."""
        info = run.info
        await _INSERT_RUN.execute_many(
            executor,
            [
                {
                    "run_uuid": info.run_id,
                    "name": info.run_name,
                    "experiment_id": int(info.experiment_id),
                    "user_id": info.user_id,
                    "status": info.status.value,
                    "start_time": info.start_time,
                    "artifact_uri": info.artifact_uri,
                }
            ],
        )
        await _INSERT_TAGS.execute_many(
            executor,
            [searched_row("run_uuid", info.run_id, t.key, t.value) for t in run.data.tags],
        )

    async def run_state(self, executor: Executor, run_id: str) -> RunState | None:
        """The run's experiment, status and lifecycle stage, if it exists."""
        row = await _RUN_STATE.first(executor, run_id=run_id)
        if row is None:
            return None
        experiment_id, status, stage = row
        return RunState(str(experiment_id), RunStatus(status), str(stage))

    async def runs(self, session: AsyncSession, run_ids: Sequence[str]) -> list[Run]:
        """The MLflow-shaped runs, in the order of ``run_ids`` (missing ones left out)."""
        return await run_entities(session, run_ids)

    async def update_run(
        self, session: AsyncSession, run_id: str, values: Mapping[str, Any]
    ) -> None:
        """Set columns of the run (``status``, ``end_time``, ``name``, ...)."""
        await session.execute(update(runs).where(runs.c.run_uuid == run_id).values(**values))

    async def set_run_lifecycle(
        self, session: AsyncSession, run_id: str, stage: LifecycleStage, deleted_time: int | None
    ) -> None:
        """Delete (soft) or restore a run."""
        await self.update_run(
            session, run_id, {"lifecycle_stage": stage.value, "deleted_time": deleted_time}
        )

    async def delete_run_tag(self, session: AsyncSession, run_id: str, key: str) -> int:
        """Remove a tag of the run; how many rows went (0 or 1)."""
        result = await session.execute(
            delete(tags).where(tags.c.run_uuid == run_id, tags.c.key == key)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]

    # -- logging -----------------------------------------------------------------------

    async def insert_metric_of_active_run(
        self, executor: Executor, run_id: str, metric: Metric
    ) -> bool:
        """Append a value to the history if the run is active (``INSERT ... SELECT ...
        WHERE EXISTS``, the run is not read first); whether it was."""
        return bool(
            await _INSERT_METRIC_OF_ACTIVE_RUN.execute(executor, **_metric_row(run_id, metric))
        )

    async def insert_metrics(
        self, executor: Executor, run_id: str, metrics_: Sequence[Metric]
    ) -> None:
        """Append values to the run's metric history."""
        await _INSERT_METRICS.execute_many(executor, [_metric_row(run_id, m) for m in metrics_])

    async def upsert_latest_metrics(
        self, executor: Executor, run_id: str, metrics_: Sequence[Metric]
    ) -> None:
        """Make each value its key's latest, unless the stored one is newer (MLflow's rule:
        highest step, then timestamp, then value)."""
        await _UPSERT_LATEST_METRICS.execute_many(
            executor, [_metric_row(run_id, m) for m in metrics_]
        )

    async def metric_values(
        self, executor: Executor, run_id: str, keys: set[str]
    ) -> set[tuple[str, int, int, float]]:
        """The run's logged ``(key, step, timestamp, value)`` of ``keys``."""
        query = select(
            metrics.c.key, metrics.c.step, metrics.c.timestamp, metrics.c.value, metrics.c.is_nan
        ).where(metrics.c.run_uuid == run_id, metrics.c.key.in_(keys))
        rows = (await executor.execute(query)).all()
        return {(r.key, r.step, r.timestamp, _metric_value(r)) for r in rows}

    async def run_params(self, executor: Executor, run_id: str) -> dict[str, str]:
        """All the run's params: one statement whatever the batch (a run has few)."""
        return dict(await _RUN_PARAMS.all(executor, run_id=run_id))

    async def insert_params(
        self, executor: Executor, run_id: str, params_: Mapping[str, str]
    ) -> None:
        """Write new params of the run."""
        await _INSERT_PARAMS.execute_many(
            executor, [searched_row("run_uuid", run_id, k, v) for k, v in params_.items()]
        )

    async def upsert_tags(self, executor: Executor, run_id: str, tags_: Sequence[Tag]) -> None:
        """Set (or overwrite) tags of the run (one per key)."""
        await _UPSERT_TAGS.execute_many(
            executor, [searched_row("run_uuid", run_id, t.key, t.value) for t in tags_]
        )

    async def metric_history(
        self,
        session: AsyncSession,
        *,
        run_id: str,
        key: str,
        max_results: int | None = None,
        offset: int = 0,
    ) -> list[Metric]:
        """Every value logged for ``key`` in the run, by step then time."""
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

    async def dataset_id(
        self, session: AsyncSession, experiment_id: int, dataset: Dataset
    ) -> str | None:
        """The id of the experiment's dataset with ``dataset``'s name and digest, if any."""
        found = await session.scalar(
            select(datasets.c.dataset_uuid).where(
                datasets.c.experiment_id == experiment_id,
                datasets.c.name == dataset.name,
                datasets.c.digest == dataset.digest,
            )
        )
        return None if found is None else str(found)

    async def insert_dataset(
        self, session: AsyncSession, dataset_id: str, experiment_id: int, dataset: Dataset
    ) -> None:
        """Write a dataset of the experiment."""
        await session.execute(
            insert(datasets).values(
                dataset_uuid=dataset_id,
                experiment_id=experiment_id,
                name=dataset.name,
                digest=dataset.digest,
                source_type=dataset.source_type,
                source=dataset.source,
                schema=dataset.schema_,
                profile=dataset.profile,
            )
        )

    async def upsert_run_input(
        self, session: AsyncSession, run_id: str, dataset_id: str, tags_: Sequence[Tag]
    ) -> None:
        """Record that the run used the dataset (with the input's tags)."""
        await upsert(
            session,
            run_inputs,
            {
                "run_uuid": run_id,
                "dataset_uuid": dataset_id,
                "tags": [t.model_dump() for t in tags_],
            },
            ("run_uuid", "dataset_uuid"),
        )

    # -- search ------------------------------------------------------------------------

    async def run_page_ids(self, executor: Executor, search: RunSearch) -> list[str]:
        """The ids of the search's page and of the first run after it (if any)."""
        return await search_sql.page_ids(executor, search)

    async def run_page(self, executor: Executor, run_ids: Sequence[str]) -> list[RunJSON]:
        """The runs in MLflow's JSON form, in the order of ``run_ids``."""
        return await search_sql.run_page(executor, run_ids)

    async def experiment_page_ids(
        self, session: AsyncSession, search: ExperimentSearch
    ) -> list[int]:
        """The ids of the search's page and of the first experiment after it (if any)."""
        return await search_sql.experiment_page_ids(session, search)

    async def experiments(self, session: AsyncSession, ids: Sequence[int]) -> list[Experiment]:
        """The experiments with their tags, in the order of ``ids``."""
        return await search_sql.experiment_entities(session, ids)


# -- entities ----------------------------------------------------------------------------


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
