"""Logged models in SQL: their rows, tags, params, metrics and links to runs.

Every method runs in the caller's transaction (a session, or for the metrics a Core
connection too); the use cases (:mod:`driftloop_tracking.service_layer.logged_models`)
open it, check the rules and decide.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from driftloop_tracking.adapters.logged_model_search_sql import logged_model_search_query
from driftloop_tracking.adapters.sql import Executor, dialect_of, upsert
from driftloop_tracking.adapters.tables import (
    logged_model_metrics,
    logged_model_params,
    logged_model_tags,
    logged_models,
    run_models,
)
from driftloop_tracking.domain.logged_models import (
    LoggedModel,
    LoggedModelData,
    LoggedModelInfo,
    LoggedModelMetric,
    LoggedModelStatus,
    ModelSearch,
)
from driftloop_tracking.domain.model import ModelInput, ModelOutput, Param, Tag

__all__ = ["SqlLoggedModelStore", "logged_model_entities", "run_model_links"]


class SqlLoggedModelStore:
    """Logged models in the tracking database (a :class:`LoggedModelStorePort`)."""

    async def insert(
        self,
        session: AsyncSession,
        *,
        model: LoggedModelInfo,
        params: Mapping[str, str],
        tags: Mapping[str, str],
    ) -> None:
        """Write a new model with its params and tags."""
        await session.execute(
            insert(logged_models).values(
                model_id=model.model_id,
                experiment_id=int(model.experiment_id),
                name=model.name,
                artifact_location=model.artifact_uri,
                creation_timestamp_ms=model.creation_timestamp_ms,
                last_updated_timestamp_ms=model.last_updated_timestamp_ms,
                status=model.status.short,
                model_type=model.model_type,
                source_run_id=model.source_run_id,
            )
        )
        if params:
            await session.execute(
                insert(logged_model_params),
                [{"model_id": model.model_id, "key": k, "value": v} for k, v in params.items()],
            )
        if tags:
            await session.execute(
                insert(logged_model_tags),
                [{"model_id": model.model_id, "key": k, "value": v} for k, v in tags.items()],
            )

    async def lifecycle_stage(self, session: AsyncSession, model_id: str) -> str | None:
        """The model's lifecycle stage, or ``None`` if there is no such model."""
        stage = await session.scalar(
            select(logged_models.c.lifecycle_stage).where(logged_models.c.model_id == model_id)
        )
        return None if stage is None else str(stage)

    async def update(self, session: AsyncSession, model_id: str, values: Mapping[str, Any]) -> None:
        """Set columns of the model's row (``status``, ``lifecycle_stage``, ...)."""
        await session.execute(
            update(logged_models).where(logged_models.c.model_id == model_id).values(**values)
        )

    async def upsert_tags(
        self, session: AsyncSession, model_id: str, tags: Mapping[str, str]
    ) -> None:
        """Set (or overwrite) tags of the model."""
        for key, value in tags.items():
            await upsert(
                session,
                logged_model_tags,
                {"model_id": model_id, "key": key, "value": value},
                ("model_id", "key"),
            )

    async def delete_tag(self, session: AsyncSession, model_id: str, key: str) -> int:
        """Remove a tag of the model; how many rows went (0 or 1)."""
        result = await session.execute(
            delete(logged_model_tags).where(
                logged_model_tags.c.model_id == model_id, logged_model_tags.c.key == key
            )
        )
        return int(result.rowcount)  # type: ignore[attr-defined]

    async def params(
        self, session: AsyncSession, model_id: str, keys: Sequence[str]
    ) -> dict[str, str]:
        """The model's logged params among ``keys``."""
        rows = await session.execute(
            select(logged_model_params.c.key, logged_model_params.c.value).where(
                logged_model_params.c.model_id == model_id,
                logged_model_params.c.key.in_(list(keys)),
            )
        )
        return {str(k): str(v) for k, v in rows.all()}

    async def insert_params(
        self, session: AsyncSession, model_id: str, params: Mapping[str, str]
    ) -> None:
        """Write new params of the model."""
        if params:
            await session.execute(
                insert(logged_model_params),
                [{"model_id": model_id, "key": k, "value": v} for k, v in params.items()],
            )

    async def search_ids(self, session: AsyncSession, request: ModelSearch) -> list[str]:
        """The ids of the request's page and of the first model after it (if any)."""
        query = logged_model_search_query(request, dialect_of(session).name)
        return [str(i) for i in (await session.scalars(query)).all()]

    async def existing_ids(self, executor: Executor, model_ids: Sequence[str]) -> set[str]:
        """Those of ``model_ids`` that name a logged model (deleted ones too)."""
        found = await executor.scalars(
            select(logged_models.c.model_id).where(logged_models.c.model_id.in_(set(model_ids)))
        )
        return {str(i) for i in found.all()}

    async def upsert_metrics(
        self, executor: Executor, run_id: str, metrics: Sequence[LoggedModelMetric]
    ) -> None:
        """Write metric values of models; the same value again is a no-op."""
        for metric in metrics:
            is_nan = math.isnan(metric.value)
            row: dict[str, Any] = {
                "model_id": metric.model_id,
                "key": metric.key,
                "value": 0.0 if is_nan else metric.value,
                "timestamp": metric.timestamp,
                "step": metric.step,
                "run_id": metric.run_id or run_id,
                "dataset_name": metric.dataset_name or None,
                "dataset_digest": metric.dataset_digest or None,
                "is_nan": is_nan,
            }
            await upsert(
                executor, logged_model_metrics, row, ("model_id", "key", "step", "timestamp")
            )

    async def link_run(
        self,
        session: AsyncSession,
        *,
        run_id: str,
        direction: str,
        models: Sequence[tuple[str, int]],
    ) -> None:
        """Link models to a run as its inputs (``"input"``) or outputs (``"output"``).

        Args:
            session: The open transaction.
            run_id: The run.
            direction: ``"input"`` (log-inputs ``models``) or ``"output"`` (runs/outputs).
            models: ``(model_id, step)`` pairs; the step is 0 for inputs.
        """
        for model_id, step in models:
            await upsert(
                session,
                run_models,
                {"run_uuid": run_id, "model_id": model_id, "direction": direction, "step": step},
                ("run_uuid", "direction", "model_id"),
            )

    async def entities(self, session: AsyncSession, model_ids: Sequence[str]) -> list[LoggedModel]:
        """The MLflow-shaped models, in the order given (missing ones left out)."""
        return await logged_model_entities(session, model_ids)


async def run_model_links(
    session: AsyncSession, run_ids: Sequence[str]
) -> dict[str, tuple[list[ModelInput], list[ModelOutput]]]:
    """The logged models each run used and produced, for ``run.inputs``/``run.outputs``.

    Returns:
        ``{run_id: (model_inputs, model_outputs)}`` for every run id given.
    """
    links: dict[str, tuple[list[ModelInput], list[ModelOutput]]] = {
        run_id: ([], []) for run_id in run_ids
    }
    if not run_ids:
        return links
    rows = (
        await session.execute(
            select(run_models)
            .where(run_models.c.run_uuid.in_(list(run_ids)))
            .order_by(run_models.c.model_id)
        )
    ).all()
    for row in rows:
        inputs, outputs = links[row.run_uuid]
        if row.direction == "input":
            inputs.append(ModelInput(model_id=row.model_id))
        else:
            outputs.append(ModelOutput(model_id=row.model_id, step=row.step))
    return links


async def logged_model_entities(
    session: AsyncSession, model_ids: Sequence[str]
) -> list[LoggedModel]:
    """Build the MLflow-shaped models with one query per table, in the order given."""
    ids = list(model_ids)
    if not ids:
        return []
    rows = {
        r.model_id: r
        for r in (
            await session.execute(select(logged_models).where(logged_models.c.model_id.in_(ids)))
        ).all()
    }
    tags: dict[str, list[Tag]] = {i: [] for i in rows}
    for r in (
        await session.execute(
            select(logged_model_tags)
            .where(logged_model_tags.c.model_id.in_(ids))
            .order_by(logged_model_tags.c.key)
        )
    ).all():
        tags[r.model_id].append(Tag(key=r.key, value=r.value))
    data: dict[str, LoggedModelData] = {i: LoggedModelData() for i in rows}
    for r in (
        await session.execute(
            select(logged_model_params)
            .where(logged_model_params.c.model_id.in_(ids))
            .order_by(logged_model_params.c.key)
        )
    ).all():
        data[r.model_id].params.append(Param(key=r.key, value=r.value))
    for r in (
        await session.execute(
            select(logged_model_metrics)
            .where(logged_model_metrics.c.model_id.in_(ids))
            .order_by(
                logged_model_metrics.c.key,
                logged_model_metrics.c.step,
                logged_model_metrics.c.timestamp,
            )
        )
    ).all():
        data[r.model_id].metrics.append(
            LoggedModelMetric(
                key=r.key,
                value=math.nan if getattr(r, "is_nan", False) else r.value,
                timestamp=r.timestamp,
                step=r.step,
                model_id=r.model_id,
                run_id=r.run_id,
                dataset_name=r.dataset_name,
                dataset_digest=r.dataset_digest,
            )
        )
    result = []
    for model_id in ids:
        row = rows.get(model_id)
        if row is None:
            continue
        result.append(
            LoggedModel(
                info=LoggedModelInfo(
                    model_id=row.model_id,
                    experiment_id=str(row.experiment_id),
                    name=row.name,
                    creation_timestamp_ms=row.creation_timestamp_ms,
                    last_updated_timestamp_ms=row.last_updated_timestamp_ms,
                    artifact_uri=row.artifact_location,
                    status=LoggedModelStatus.from_short(row.status),
                    model_type=row.model_type,
                    source_run_id=row.source_run_id,
                    status_message=row.status_message,
                    tags=tags[model_id],
                ),
                data=data[model_id],
            )
        )
    return result
