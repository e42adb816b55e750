"""Logged-model search in SQL: a checked search request becomes one query for a page of ids.

The request is a :class:`~driftloop_tracking.domain.logged_models.ModelSearch`.

Attributes compare on ``logged_models``' columns; ``metrics.``, ``params.`` and
``tags.`` each become an ``EXISTS`` on their table (metrics restricted to the
request's datasets); ordering by a metric sorts on its latest value, missing values
last in both directions, ties broken by newest first, then model id.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    case,
    exists,
    not_,
    or_,
    select,
    true,
)

from driftloop_kit.errors import InvalidInput
from driftloop_kit.search_sql import compare
from driftloop_tracking.adapters.tables import (
    logged_model_metrics,
    logged_model_params,
    logged_model_tags,
    logged_models,
)
from driftloop_tracking.domain.logged_models import DatasetFilter, ModelSearch, status_value
from driftloop_tracking.domain.model import LifecycleStage
from driftloop_tracking.domain.search import And, Comparison, EntityType, Expr, Not, Or

__all__ = ["logged_model_search_query"]


def logged_model_search_query(request: ModelSearch, dialect: str) -> Select[Any]:
    """The ids of the request's page and of the first model after it (if any)."""
    return (
        select(logged_models.c.model_id)
        .where(*_search_conditions(request, dialect))
        .order_by(*_order_clauses(request))
        .offset(request.offset)
        .limit(request.max_results + 1)
    )


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


def _comparison(
    comparison: Comparison, dialect: str, datasets: Sequence[DatasetFilter]
) -> ColumnElement[bool]:
    identifier, op, value = comparison.identifier, comparison.op, comparison.value
    if identifier.type is EntityType.ATTRIBUTE:
        column = logged_models.c[identifier.key]
        if identifier.key == "status":
            value = status_value(value)
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


def _search_conditions(request: ModelSearch, dialect: str) -> list[ColumnElement[bool]]:
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


def _order_clauses(request: ModelSearch) -> list[Any]:
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
