"""Experiments: create, read, rename, delete and restore, tag; and experiment search."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from driftloop_kit.errors import InvalidInput, NotFound
from driftloop_tracking.domain import names
from driftloop_tracking.domain.model import Experiment, LifecycleStage, Tag
from driftloop_tracking.domain.runs import (
    DEFAULT_EXPERIMENT_ID,
    DEFAULT_EXPERIMENT_NAME,
    now_ms,
)
from driftloop_tracking.domain.runs import (
    experiment_id as parse_experiment_id,
)
from driftloop_tracking.domain.search import ExperimentSearch
from driftloop_tracking.domain.validation import (
    validate_experiment_name,
    validate_key,
    validate_tag_value,
)
from driftloop_tracking.service_layer.ports import RunStorePort, TransactionsPort

__all__ = ["Experiments"]


@dataclass(frozen=True, kw_only=True, slots=True)
class Experiments:
    """The experiment use cases.

    Args:
        database: Opens the transactions.
        store: The experiments' rows.
    """

    database: TransactionsPort
    store: RunStorePort

    async def ensure_default(self) -> None:
        """Create experiment ``0`` ("Default"), which MLflow clients use when none is set."""
        async with self.database.session() as session:
            if not await self.store.has_experiment(session, 0):
                await self.store.insert_experiment(
                    session,
                    experiment_id=0,
                    name=DEFAULT_EXPERIMENT_NAME,
                    artifact_location=names.experiment_artifact_location(DEFAULT_EXPERIMENT_ID),
                    at=now_ms(),
                )

    async def create(
        self, *, name: str, artifact_location: str | None = None, tags_: Sequence[Tag] = ()
    ) -> str:
        """Create an experiment; return its id (AlreadyExists if the name is taken)."""
        validate_experiment_name(name)
        for tag in tags_:
            validate_key(tag.key, "tag")
        async with self.database.session() as session:
            experiment_id = await self.store.insert_experiment(
                session,
                name=name,
                artifact_location=artifact_location or "",
                at=now_ms(),
                tags_=tags_,
            )
            if not artifact_location:
                await self.store.update_experiment(
                    session,
                    int(experiment_id),
                    {"artifact_location": names.experiment_artifact_location(experiment_id)},
                )
        return experiment_id

    async def get(self, experiment_id: str) -> Experiment:
        """The experiment, or NotFound."""
        async with self.database.session() as session:
            return await self.store.experiment(session, experiment_id)

    async def get_by_name(self, name: str) -> Experiment:
        """The experiment named ``name``, or NotFound."""
        async with self.database.session() as session:
            found = await self.store.experiment_id_named(session, name)
            if found is None:
                raise NotFound(f"Could not find experiment with name '{name}'")
            return await self.store.experiment(session, found)

    async def rename(self, *, experiment_id: str, new_name: str) -> None:
        """Rename an active experiment."""
        validate_experiment_name(new_name)
        async with self.database.session() as session:
            await self._active(session, experiment_id)
            await self.store.update_experiment(
                session,
                parse_experiment_id(experiment_id),
                {"name": new_name, "last_update_time": now_ms()},
            )

    async def set_lifecycle(self, *, experiment_id: str, stage: LifecycleStage) -> None:
        """Delete (soft) or restore an experiment and its runs."""
        async with self.database.session() as session:
            experiment = await self.store.experiment(session, experiment_id)
            if experiment_id == DEFAULT_EXPERIMENT_ID and stage is LifecycleStage.DELETED:
                raise InvalidInput("Cannot delete the default experiment '0'.")
            if experiment.lifecycle_stage is stage:
                raise InvalidInput(
                    f"Cannot {'delete' if stage is LifecycleStage.DELETED else 'restore'} "
                    f"experiment {experiment_id}: its lifecycle stage is already {stage.value}."
                )
            await self.store.set_experiment_lifecycle(session, int(experiment_id), stage, now_ms())

    async def set_tag(self, *, experiment_id: str, key: str, value: str) -> None:
        """Set (or overwrite) a tag of an active experiment."""
        validate_key(key, "tag")
        validate_tag_value(value)
        async with self.database.session() as session:
            await self._active(session, experiment_id)
            await self.store.upsert_experiment_tag(session, int(experiment_id), key, value)

    async def delete_tag(self, *, experiment_id: str, key: str) -> None:
        """Remove a tag of an active experiment, or NotFound."""
        async with self.database.session() as session:
            await self._active(session, experiment_id)
            if not await self.store.delete_experiment_tag(session, int(experiment_id), key):
                raise NotFound(f"No tag with name: {key} in experiment {experiment_id}")

    async def search(self, search: ExperimentSearch) -> tuple[list[Experiment], str | None]:
        """One page of experiments matching ``search``, and the next page's token (if any)."""
        async with self.database.session() as session:
            ids = await self.store.experiment_page_ids(session, search)
            has_more = len(ids) > search.max_results
            found = await self.store.experiments(session, ids[: search.max_results])
        return found, search.next_page_token(has_more)

    async def _active(self, session: AsyncSession, experiment_id: str) -> Experiment:
        experiment = await self.store.experiment(session, experiment_id)
        if experiment.lifecycle_stage is not LifecycleStage.ACTIVE:
            raise InvalidInput(
                f"The experiment {experiment_id} must be in the 'active' state. "
                f"Current state is {experiment.lifecycle_stage.value}."
            )
        return experiment
