"""MLflow 3 logged models: the entities, their rules and the search request, no I/O.

``mlflow.<flavor>.log_model(model, name=...)`` creates a logged model (status
``PENDING``) in the run's experiment, links it to the run as an output, copies the
run's metrics of that step to it (``log-batch`` with ``model_id``), uploads the model
files under the model's ``artifact_location`` and finalizes it (``READY``).
``runs:/<run_id>/<name>`` is then resolved by searching the experiment's logged
models for ``name = '<name>'`` whose source run is that run.

Searching accepts MLflow's filter grammar over ``attributes`` (``name``,
``model_id``, ``status``, ``source_run_id``, ``model_type``, ``creation_timestamp_ms``,
...), ``metrics.``, ``params.`` and ``tags.``, plus (beyond MLflow) ``OR``, ``NOT``
and parentheses; :class:`ModelSearch` is a checked request, which
:mod:`driftloop_tracking.adapters.logged_model_search_sql` turns into SQL.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import Field

from driftloop_kit.errors import InvalidInput, NotFound
from driftloop_tracking.domain.model import Model, Param, Tag
from driftloop_tracking.domain.search import (
    EntityType,
    Expr,
    Identifier,
    SearchSchema,
    decode_page_token,
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
    "ModelOrderBy",
    "ModelSearch",
    "check_params",
    "check_tags",
    "model_artifact_location",
    "model_not_found",
    "model_search",
    "new_model_id",
    "now_ms",
    "status_value",
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

    @classmethod
    def from_short(cls, value: str) -> LoggedModelStatus:
        """From the stored short name; ``UNSPECIFIED`` for an unknown one."""
        return _BY_SHORT.get(value, cls.UNSPECIFIED)


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


def new_model_id() -> str:
    """A fresh logged-model id, in MLflow's form (``m-<hex>``)."""
    return f"m-{uuid.uuid4().hex}"


def now_ms() -> int:
    """Milliseconds since the epoch, the models' time unit."""
    return time.time_ns() // 1_000_000


def model_not_found(model_id: str) -> NotFound:
    """The error for a model that does not exist (or is deleted)."""
    return NotFound(f"Logged model with ID '{model_id}' not found.")


def check_params(params: Sequence[Param]) -> dict[str, str]:
    """The params by key, checked: valid keys, bounded values, no key with two values.

    Raises:
        InvalidInput: If a param breaks a rule.
    """
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


def check_tags(tags: Sequence[Tag]) -> dict[str, str]:
    """The tags by key, checked (a key given twice: the last value wins).

    Raises:
        InvalidInput: On a bad key or value.
    """
    for tag in tags:
        validate_key(tag.key, "tag")
        validate_tag_value(tag.value)
    return {t.key: t.value for t in tags}  # a key given twice: the last value wins


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


@dataclass(frozen=True)
class ModelSearch:
    """A checked search request."""

    experiment_ids: tuple[int, ...]
    filter: Expr | None
    datasets: tuple[DatasetFilter, ...]
    order_by: tuple[tuple[Identifier, bool, DatasetFilter | None], ...]
    max_results: int
    offset: int
    query: str


def model_search(
    *,
    experiment_ids: Sequence[str],
    filter_: str | None,
    datasets: Sequence[DatasetFilter],
    max_results: int | None,
    order_by: Sequence[ModelOrderBy],
    page_token: str | None,
) -> ModelSearch:
    """Check a search request before any I/O.

    Raises:
        InvalidInput: On a malformed filter, order_by, token, page size or experiment id.
    """
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
    return ModelSearch(
        experiment_ids=tuple(dict.fromkeys(ids)),
        filter=expr,
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


def status_value(value: Any) -> Any:
    """A filter's status value as stored: ``'READY'`` for ``'LOGGED_MODEL_READY'`` too."""
    if isinstance(value, tuple):
        return tuple(status_value(v) for v in value)
    found = _BY_NAME.get(str(value).upper()) if isinstance(value, str) else None
    return found.short if found is not None else value
