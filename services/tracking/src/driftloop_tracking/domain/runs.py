"""Rules of experiments and runs that need no I/O: ids, states, tags, params, metrics."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from driftloop_kit.errors import InvalidInput, NotFound
from driftloop_tracking.domain import names
from driftloop_tracking.domain.model import LifecycleStage, Metric, Param, RunStatus, Tag
from driftloop_tracking.domain.validation import validate_key, validate_tag_value

__all__ = [
    "DATASET_CONTEXT_TAG",
    "DEFAULT_EXPERIMENT_ID",
    "DEFAULT_EXPERIMENT_NAME",
    "RUN_NAME_TAG",
    "USER_TAG",
    "ExperimentState",
    "RunState",
    "active_experiment_location",
    "active_run",
    "changed_param",
    "experiment_id",
    "last_per_key",
    "latest_per_key",
    "now_ms",
    "params_by_key",
    "run_not_found",
    "run_tags",
]

DEFAULT_EXPERIMENT_ID = "0"
DEFAULT_EXPERIMENT_NAME = "Default"
RUN_NAME_TAG = "mlflow.runName"
USER_TAG = "mlflow.user"
DATASET_CONTEXT_TAG = "mlflow.data.context"


def now_ms() -> int:
    """Milliseconds since the epoch, MLflow's time unit."""
    return int(datetime.now(UTC).timestamp() * 1000)


def experiment_id(value: str | int) -> int:
    """An experiment id as stored.

    Raises:
        InvalidInput: If ``value`` is not a number.
        NotFound: If it is beyond the ids a database holds (64 bits): no such experiment.
    """
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise InvalidInput(f"Invalid experiment ID: {value!r}") from None
    if not 0 <= number < 2**63:
        raise NotFound(f"No Experiment with id={value} exists")
    return number


def run_not_found(run_id: str) -> NotFound:
    """The error for a run that does not exist."""
    return NotFound(f"Run with id={run_id} not found")


@dataclass(frozen=True, slots=True)
class ExperimentState:
    """What creating something in an experiment needs of it."""

    artifact_location: str
    lifecycle_stage: str


@dataclass(frozen=True, slots=True)
class RunState:
    """What logging to a run needs of it."""

    experiment_id: str
    status: RunStatus
    lifecycle_stage: str


def active_experiment_location(experiment_id: str, state: ExperimentState | None) -> str:
    """The artifact location of an active experiment.

    Raises:
        NotFound: If there is no such experiment.
        InvalidInput: If it is deleted.
    """
    if state is None:
        raise NotFound(f"No Experiment with id={experiment_id} exists")
    if state.lifecycle_stage != LifecycleStage.ACTIVE.value:
        raise InvalidInput(
            f"The experiment {experiment_id} must be in the 'active' state. "
            f"Current state is {state.lifecycle_stage}."
        )
    return state.artifact_location


def active_run(run_id: str, state: RunState | None) -> RunState:
    """The state of an active run.

    Raises:
        NotFound: If there is no such run.
        InvalidInput: If it is deleted.
    """
    if state is None:
        raise run_not_found(run_id)
    if state.lifecycle_stage != LifecycleStage.ACTIVE.value:
        raise InvalidInput(
            f"The run {run_id} must be in the 'active' state. "
            f"Current state is {state.lifecycle_stage}."
        )
    return state


def run_tags(
    *, tags: Sequence[Tag], run_name: str | None, user_id: str
) -> tuple[str, dict[str, str]]:
    """A new run's name and tags: ``mlflow.runName`` (made up if none) and ``mlflow.user``.

    Raises:
        InvalidInput: On a bad tag, or a ``run_name`` that differs from the name tag.
    """
    tag_map = {t.key: t.value for t in tags}
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
    return name, tag_map


def last_per_key(items: Iterable[Tag]) -> list[Tag]:
    """One tag per key, the last given."""
    return list({t.key: t for t in items}.values())


def params_by_key(params: Sequence[Param]) -> dict[str, str]:
    """A batch's params by key.

    Raises:
        InvalidInput: If a key comes with two different values.
    """
    wanted: dict[str, str] = {}
    for p in params:
        if p.key in wanted and wanted[p.key] != p.value:
            raise InvalidInput(
                f"Duplicate parameter keys with different values in the batch: {p.key!r}"
            )
        wanted[p.key] = p.value
    return wanted


def changed_param(run_id: str, wanted: dict[str, str], existing: dict[str, str]) -> None:
    """Refuse a new value for a logged param (params are immutable).

    Raises:
        InvalidInput: Naming the first param whose value would change.
    """
    changed = {k: (existing[k], v) for k, v in wanted.items() if k in existing and existing[k] != v}
    if changed:
        key, (old, new) = next(iter(changed.items()))
        raise InvalidInput(
            f"Changing param values is not allowed. Param with key='{key}' was already logged "
            f"with value='{old}' for run ID='{run_id}'. Attempted logging new value '{new}'."
        )


def latest_per_key(metrics: Sequence[Metric]) -> list[Metric]:
    """The latest value of each key in a batch: highest step, then timestamp, then value.

    MLflow's rule; the store applies it again against the stored latest value.
    """
    newest: dict[str, tuple[tuple[int, int, float], Metric]] = {}
    for metric in metrics:
        value = metric.value
        # NaN compares false with any value, as in Python's tuple order (one NaN
        # object: two NaNs at the same step and time are equal, the later one wins).
        order = (metric.step, metric.timestamp, math.nan if value != value else value)  # noqa: PLR0124
        kept = newest.get(metric.key)
        if kept is None or order >= kept[0]:
            newest[metric.key] = (order, metric)
    return [metric for _, metric in newest.values()]
