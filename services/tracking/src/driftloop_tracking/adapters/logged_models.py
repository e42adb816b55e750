"""MLflow 3 logged models in SQL: create, finalize, tag, search; their metrics and run links.

``mlflow.<flavor>.log_model(model, name=...)`` creates a logged model (status
``PENDING``) in the run's experiment, links it to the run as an output, copies the
run's metrics of that step to it (``log-batch`` with ``model_id``), uploads the model
files under the model's ``artifact_location`` and finalizes it (``READY``).
``runs:/<run_id>/<name>`` is then resolved by searching the experiment's logged
models for ``name = '<name>'`` whose source run is that run.

Searching accepts MLflow's filter grammar over ``attributes`` (``name``,
``model_id``, ``status``, ``source_run_id``, ``model_type``, ``creation_timestamp_ms``,
...), ``metrics.``, ``params.`` and ``tags.``, plus (beyond MLflow) ``OR``, ``NOT``
and parentheses.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
import uuid
from collections.abc import Sequence
from enum import StrEnum
from typing import Any

from pydantic import Field
from sqlalchemy import (
    ColumnElement,
    and_,
    case,
    delete,
    exists,
    insert,
    not_,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from driftloop_kit.db import Database
from driftloop_kit.errors import InvalidInput, NotFound
from driftloop_kit.search_sql import compare
from driftloop_tracking.adapters.sql import Executor, upsert
from driftloop_tracking.adapters.tables import (
    experiments,
    logged_model_metrics,
    logged_model_params,
    logged_model_tags,
    logged_models,
    run_models,
    runs,
)
from driftloop_tracking.domain import names
from driftloop_tracking.domain.model import (
    LifecycleStage,
    Model,
    ModelInput,
    ModelOutput,
    Param,
    Tag,
)
from driftloop_tracking.domain.search import (
    And,
    Comparison,
    EntityType,
    Expr,
    Identifier,
    Not,
    Or,
    SearchSchema,
    decode_page_token,
    encode_page_token,
    parse_filter,
)
from driftloop_tracking.domain.validation import (
    MAX_PARAM_VALUE_LENGTH,
    validate_key,
    validate_tag_value,
)

__all__ = [
    "LOGGED_MODELS",
    "MAX_SEARCH_RESULTS",
    "SEARCH_RESULTS_DEFAULT",
    "DatasetFilter",
    "LoggedModel",
    "LoggedModelData",
    "LoggedModelInfo",
    "LoggedModelMetric",
    "LoggedModelStatus",
    "LoggedModelStore",
    "ModelOrderBy",
    "link_run_models",
    "log_model_metrics",
    "logged_model_entities",
    "model_artifact_location",
    "run_model_links",
    "validate_model_name",
]

#: MLflow's default page size for logged-model search, and our largest.
SEARCH_RESULTS_DEFAULT = 100
MAX_SEARCH_RESULTS = 1000

#: Characters MLflow refuses in a logged model's name (it becomes part of URIs).
_BAD_NAME_CHARS = ("/", ":", ".", "%", '"', "'")


# -- entities (MLflow's ``LoggedModel`` proto, as JSON) ---------------------------------


class LoggedModelStatus(StrEnum):
    """A logged model's upload status; the values are MLflow's proto enum names."""

    UNSPECIFIED = "LOGGED_MODEL_STATUS_UNSPECIFIED"
    PENDING = "LOGGED_MODEL_PENDING"
    READY = "LOGGED_MODEL_READY"
    FAILED = "LOGGED_MODEL_UPLOAD_FAILED"

    @property
    def short(self) -> str:
        """The name stored and filtered on (``READY``), as ``str(LoggedModelStatus)`` in MLflow."""
        return _SHORT_NAMES[self]

    @classmethod
    def parse(cls, value: str | int) -> LoggedModelStatus:
        """From the proto name, the short name or the proto number.

        Raises:
            InvalidInput: For anything else.
        """
        if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
            try:
                return _BY_NUMBER[int(value)]
            except KeyError:
                pass
        elif value.upper() in _BY_NAME:
            return _BY_NAME[value.upper()]
        raise InvalidInput(
            f"Invalid logged model status {value!r}: expected one of "
            f"{', '.join(s.short for s in cls if s is not cls.UNSPECIFIED)}."
        )


_SHORT_NAMES = {
    LoggedModelStatus.UNSPECIFIED: "UNSPECIFIED",
    LoggedModelStatus.PENDING: "PENDING",
    LoggedModelStatus.READY: "READY",
    LoggedModelStatus.FAILED: "FAILED",
}
_BY_NUMBER = dict(enumerate(LoggedModelStatus))
_BY_NAME = {**{s.value: s for s in LoggedModelStatus}, **{v: k for k, v in _SHORT_NAMES.items()}}
_BY_SHORT = {v: k for k, v in _SHORT_NAMES.items()}


class LoggedModelMetric(Model):
    """A metric value linked to a logged model (MLflow's ``Metric`` with ``model_id``)."""

    key: str
    value: float
    timestamp: int = 0
    step: int = 0
    model_id: str | None = None
    run_id: str | None = None
    dataset_name: str | None = None
    dataset_digest: str | None = None


class LoggedModelInfo(Model):
    """A logged model's metadata and tags."""

    model_id: str
    experiment_id: str
    name: str
    creation_timestamp_ms: int
    last_updated_timestamp_ms: int
    artifact_uri: str
    status: LoggedModelStatus
    model_type: str | None = None
    source_run_id: str | None = None
    status_message: str | None = None
    tags: list[Tag] = Field(default_factory=list)


class LoggedModelData(Model):
    """A logged model's params and metrics."""

    params: list[Param] = Field(default_factory=list)
    metrics: list[LoggedModelMetric] = Field(default_factory=list)


class LoggedModel(Model):
    """A logged model as ``/api/2.0/mlflow/logged-models`` returns it."""

    info: LoggedModelInfo
    data: LoggedModelData = Field(default_factory=LoggedModelData)


class DatasetFilter(Model):
    """Restricts metric filters and ordering to metrics computed on one dataset."""

    dataset_name: str = ""
    dataset_digest: str | None = None


class ModelOrderBy(Model):
    """One ``order_by`` entry of a logged-model search."""

    field_name: str
    ascending: bool = True
    dataset_name: str | None = None
    dataset_digest: str | None = None


# -- names and rules ---------------------------------------------------------------------


def validate_model_name(name: str | None) -> None:
    """MLflow's rule: a non-empty name without ``/ : . % " '`` (or none, for a random one).

    Raises:
        InvalidInput: If the name breaks the rule.
    """
    if name is None:
        return
    if not name or any(c in name for c in _BAD_NAME_CHARS):
        raise InvalidInput(
            f"Invalid model name ({name!r}) provided. Model name must be a non-empty string "
            f"and cannot contain the following characters: {_BAD_NAME_CHARS}"
        )


def model_artifact_location(experiment_location: str, model_id: str) -> str:
    """Where a model's files live: ``<experiment location>/models/<model_id>/artifacts``."""
    return f"{experiment_location.rstrip('/')}/models/{model_id}/artifacts"


def _new_model_id() -> str:
    return f"m-{uuid.uuid4().hex}"


def _check_params(params: Sequence[Param]) -> dict[str, str]:
    wanted: dict[str, str] = {}
    for param in params:
        validate_key(param.key, "param")
        if len(param.value) > MAX_PARAM_VALUE_LENGTH:
            raise InvalidInput(
                f"Param value for '{param.key}' is {len(param.value)} characters long; "
                f"the limit is {MAX_PARAM_VALUE_LENGTH}."
            )
        if wanted.get(param.key, param.value) != param.value:
            raise InvalidInput(f"Duplicate parameter key with different values: {param.key!r}")
        wanted[param.key] = param.value
    return wanted


def _check_tags(tags: Sequence[Tag]) -> dict[str, str]:
    for tag in tags:
        validate_key(tag.key, "tag")
        validate_tag_value(tag.value)
    return {t.key: t.value for t in tags}  # a key given twice: the last value wins


# -- the store ---------------------------------------------------------------------------


class LoggedModelStore:
    """Logged models in the tracking database.

    Args:
        database: The tracking service's database (the same as :class:`TrackingStore`'s).
    """

    def __init__(self, *, database: Database) -> None:
        self.database = database

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
        param_map = _check_params(params)
        tag_map = _check_tags(tags)
        model_id = _new_model_id()
        at = _now_ms()
        async with self.database.session() as session:
            experiment = await _active_experiment_row(session, experiment_id)
            if source_run_id:
                await _run_row(session, source_run_id)
            await session.execute(
                insert(logged_models).values(
                    model_id=model_id,
                    experiment_id=int(experiment.experiment_id),
                    name=name or names.random_run_name(),
                    artifact_location=model_artifact_location(
                        experiment.artifact_location, model_id
                    ),
                    creation_timestamp_ms=at,
                    last_updated_timestamp_ms=at,
                    status=LoggedModelStatus.PENDING.short,
                    model_type=model_type or None,
                    source_run_id=source_run_id or None,
                )
            )
            if param_map:
                await session.execute(
                    insert(logged_model_params),
                    [{"model_id": model_id, "key": k, "value": v} for k, v in param_map.items()],
                )
            if tag_map:
                await session.execute(
                    insert(logged_model_tags),
                    [{"model_id": model_id, "key": k, "value": v} for k, v in tag_map.items()],
                )
            return (await logged_model_entities(session, [model_id]))[0]

    async def get(self, model_id: str, *, allow_deleted: bool = False) -> LoggedModel:
        """The model, or NotFound (also when it is deleted, unless ``allow_deleted``)."""
        async with self.database.session() as session:
            row = await _model_row(session, model_id)
            if row.lifecycle_stage == LifecycleStage.DELETED.value and not allow_deleted:
                raise _not_found(model_id)
            return (await logged_model_entities(session, [model_id]))[0]

    async def finalize(self, *, model_id: str, status: LoggedModelStatus) -> LoggedModel:
        """Set the upload status (``READY`` once the files are uploaded, or ``FAILED``).

        Raises:
            NotFound: If the model does not exist.
            InvalidInput: For ``UNSPECIFIED``.
        """
        if status is LoggedModelStatus.UNSPECIFIED:
            raise InvalidInput("A logged model cannot be finalized with an unspecified status.")
        async with self.database.session() as session:
            await _model_row(session, model_id)
            await session.execute(
                update(logged_models)
                .where(logged_models.c.model_id == model_id)
                .values(status=status.short, last_updated_timestamp_ms=_now_ms())
            )
            return (await logged_model_entities(session, [model_id]))[0]

    async def delete(self, model_id: str) -> None:
        """Soft-delete the model: gone from get and search, its files kept."""
        async with self.database.session() as session:
            await _model_row(session, model_id)
            await session.execute(
                update(logged_models)
                .where(logged_models.c.model_id == model_id)
                .values(
                    lifecycle_stage=LifecycleStage.DELETED.value,
                    last_updated_timestamp_ms=_now_ms(),
                )
            )

    async def set_tags(self, *, model_id: str, tags: Sequence[Tag]) -> LoggedModel:
        """Set (or overwrite) tags of the model."""
        tag_map = _check_tags(tags)
        async with self.database.session() as session:
            await _model_row(session, model_id)
            for key, value in tag_map.items():
                await upsert(
                    session,
                    logged_model_tags,
                    {"model_id": model_id, "key": key, "value": value},
                    ("model_id", "key"),
                )
            return (await logged_model_entities(session, [model_id]))[0]

    async def delete_tag(self, *, model_id: str, key: str) -> None:
        """Remove a tag of the model, or NotFound."""
        async with self.database.session() as session:
            await _model_row(session, model_id)
            result = await session.execute(
                delete(logged_model_tags).where(
                    logged_model_tags.c.model_id == model_id, logged_model_tags.c.key == key
                )
            )
            if result.rowcount == 0:  # type: ignore[attr-defined]
                raise NotFound(f"No tag with key {key!r} found for model with ID {model_id!r}.")

    async def log_params(self, *, model_id: str, params: Sequence[Param]) -> None:
        """Log params of the model; like a run's, a param cannot change its value.

        Raises:
            NotFound: If the model does not exist.
            InvalidInput: On a bad key or value, or a new value for a logged param.
        """
        wanted = _check_params(params)
        if not wanted:
            return
        async with self.database.session() as session:
            await _model_row(session, model_id)
            existing = dict(
                (
                    await session.execute(
                        select(logged_model_params.c.key, logged_model_params.c.value).where(
                            logged_model_params.c.model_id == model_id,
                            logged_model_params.c.key.in_(list(wanted)),
                        )
                    )
                ).all()
            )
            for key, value in wanted.items():
                if key in existing and existing[key] != value:
                    raise InvalidInput(
                        f"Changing param values is not allowed. Param with key='{key}' was "
                        f"already logged with value='{existing[key]}' for model ID='{model_id}'. "
                        f"Attempted logging new value '{value}'."
                    )
            rows = [
                {"model_id": model_id, "key": k, "value": v}
                for k, v in wanted.items()
                if k not in existing
            ]
            if rows:
                await session.execute(insert(logged_model_params), rows)

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
        request = _model_search(
            experiment_ids=experiment_ids,
            filter_=filter_,
            datasets=datasets,
            max_results=max_results,
            order_by=order_by,
            page_token=page_token,
        )
        async with self.database.session() as session:
            dialect = session.get_bind().dialect.name
            query = (
                select(logged_models.c.model_id)
                .where(*_search_conditions(request, dialect))
                .order_by(*_order_clauses(request))
                .offset(request.offset)
                .limit(request.max_results + 1)
            )
            ids = list((await session.scalars(query)).all())
            has_more = len(ids) > request.max_results
            models = await logged_model_entities(session, ids[: request.max_results])
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
            await _active_run_row(session, run_id)
            await link_run_models(
                session,
                run_id=run_id,
                direction="output",
                models=[(o.model_id, o.step) for o in outputs],
            )


# -- helpers shared with the tracking store ----------------------------------------------


async def log_model_metrics(
    executor: Executor, *, run_id: str, metrics: Sequence[LoggedModelMetric]
) -> None:
    """Link metrics that carry a ``model_id`` to their models (log-batch's MLflow 3 part).

    Called inside the transaction that logs the same metrics to the run. Metrics
    without ``model_id`` are ignored; logging the same value again is a no-op.

    Raises:
        NotFound: If a ``model_id`` names no logged model.
    """
    linked = [m for m in metrics if m.model_id]
    if not linked:
        return
    model_ids = {m.model_id for m in linked}
    found = set(
        (
            await executor.scalars(
                select(logged_models.c.model_id).where(logged_models.c.model_id.in_(model_ids))
            )
        ).all()
    )
    if missing := sorted(i for i in model_ids if i and i not in found):
        raise _not_found(missing[0])
    for metric in linked:
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
        await upsert(executor, logged_model_metrics, row, ("model_id", "key", "step", "timestamp"))


async def link_run_models(
    session: AsyncSession,
    *,
    run_id: str,
    direction: str,
    models: Sequence[tuple[str, int]],
) -> None:
    """Link logged models to a run as its inputs (``"input"``) or outputs (``"output"``).

    Args:
        session: The open transaction.
        run_id: The run.
        direction: ``"input"`` (log-inputs ``models``) or ``"output"`` (runs/outputs).
        models: ``(model_id, step)`` pairs; the step is 0 for inputs.

    Raises:
        NotFound: If a model does not exist.
    """
    if not models:
        return
    wanted = {model_id for model_id, _ in models}
    found = set(
        (
            await session.scalars(
                select(logged_models.c.model_id).where(logged_models.c.model_id.in_(wanted))
            )
        ).all()
    )
    if missing := sorted(wanted - found):
        raise _not_found(missing[0])
    for model_id, step in models:
        await upsert(
            session,
            run_models,
            {"run_uuid": run_id, "model_id": model_id, "direction": direction, "step": step},
            ("run_uuid", "direction", "model_id"),
        )


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
                    status=_BY_SHORT.get(row.status, LoggedModelStatus.UNSPECIFIED),
                    model_type=row.model_type,
                    source_run_id=row.source_run_id,
                    status_message=row.status_message,
                    tags=tags[model_id],
                ),
                data=data[model_id],
            )
        )
    return result


# -- search ------------------------------------------------------------------------------

#: What logged-model search accepts (MLflow's ``search_logged_model_utils``).
LOGGED_MODELS = SearchSchema(
    name="logged models",
    prefixes={
        "metric": EntityType.METRIC,
        "metrics": EntityType.METRIC,
        "param": EntityType.PARAM,
        "params": EntityType.PARAM,
        "tag": EntityType.TAG,
        "tags": EntityType.TAG,
        "attribute": EntityType.ATTRIBUTE,
        "attributes": EntityType.ATTRIBUTE,
        "attr": EntityType.ATTRIBUTE,
    },
    string_attributes=frozenset(
        {"model_id", "name", "status", "source_run_id", "model_type", "artifact_location"}
    ),
    numeric_attributes=frozenset({"creation_timestamp_ms", "last_updated_timestamp_ms"}),
    attribute_aliases={
        "creation_time": "creation_timestamp_ms",
        "creation_timestamp": "creation_timestamp_ms",
        "last_updated_timestamp": "last_updated_timestamp_ms",
        "artifact_uri": "artifact_location",
        "id": "model_id",
    },
    orderable_attributes=frozenset(
        {
            "model_id",
            "name",
            "status",
            "source_run_id",
            "model_type",
            "creation_timestamp_ms",
            "last_updated_timestamp_ms",
        }
    ),
    orderable_types=frozenset({EntityType.ATTRIBUTE, EntityType.METRIC}),
)


class _ModelSearch:
    """A checked search request."""

    def __init__(
        self,
        *,
        experiment_ids: tuple[int, ...],
        filter_: Expr | None,
        datasets: tuple[DatasetFilter, ...],
        order_by: tuple[tuple[Identifier, bool, DatasetFilter | None], ...],
        max_results: int,
        offset: int,
        query: str,
    ) -> None:
        self.experiment_ids = experiment_ids
        self.filter = filter_
        self.datasets = datasets
        self.order_by = order_by
        self.max_results = max_results
        self.offset = offset
        self.query = query


def _model_search(
    *,
    experiment_ids: Sequence[str],
    filter_: str | None,
    datasets: Sequence[DatasetFilter],
    max_results: int | None,
    order_by: Sequence[ModelOrderBy],
    page_token: str | None,
) -> _ModelSearch:
    if not experiment_ids:
        raise InvalidInput("Missing value for required parameter 'experiment_ids'.")
    ids: list[int] = []
    for experiment_id in experiment_ids:
        try:
            ids.append(int(experiment_id))
        except (TypeError, ValueError):
            raise InvalidInput(f"Invalid experiment ID: {experiment_id!r}") from None
    if any(not d.dataset_name for d in datasets):
        raise InvalidInput("`dataset_name` in the `datasets` clause must be specified.")
    if max_results is None or max_results == 0:
        max_results = SEARCH_RESULTS_DEFAULT
    if not 1 <= max_results <= MAX_SEARCH_RESULTS:
        raise InvalidInput(
            f"Invalid value {max_results} for parameter 'max_results': "
            f"it must be between 1 and {MAX_SEARCH_RESULTS}."
        )
    expr = parse_filter(filter_, LOGGED_MODELS)
    order = tuple(_order_entry(entry) for entry in order_by)
    query = hashlib.sha256(
        json.dumps(
            [
                "logged-models",
                sorted(set(ids)),
                filter_ or "",
                [d.model_dump() for d in datasets],
                [o.model_dump() for o in order_by],
            ],
            default=str,
        ).encode()
    ).hexdigest()[:16]
    return _ModelSearch(
        experiment_ids=tuple(dict.fromkeys(ids)),
        filter_=expr,
        datasets=tuple(datasets),
        order_by=order,
        max_results=max_results,
        offset=decode_page_token(page_token, query),
        query=query,
    )


def _order_entry(entry: ModelOrderBy) -> tuple[Identifier, bool, DatasetFilter | None]:
    field = entry.field_name.strip()
    if "." in field:
        prefix, key = field.split(".", 1)
        if LOGGED_MODELS.prefixes.get(prefix.lower()) is not EntityType.METRIC or not key:
            raise InvalidInput(
                f"Invalid order by field name: {field!r}. Only attributes and metrics "
                "(metrics.<key>) are supported."
            )
        dataset = None
        if entry.dataset_name:
            dataset = DatasetFilter(
                dataset_name=entry.dataset_name, dataset_digest=entry.dataset_digest
            )
        elif entry.dataset_digest:
            raise InvalidInput("`dataset_digest` can only be given with `dataset_name`.")
        return Identifier(EntityType.METRIC, key.strip("`")), entry.ascending, dataset
    attribute = LOGGED_MODELS.attribute(field)
    if attribute is None or attribute not in LOGGED_MODELS.orderable_attributes:
        raise InvalidInput(f"Invalid order by field name: {field!r}.")
    if entry.dataset_name or entry.dataset_digest:
        raise InvalidInput("`dataset_name` can only be given when ordering by a metric.")
    return Identifier(EntityType.ATTRIBUTE, attribute), entry.ascending, None


_OPS = frozenset(
    {"=", "!=", "<", "<=", ">", ">=", "LIKE", "NOT LIKE", "ILIKE", "NOT ILIKE", "IN", "NOT IN"}
)


def _compare(column: Any, op: str, value: Any, dialect: str) -> ColumnElement[bool]:
    if op not in _OPS:
        raise InvalidInput(f"Unsupported comparator {op!r} in a logged-model search.")
    return compare(column, op, value, dialect)


def _dataset_match(table: Any, datasets: Sequence[DatasetFilter]) -> ColumnElement[bool]:
    clauses = []
    for dataset in datasets:
        clause = table.c.dataset_name == dataset.dataset_name
        if dataset.dataset_digest:
            clause = and_(clause, table.c.dataset_digest == dataset.dataset_digest)
        clauses.append(clause)
    return or_(*clauses) if clauses else true()


def _status_value(value: Any) -> Any:
    # Accept 'READY' as well as the proto name 'LOGGED_MODEL_READY'.
    if isinstance(value, tuple):
        return tuple(_status_value(v) for v in value)
    found = _BY_NAME.get(str(value).upper()) if isinstance(value, str) else None
    return found.short if found is not None else value


def _comparison(
    comparison: Comparison, dialect: str, datasets: Sequence[DatasetFilter]
) -> ColumnElement[bool]:
    identifier, op, value = comparison.identifier, comparison.op, comparison.value
    if identifier.type is EntityType.ATTRIBUTE:
        column = logged_models.c[identifier.key]
        if identifier.key == "status":
            value = _status_value(value)
        if op == "IS NULL":
            return column.is_(None)
        if op == "IS NOT NULL":
            return column.is_not(None)
        return _compare(column, op, value, dialect)
    table: Any = {
        EntityType.METRIC: logged_model_metrics,
        EntityType.PARAM: logged_model_params,
        EntityType.TAG: logged_model_tags,
    }[identifier.type]
    owned = and_(table.c.model_id == logged_models.c.model_id, table.c.key == identifier.key)
    if identifier.type is EntityType.METRIC:
        owned = and_(owned, _dataset_match(table, datasets))
    if op == "IS NULL":
        return ~exists().where(owned)
    if op == "IS NOT NULL":
        return exists().where(owned)
    return exists().where(owned, _compare(table.c.value, op, value, dialect))


def _condition(expr: Expr, dialect: str, datasets: Sequence[DatasetFilter]) -> ColumnElement[bool]:
    if isinstance(expr, Comparison):
        return _comparison(expr, dialect, datasets)
    if isinstance(expr, And):
        return and_(*(_condition(item, dialect, datasets) for item in expr.items))
    if isinstance(expr, Or):
        return or_(*(_condition(item, dialect, datasets) for item in expr.items))
    if isinstance(expr, Not):
        return not_(_condition(expr.item, dialect, datasets))
    raise AssertionError(f"unknown filter node {expr!r}")  # pragma: no cover


def _has_metric(expr: Expr | None) -> bool:
    if expr is None:
        return False
    if isinstance(expr, Comparison):
        return expr.identifier.type is EntityType.METRIC
    if isinstance(expr, Not):
        return _has_metric(expr.item)
    return any(_has_metric(item) for item in expr.items)


def _search_conditions(request: _ModelSearch, dialect: str) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [
        logged_models.c.experiment_id.in_(request.experiment_ids),
        logged_models.c.lifecycle_stage == LifecycleStage.ACTIVE.value,
    ]
    if request.filter is not None:
        conditions.append(_condition(request.filter, dialect, request.datasets))
    if request.datasets and not _has_metric(request.filter):
        metric = logged_model_metrics
        conditions.append(
            exists().where(
                metric.c.model_id == logged_models.c.model_id,
                _dataset_match(metric, request.datasets),
            )
        )
    return conditions


def _order_clauses(request: _ModelSearch) -> list[Any]:
    clauses: list[Any] = []
    keys: set[str] = set()
    for identifier, ascending, dataset in request.order_by:
        if identifier.type is EntityType.ATTRIBUTE:
            column: Any = logged_models.c[identifier.key]
            keys.add(identifier.key)
        else:
            metric = logged_model_metrics
            # The latest value: newest timestamp, then highest step (MLflow's rule).
            column = (
                select(metric.c.value)
                .where(
                    metric.c.model_id == logged_models.c.model_id,
                    metric.c.key == identifier.key,
                    _dataset_match(metric, [dataset] if dataset else []),
                )
                .order_by(metric.c.timestamp.desc(), metric.c.step.desc())
                .limit(1)
                .correlate(logged_models)
                .scalar_subquery()
            )
        # Missing values last in both directions, as MLflow (not every dialect has NULLS LAST).
        clauses.append(case((column.is_(None), 1), else_=0).asc())
        clauses.append(column.asc() if ascending else column.desc())
    if "creation_timestamp_ms" not in keys:
        clauses.append(logged_models.c.creation_timestamp_ms.desc())
    if "model_id" not in keys:
        clauses.append(logged_models.c.model_id.asc())
    return clauses


# -- row access --------------------------------------------------------------------------


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


async def _active_experiment_row(session: AsyncSession, experiment_id: str) -> Any:
    # Not the store's experiment_entity: the store imports this module (run links).
    try:
        key = int(experiment_id)
    except (TypeError, ValueError):
        raise InvalidInput(f"Invalid experiment ID: {experiment_id!r}") from None
    row = (
        await session.execute(
            select(
                experiments.c.experiment_id,
                experiments.c.artifact_location,
                experiments.c.lifecycle_stage,
            ).where(experiments.c.experiment_id == key)
        )
    ).first()
    if row is None:
        raise NotFound(f"No Experiment with id={experiment_id} exists")
    if row.lifecycle_stage != LifecycleStage.ACTIVE.value:
        raise InvalidInput(
            f"The experiment {experiment_id} must be in the 'active' state. "
            f"Current state is {row.lifecycle_stage}."
        )
    return row


def _not_found(model_id: str) -> NotFound:
    return NotFound(f"Logged model with ID '{model_id}' not found.")


async def _model_row(session: AsyncSession, model_id: str) -> Any:
    row = (
        await session.execute(select(logged_models).where(logged_models.c.model_id == model_id))
    ).first()
    if row is None:
        raise _not_found(model_id)
    return row


async def _run_row(session: AsyncSession, run_id: str) -> Any:
    row = (
        await session.execute(
            select(runs.c.run_uuid, runs.c.lifecycle_stage).where(runs.c.run_uuid == run_id)
        )
    ).first()
    if row is None:
        raise NotFound(f"Run with id={run_id} not found")
    return row


async def _active_run_row(session: AsyncSession, run_id: str) -> Any:
    row = await _run_row(session, run_id)
    if row.lifecycle_stage != LifecycleStage.ACTIVE.value:
        raise InvalidInput(
            f"The run {run_id} must be in the 'active' state. "
            f"Current state is {row.lifecycle_stage}."
        )
    return row
