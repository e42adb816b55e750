"""MLflow 3 logged models: create, finalize, tag, log params, search, delete; run outputs.

See :mod:`driftloop_tracking.domain.logged_models` for how the mlflow client uses them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from driftloop_kit.errors import InvalidInput, NotFound
from driftloop_tracking.domain import names
from driftloop_tracking.domain.logged_models import (
    DatasetFilter,
    LoggedModel,
    LoggedModelInfo,
    LoggedModelStatus,
    ModelOrderBy,
    check_params,
    check_tags,
    model_artifact_location,
    model_not_found,
    model_search,
    new_model_id,
    now_ms,
    validate_model_name,
)
from driftloop_tracking.domain.model import LifecycleStage, ModelOutput, Param, Tag
from driftloop_tracking.domain.runs import (
    active_experiment_location,
    active_run,
    run_not_found,
)
from driftloop_tracking.domain.runs import (
    experiment_id as parse_experiment_id,
)
from driftloop_tracking.domain.search import encode_page_token
from driftloop_tracking.service_layer.ports import (
    LoggedModelStorePort,
    RunStorePort,
    TransactionsPort,
)

__all__ = ["LoggedModels"]


@dataclass(frozen=True, kw_only=True, slots=True)
class LoggedModels:
    """The logged-model use cases.

    Args:
        database: Opens the transactions (the tracking database's).
        store: The logged models.
        runs: Experiments and runs (a model lives in one and may come from the other).
    """

    database: TransactionsPort
    store: LoggedModelStorePort
    runs: RunStorePort

    async def create(
        self,
        *,
        experiment_id: str,
        name: str | None = None,
        model_type: str | None = None,
        source_run_id: str | None = None,
        params: Sequence[Param] = (),
        tags: Sequence[Tag] = (),
    ) -> LoggedModel:
        """Create a ``PENDING`` model in an active experiment; a random name if none is given.

        Raises:
            NotFound: If the experiment or the source run does not exist.
            InvalidInput: On a bad name, key or value, or a deleted experiment.
        """
        validate_model_name(name)
        param_map = check_params(params)
        tag_map = check_tags(tags)
        model_id = new_model_id()
        at = now_ms()
        experiment = parse_experiment_id(experiment_id)
        async with self.database.session() as session:
            state = await self.runs.experiment_state(session, experiment)
            location = active_experiment_location(experiment_id, state)
            if source_run_id and await self.runs.run_state(session, source_run_id) is None:
                raise run_not_found(source_run_id)
            info = LoggedModelInfo(
                model_id=model_id,
                experiment_id=str(experiment),
                name=name or names.random_run_name(),
                creation_timestamp_ms=at,
                last_updated_timestamp_ms=at,
                artifact_uri=model_artifact_location(location, model_id),
                status=LoggedModelStatus.PENDING,
                model_type=model_type or None,
                source_run_id=source_run_id or None,
            )
            await self.store.insert(session, model=info, params=param_map, tags=tag_map)
            return await self._entity(session, model_id)

    async def get(self, model_id: str, *, allow_deleted: bool = False) -> LoggedModel:
        """The model, or NotFound (also when it is deleted, unless ``allow_deleted``)."""
        async with self.database.session() as session:
            stage = await self._exists(session, model_id)
            if stage == LifecycleStage.DELETED.value and not allow_deleted:
                raise model_not_found(model_id)
            return await self._entity(session, model_id)

    async def finalize(self, *, model_id: str, status: LoggedModelStatus) -> LoggedModel:
        """Set the upload status (``READY`` once the files are uploaded, or ``FAILED``).

        Raises:
            NotFound: If the model does not exist.
            InvalidInput: For ``UNSPECIFIED``.
        """
        if status is LoggedModelStatus.UNSPECIFIED:
            raise InvalidInput("A logged model cannot be finalized with an unspecified status.")
        async with self.database.session() as session:
            await self._exists(session, model_id)
            await self.store.update(
                session, model_id, {"status": status.short, "last_updated_timestamp_ms": now_ms()}
            )
            return await self._entity(session, model_id)

    async def delete(self, model_id: str) -> None:
        """Soft-delete the model: gone from get and search, its files kept."""
        async with self.database.session() as session:
            await self._exists(session, model_id)
            await self.store.update(
                session,
                model_id,
                {
                    "lifecycle_stage": LifecycleStage.DELETED.value,
                    "last_updated_timestamp_ms": now_ms(),
                },
            )

    async def set_tags(self, *, model_id: str, tags: Sequence[Tag]) -> LoggedModel:
        """Set (or overwrite) tags of the model."""
        tag_map = check_tags(tags)
        async with self.database.session() as session:
            await self._exists(session, model_id)
            await self.store.upsert_tags(session, model_id, tag_map)
            return await self._entity(session, model_id)

    async def delete_tag(self, *, model_id: str, key: str) -> None:
        """Remove a tag of the model, or NotFound."""
        async with self.database.session() as session:
            await self._exists(session, model_id)
            if not await self.store.delete_tag(session, model_id, key):
                raise NotFound(f"No tag with key {key!r} found for model with ID {model_id!r}.")

    async def log_params(self, *, model_id: str, params: Sequence[Param]) -> None:
        """Log params of the model; like a run's, a param cannot change its value.

        Raises:
            NotFound: If the model does not exist.
            InvalidInput: On a bad key or value, or a new value for a logged param.
        """
        wanted = check_params(params)
        if not wanted:
            return
        async with self.database.session() as session:
            await self._exists(session, model_id)
            existing = await self.store.params(session, model_id, list(wanted))
            for key, value in wanted.items():
                if key in existing and existing[key] != value:
                    raise InvalidInput(
                        f"Changing param values is not allowed. Param with key='{key}' was "
                        f"already logged with value='{existing[key]}' for model ID='{model_id}'. "
                        f"Attempted logging new value '{value}'."
                    )
            new = {k: v for k, v in wanted.items() if k not in existing}
            await self.store.insert_params(session, model_id, new)

    async def search(
        self,
        *,
        experiment_ids: Sequence[str],
        filter_: str | None = None,
        datasets: Sequence[DatasetFilter] = (),
        max_results: int | None = None,
        order_by: Sequence[ModelOrderBy] = (),
        page_token: str | None = None,
    ) -> tuple[list[LoggedModel], str | None]:
        """Active models of the experiments that match ``filter_``, one page at a time.

        Args:
            experiment_ids: Experiments searched (at least one).
            filter_: MLflow filter over attributes, ``metrics.``, ``params.``, ``tags.``;
                ``OR``, ``NOT`` and parentheses are accepted too.
            datasets: Metric filters and metric ordering consider only metrics of these
                datasets; without metric filters, only models with metrics on them match.
            max_results: Page size (default 100).
            order_by: Attributes or ``metrics.<key>`` (its latest value); ties are broken
                by newest first, then model id.
            page_token: The ``next_page_token`` of the previous page.

        Returns:
            The page of models and the token of the next page, if there is one.

        Raises:
            InvalidInput: On a malformed filter, order_by, token, page size or experiment id.
        """
        request = model_search(
            experiment_ids=experiment_ids,
            filter_=filter_,
            datasets=datasets,
            max_results=max_results,
            order_by=order_by,
            page_token=page_token,
        )
        async with self.database.session() as session:
            ids = await self.store.search_ids(session, request)
            has_more = len(ids) > request.max_results
            models = await self.store.entities(session, ids[: request.max_results])
        token = (
            encode_page_token(request.offset + request.max_results, request.query)
            if has_more
            else None
        )
        return models, token

    async def log_outputs(self, *, run_id: str, outputs: Sequence[ModelOutput]) -> None:
        """Record models an active run produced (``runs/outputs``).

        Raises:
            NotFound: If the run or a model does not exist.
            InvalidInput: If the run is deleted.
        """
        async with self.database.session() as session:
            active_run(run_id, await self.runs.run_state(session, run_id))
            if not outputs:
                return
            wanted = {o.model_id for o in outputs}
            if missing := sorted(wanted - await self.store.existing_ids(session, list(wanted))):
                raise model_not_found(missing[0])
            await self.store.link_run(
                session,
                run_id=run_id,
                direction="output",
                models=[(o.model_id, o.step) for o in outputs],
            )

    async def _exists(self, session: AsyncSession, model_id: str) -> str:
        stage = await self.store.lifecycle_stage(session, model_id)
        if stage is None:
            raise model_not_found(model_id)
        return stage

    async def _entity(self, session: AsyncSession, model_id: str) -> LoggedModel:
        return (await self.store.entities(session, [model_id]))[0]
