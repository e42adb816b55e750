"""What the tracking use cases need of the world, as protocols.

The real classes (:class:`~driftloop_tracking.adapters.store.SqlTrackingStore`,
:class:`~driftloop_tracking.adapters.logged_models.SqlLoggedModelStore`,
:class:`~driftloop_kit.artifacts.ArtifactRepository`, :class:`~driftloop_kit.db.Database`,
the bus's outbox) and the test fakes (``tests/fakes/tracking.py``,
``tests/fakes/common.py``) both fit them, checked by mypy.

The stores' methods run in a transaction the use case opens (``executor``: a session,
or on the per-call paths a lighter Core connection) and hold no rules: the use cases
check, decide and publish.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from driftloop_bus.ports import OutboxPort
from driftloop_kit.artifacts import FileInfo
from driftloop_tracking.domain.logged_models import (
    LoggedModel,
    LoggedModelInfo,
    LoggedModelMetric,
    ModelSearch,
)
from driftloop_tracking.domain.model import (
    Dataset,
    Experiment,
    LifecycleStage,
    Metric,
    Run,
    Tag,
)
from driftloop_tracking.domain.runs import ExperimentState, RunState
from driftloop_tracking.domain.search import ExperimentSearch, RunSearch

__all__ = [
    "ArtifactStorePort",
    "Executor",
    "LoggedModelStorePort",
    "OutboxPort",
    "RunLookupPort",
    "RunStorePort",
    "TransactionsPort",
]

#: Where a store runs its statements: a session, or a Core connection.
Executor = AsyncSession | AsyncConnection


class TransactionsPort(Protocol):
    """Opens the service database's transactions."""

    def session(self) -> AbstractAsyncContextManager[AsyncSession]:
        """A session in one transaction: committed on success, rolled back on error."""

    def connection(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """A Core connection in one transaction, for statements only (lighter)."""


class RunStorePort(Protocol):
    """Experiments, runs and what is logged to them."""

    async def has_experiment(self, session: AsyncSession, experiment_id: int) -> bool:
        """Whether the experiment exists (deleted or not)."""

    async def experiment_id_named(self, session: AsyncSession, name: str) -> str | None:
        """The id of the experiment named ``name``, if there is one."""

    async def experiment(self, session: AsyncSession, experiment_id: str) -> Experiment:
        """The experiment with its tags, or NotFound."""

    async def experiment_state(
        self, executor: Executor, experiment_id: int
    ) -> ExperimentState | None:
        """The experiment's artifact location and lifecycle stage, if it exists."""

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
        """Write a new experiment with its tags; its id (AlreadyExists if the name is taken)."""

    async def update_experiment(
        self, session: AsyncSession, experiment_id: int, values: Mapping[str, Any]
    ) -> None:
        """Set columns of the experiment (AlreadyExists if a new name is taken)."""

    async def set_experiment_lifecycle(
        self, session: AsyncSession, experiment_id: int, stage: LifecycleStage, at: int
    ) -> None:
        """Delete (soft) or restore an experiment and all its runs."""

    async def upsert_experiment_tag(
        self, session: AsyncSession, experiment_id: int, key: str, value: str
    ) -> None:
        """Set (or overwrite) a tag of the experiment."""

    async def delete_experiment_tag(
        self, session: AsyncSession, experiment_id: int, key: str
    ) -> int:
        """Remove a tag of the experiment; how many rows went."""

    async def insert_run(self, executor: Executor, run: Run) -> None:
        """Write a new run and its tags."""

    async def run_state(self, executor: Executor, run_id: str) -> RunState | None:
        """The run's experiment, status and lifecycle stage, if it exists."""

    async def runs(self, session: AsyncSession, run_ids: Sequence[str]) -> list[Run]:
        """The runs, in the order of ``run_ids`` (missing ones left out)."""

    async def update_run(
        self, session: AsyncSession, run_id: str, values: Mapping[str, Any]
    ) -> None:
        """Set columns of the run (``status``, ``end_time``, ``name``, ...)."""

    async def set_run_lifecycle(
        self, session: AsyncSession, run_id: str, stage: LifecycleStage, deleted_time: int | None
    ) -> None:
        """Delete (soft) or restore a run."""

    async def delete_run_tag(self, session: AsyncSession, run_id: str, key: str) -> int:
        """Remove a tag of the run; how many rows went."""

    async def insert_metric_of_active_run(
        self, executor: Executor, run_id: str, metric: Metric
    ) -> bool:
        """Append a value to the history if the run is active; whether it was."""

    async def insert_metrics(
        self, executor: Executor, run_id: str, metrics_: Sequence[Metric]
    ) -> None:
        """Append values to the run's metric history."""

    async def upsert_latest_metrics(
        self, executor: Executor, run_id: str, metrics_: Sequence[Metric]
    ) -> None:
        """Make each value its key's latest, unless the stored one is newer."""

    async def metric_values(
        self, executor: Executor, run_id: str, keys: set[str]
    ) -> set[tuple[str, int, int, float]]:
        """The run's logged ``(key, step, timestamp, value)`` of ``keys``."""

    async def run_params(self, executor: Executor, run_id: str) -> dict[str, str]:
        """All the run's params."""

    async def insert_params(
        self, executor: Executor, run_id: str, params_: Mapping[str, str]
    ) -> None:
        """Write new params of the run."""

    async def upsert_tags(self, executor: Executor, run_id: str, tags_: Sequence[Tag]) -> None:
        """Set (or overwrite) tags of the run (one per key)."""

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

    async def dataset_id(
        self, session: AsyncSession, experiment_id: int, dataset: Dataset
    ) -> str | None:
        """The id of the experiment's dataset with ``dataset``'s name and digest, if any."""

    async def insert_dataset(
        self, session: AsyncSession, dataset_id: str, experiment_id: int, dataset: Dataset
    ) -> None:
        """Write a dataset of the experiment."""

    async def upsert_run_input(
        self, session: AsyncSession, run_id: str, dataset_id: str, tags_: Sequence[Tag]
    ) -> None:
        """Record that the run used the dataset."""

    async def run_page_ids(self, executor: Executor, search: RunSearch) -> list[str]:
        """The ids of the search's page and of the first run after it (if any)."""

    async def run_page(self, executor: Executor, run_ids: Sequence[str]) -> list[dict[str, Any]]:
        """The runs in MLflow's JSON form, in the order of ``run_ids``."""

    async def experiment_page_ids(
        self, session: AsyncSession, search: ExperimentSearch
    ) -> list[int]:
        """The ids of the search's page and of the first experiment after it (if any)."""

    async def experiments(self, session: AsyncSession, ids: Sequence[int]) -> list[Experiment]:
        """The experiments with their tags, in the order of ``ids``."""


class LoggedModelStorePort(Protocol):
    """MLflow 3 logged models, their metrics and their links to runs."""

    async def insert(
        self,
        session: AsyncSession,
        *,
        model: LoggedModelInfo,
        params: Mapping[str, str],
        tags: Mapping[str, str],
    ) -> None:
        """Write a new model with its params and tags."""

    async def lifecycle_stage(self, session: AsyncSession, model_id: str) -> str | None:
        """The model's lifecycle stage, or ``None`` if there is no such model."""

    async def update(self, session: AsyncSession, model_id: str, values: Mapping[str, Any]) -> None:
        """Set columns of the model's row."""

    async def upsert_tags(
        self, session: AsyncSession, model_id: str, tags: Mapping[str, str]
    ) -> None:
        """Set (or overwrite) tags of the model."""

    async def delete_tag(self, session: AsyncSession, model_id: str, key: str) -> int:
        """Remove a tag of the model; how many rows went."""

    async def params(
        self, session: AsyncSession, model_id: str, keys: Sequence[str]
    ) -> dict[str, str]:
        """The model's logged params among ``keys``."""

    async def insert_params(
        self, session: AsyncSession, model_id: str, params: Mapping[str, str]
    ) -> None:
        """Write new params of the model."""

    async def search_ids(self, session: AsyncSession, request: ModelSearch) -> list[str]:
        """The ids of the request's page and of the first model after it (if any)."""

    async def existing_ids(self, executor: Executor, model_ids: Sequence[str]) -> set[str]:
        """Those of ``model_ids`` that name a logged model."""

    async def upsert_metrics(
        self, executor: Executor, run_id: str, metrics: Sequence[LoggedModelMetric]
    ) -> None:
        """Write metric values of models; the same value again is a no-op."""

    async def link_run(
        self,
        session: AsyncSession,
        *,
        run_id: str,
        direction: str,
        models: Sequence[tuple[str, int]],
    ) -> None:
        """Link models to a run as its inputs or outputs."""

    async def entities(self, session: AsyncSession, model_ids: Sequence[str]) -> list[LoggedModel]:
        """The models, in the order given (missing ones left out)."""


class ArtifactStorePort(Protocol):
    """The artifact files, below the configured root."""

    async def list_dir(self, path: str = "") -> list[FileInfo]:
        """The entries directly below ``path`` (NotFound if it does not exist)."""


class RunLookupPort(Protocol):
    """Finds a run by id (the artifact listing needs its artifact URI)."""

    async def get_run(self, run_id: str) -> Run:
        """The run, or NotFound."""
