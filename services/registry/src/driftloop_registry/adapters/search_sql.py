"""Registered model and model version search in SQL (SQLite and PostgreSQL).

The queries return keys only; the store reads the entities of a page. Pages are
cut with ``OFFSET``/``LIMIT`` over a total order: the requested keys, then the
model name and version, so page tokens stay stable.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Exists, Select, exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from driftloop_kit.search import Comparison, EntityType, Value
from driftloop_kit.search_sql import combine, compare
from driftloop_registry.adapters.tables import (
    model_version_tags,
    model_versions,
    registered_model_tags,
    registered_models,
)
from driftloop_registry.domain.search import Search

_MODEL_COLUMNS: dict[str, Any] = {
    "name": registered_models.c.name,
    "creation_timestamp": registered_models.c.creation_timestamp,
    "last_updated_timestamp": registered_models.c.last_updated_timestamp,
}
_VERSION_COLUMNS: dict[str, Any] = {
    "name": registered_models.c.name,
    "run_id": model_versions.c.run_id,
    "source_path": model_versions.c.source,
    "version_number": model_versions.c.version,
    "creation_timestamp": model_versions.c.creation_timestamp,
    "last_updated_timestamp": model_versions.c.last_updated_timestamp,
}


def _tag_clause(
    having: Exists, value_column: Any, op: str, value: Value, dialect: str
) -> ColumnElement[bool]:
    """A tag comparison; a negated one also matches items without the tag.

    ``tags.x != 'v'`` means "not tagged x = v", as in MLflow's store: the mlflow
    client relies on it, adding ``tags.`mlflow.prompt.is_prompt` != 'true'`` to
    every model search to leave prompts out.
    """
    if op == "IS NULL":
        return ~having
    if op == "IS NOT NULL":
        return having
    if op == "!=":
        return ~having.where(compare(value_column, "=", value, dialect))
    if op.startswith("NOT "):
        return ~having.where(compare(value_column, op.removeprefix("NOT "), value, dialect))
    return having.where(compare(value_column, op, value, dialect))


def _model_match(comparison: Comparison, dialect: str) -> ColumnElement[bool]:
    key, op, value = comparison.identifier.key, comparison.op, comparison.value
    if comparison.identifier.type is EntityType.TAG:
        tag = registered_model_tags.c
        having = exists().where(tag.model_id == registered_models.c.id, tag.key == key)
        return _tag_clause(having, tag.value, op, value, dialect)
    return compare(_MODEL_COLUMNS[key], op, value, dialect)


def _version_match(comparison: Comparison, dialect: str) -> ColumnElement[bool]:
    key, op, value = comparison.identifier.key, comparison.op, comparison.value
    if comparison.identifier.type is EntityType.TAG:
        tag = model_version_tags.c
        having = exists().where(
            tag.model_id == model_versions.c.model_id,
            tag.version == model_versions.c.version,
            tag.key == key,
        )
        return _tag_clause(having, tag.value, op, value, dialect)
    if key == "version_number" and isinstance(value, str):
        value = int(value) if value.isdigit() else -1
    return compare(_VERSION_COLUMNS[key], op, value, dialect)


def _ordered(query: Select[Any], search: Search, columns: dict[str, Any]) -> Select[Any]:
    order = [
        columns[o.identifier.key].asc() if o.ascending else columns[o.identifier.key].desc()
        for o in search.order_by
    ]
    return query.order_by(*order)


async def matching_models(session: AsyncSession, search: Search) -> list[int]:
    """Ids of the registered models on ``search``'s page, and one more if there is a next."""
    dialect = session.get_bind().dialect.name
    query = select(registered_models.c.id)
    if search.filter is not None:
        query = query.where(combine(search.filter, lambda c: _model_match(c, dialect)))
    query = _ordered(query, search, _MODEL_COLUMNS).order_by(registered_models.c.name)
    return list(await session.scalars(query.offset(search.offset).limit(search.max_results + 1)))


async def matching_versions(session: AsyncSession, search: Search) -> list[tuple[int, int]]:
    """``(model id, version)`` on ``search``'s page, and one more if there is a next."""
    dialect = session.get_bind().dialect.name
    query = select(model_versions.c.model_id, model_versions.c.version).join(
        registered_models, registered_models.c.id == model_versions.c.model_id
    )
    if search.filter is not None:
        query = query.where(combine(search.filter, lambda c: _version_match(c, dialect)))
    query = _ordered(query, search, _VERSION_COLUMNS).order_by(
        registered_models.c.name, model_versions.c.version.desc()
    )
    return [
        (row.model_id, row.version)
        for row in await session.execute(query.offset(search.offset).limit(search.max_results + 1))
    ]
