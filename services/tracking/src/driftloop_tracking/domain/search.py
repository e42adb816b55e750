"""Search requests for runs and experiments: what they can be searched by, and the requests.

The grammar, syntax tree, order_by and page tokens are the shared ones of
:mod:`driftloop_kit.search` (MLflow's filter grammar plus ``OR``, ``NOT`` and
parentheses); this module declares the run and experiment schemas and checks
``runs/search`` and ``experiments/search`` requests. The SQL adapter
(``adapters/search_sql.py``) turns the parsed tree into a query.

Example::

    expr = parse_run_filter("metrics.acc > 0.9 AND (params.model = 'rf' OR tags.team ILIKE 'fr%')")
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum

from driftloop_kit.errors import InvalidInput
from driftloop_kit.search import (
    MAX_RESULTS_DEFAULT,
    MAX_RESULTS_LIMIT,
    And,
    Comparison,
    EntityType,
    Expr,
    Identifier,
    Not,
    Or,
    OrderBy,
    Paged,
    SearchSchema,
    Value,
    check_max_results,
    decode_page_token,
    encode_page_token,
    fingerprint,
    parse_filter,
    parse_order_by,
    tokenize,
)

__all__ = [
    "EXPERIMENTS",
    "MAX_RESULTS_DEFAULT",
    "MAX_RESULTS_LIMIT",
    "RUNS",
    "And",
    "Comparison",
    "EntityType",
    "ExperimentSearch",
    "Expr",
    "Identifier",
    "Not",
    "Or",
    "OrderBy",
    "RunSearch",
    "SearchSchema",
    "Value",
    "ViewType",
    "decode_page_token",
    "encode_page_token",
    "experiment_search",
    "parse_filter",
    "parse_order_by",
    "parse_run_filter",
    "run_search",
    "tokenize",
]


#: Run search (``runs/search``), as MLflow's ``SearchUtils``.
RUNS = SearchSchema(
    name="runs",
    prefixes={
        "metric": EntityType.METRIC,
        "metrics": EntityType.METRIC,
        "param": EntityType.PARAM,
        "params": EntityType.PARAM,
        "parameter": EntityType.PARAM,
        "parameters": EntityType.PARAM,
        "tag": EntityType.TAG,
        "tags": EntityType.TAG,
        "attribute": EntityType.ATTRIBUTE,
        "attributes": EntityType.ATTRIBUTE,
        "attr": EntityType.ATTRIBUTE,
        "run": EntityType.ATTRIBUTE,
        "dataset": EntityType.DATASET,
        "datasets": EntityType.DATASET,
    },
    string_attributes=frozenset({"run_id", "run_name", "status", "user_id", "artifact_uri"}),
    numeric_attributes=frozenset({"start_time", "end_time"}),
    attribute_aliases={
        "created": "start_time",
        "Created": "start_time",
        "run name": "run_name",
        "Run name": "run_name",
        "Run Name": "run_name",
        "run_uuid": "run_id",
    },
    orderable_attributes=frozenset(
        {"run_id", "run_name", "status", "user_id", "artifact_uri", "start_time", "end_time"}
    ),
    orderable_types=frozenset(
        {EntityType.METRIC, EntityType.PARAM, EntityType.TAG, EntityType.ATTRIBUTE}
    ),
    dataset_keys=frozenset({"name", "digest", "context"}),
)

#: Experiment search (``experiments/search``), as MLflow's ``SearchExperimentsUtils``.
EXPERIMENTS = SearchSchema(
    name="experiments",
    prefixes={
        "tag": EntityType.TAG,
        "tags": EntityType.TAG,
        "attribute": EntityType.ATTRIBUTE,
        "attributes": EntityType.ATTRIBUTE,
        "attr": EntityType.ATTRIBUTE,
    },
    string_attributes=frozenset({"name", "experiment_id"}),
    numeric_attributes=frozenset({"creation_time", "last_update_time"}),
    orderable_attributes=frozenset({"name", "experiment_id", "creation_time", "last_update_time"}),
)


def parse_run_filter(source: str | None) -> Expr | None:
    """Parse a run search filter (see :func:`parse_filter`)."""
    return parse_filter(source, RUNS)


# -- requests and page tokens ------------------------------------------------------------


class ViewType(IntEnum):
    """Which lifecycle stages a search returns (MLflow's ``ViewType``)."""

    ACTIVE_ONLY = 1
    DELETED_ONLY = 2
    ALL = 3

    @classmethod
    def parse(cls, value: str | int | None) -> ViewType:
        """From the name (``"ALL"``) or number (``3``) of the request; ACTIVE_ONLY if unset."""
        if value is None or value in {"", 0}:
            return cls.ACTIVE_ONLY
        try:
            if isinstance(value, str) and not value.isdigit():
                return cls[value.upper()]
            return cls(int(value))
        except (KeyError, ValueError):
            raise InvalidInput(
                f"Invalid view type {value!r}: expected ACTIVE_ONLY, DELETED_ONLY or ALL."
            ) from None

    @property
    def stages(self) -> tuple[str, ...]:
        """The lifecycle stages shown."""
        return {
            ViewType.ACTIVE_ONLY: ("active",),
            ViewType.DELETED_ONLY: ("deleted",),
            ViewType.ALL: ("active", "deleted"),
        }[self]


@dataclass(frozen=True)
class RunSearch(Paged):
    """A checked ``runs/search`` request.

    Attributes:
        experiment_ids: Experiments searched.
        filter: The parsed filter, or ``None`` for all runs.
        view_type: Active, deleted or all runs.
        order_by: Sort keys; the adapter appends ``start_time DESC, run_id``.
        max_results: Page size.
        offset: Runs skipped (from the page token).
        query: Fingerprint of everything but the page, carried in page tokens.
    """

    experiment_ids: tuple[int, ...]
    filter: Expr | None
    view_type: ViewType
    order_by: tuple[OrderBy, ...]
    max_results: int
    offset: int
    query: str


def run_search(
    *,
    experiment_ids: Sequence[str | int],
    filter_: str | None = None,
    view_type: str | int | None = None,
    max_results: int | None = None,
    order_by: Sequence[str] = (),
    page_token: str | None = None,
) -> RunSearch:
    """Check and parse a ``runs/search`` request.

    Raises:
        InvalidInput: On a malformed filter, order_by, page token, view type,
            experiment id or page size.
    """
    ids: list[int] = []
    for experiment_id in experiment_ids:
        try:
            ids.append(int(experiment_id))
        except (TypeError, ValueError):
            raise InvalidInput(f"Invalid experiment ID: {experiment_id!r}") from None
    expr = parse_filter(filter_, RUNS)
    view = ViewType.parse(view_type)
    order = parse_order_by(order_by, RUNS)
    query = fingerprint("runs", sorted(ids), filter_ or "", int(view), list(order_by))
    return RunSearch(
        experiment_ids=tuple(dict.fromkeys(ids)),
        filter=expr,
        view_type=view,
        order_by=order,
        max_results=check_max_results(max_results),
        offset=decode_page_token(page_token, query),
        query=query,
    )


@dataclass(frozen=True)
class ExperimentSearch(Paged):
    """A checked ``experiments/search`` request (see :class:`RunSearch`)."""

    filter: Expr | None
    view_type: ViewType
    order_by: tuple[OrderBy, ...]
    max_results: int
    offset: int
    query: str


def experiment_search(
    *,
    filter_: str | None = None,
    view_type: str | int | None = None,
    max_results: int | None = None,
    order_by: Sequence[str] = (),
    page_token: str | None = None,
) -> ExperimentSearch:
    """Check and parse an ``experiments/search`` request.

    Raises:
        InvalidInput: On a malformed filter, order_by, page token, view type or page size.
    """
    expr = parse_filter(filter_, EXPERIMENTS)
    view = ViewType.parse(view_type)
    order = parse_order_by(order_by, EXPERIMENTS)
    query = fingerprint("experiments", filter_ or "", int(view), list(order_by))
    return ExperimentSearch(
        filter=expr,
        view_type=view,
        order_by=order,
        max_results=check_max_results(max_results),
        offset=decode_page_token(page_token, query),
        query=query,
    )
