"""Run and experiment search in SQL: a parsed filter becomes one query over the tables.

Plans (checked with EXPLAIN on SQLite and PostgreSQL over 100,000 runs):

- Each metric, param or tag comparison is a subquery on the run id over the
  ``(key, value)`` index of ``latest_metrics``, ``params`` or ``tags``; ``AND``,
  ``OR`` and ``NOT`` combine them as SQL does. By default it is an ``IN`` list. On
  SQLite, which has no statistics, a comparison matching many rows (a capped count
  tells) becomes a correlated ``EXISTS`` when the page is read in ``start_time``
  order, so that the scan of the runs index stops after one page instead of first
  listing every match. PostgreSQL plans both forms as the same semi-join.
- Ordering by a metric, param or tag outer-joins its one row per run and sorts,
  missing values (then NaN) last. Without a filter, ordering by one such key reads
  its ``(key, value)`` index in order instead, segment by segment (values, NaN,
  missing), so the first pages cost the page, not the experiment.
- A page is read as ids first, then built in bulk (one query per table, the ids in
  one bound parameter) straight into MLflow's JSON form.

LIKE is case-sensitive and ILIKE is not, on SQLite as on PostgreSQL (SQLite's own
LIKE ignores case, so there LIKE becomes GLOB). A backslash escapes ``%`` and
``_`` in both.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ColumnElement,
    CompoundSelect,
    Float,
    Select,
    String,
    Table,
    and_,
    any_,
    bindparam,
    case,
    cast,
    false,
    func,
    literal_column,
    not_,
    null,
    or_,
    select,
    true,
    union_all,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from driftloop_kit.errors import InvalidInput
from driftloop_kit.search_sql import combine as _combine
from driftloop_kit.search_sql import compare as _compare
from driftloop_tracking.adapters.driver_sql import CompiledCache, Query, fetch_all
from driftloop_tracking.adapters.sql import (
    Executor,
    connection_of,
    dialect_of,
    id_list,
    json_value,
)
from driftloop_tracking.adapters.tables import (
    VALUE_PREFIX_CHARS,
    datasets,
    experiment_tags,
    experiments,
    latest_metrics,
    params,
    run_inputs,
    run_models,
    runs,
    tags,
)
from driftloop_tracking.domain.model import Experiment, LifecycleStage, Tag
from driftloop_tracking.domain.runs import DATASET_CONTEXT_TAG
from driftloop_tracking.domain.search import (
    EXPERIMENTS,
    RUNS,
    And,
    Comparison,
    EntityType,
    ExperimentSearch,
    Expr,
    Identifier,
    Not,
    Or,
    OrderBy,
    RunSearch,
    Value,
)

__all__ = [
    "BROAD_ROWS",
    "NAN_PLACEHOLDER",
    "RunJSON",
    "broad_comparisons",
    "experiment_entities",
    "experiment_page_ids",
    "experiment_search_query",
    "page_ids",
    "run_page",
    "run_search_query",
    "run_segment_queries",
]

_RUN_COLUMNS: dict[str, Any] = {
    "run_id": runs.c.run_uuid,
    "run_name": runs.c.name,
    "status": runs.c.status,
    "user_id": runs.c.user_id,
    "artifact_uri": runs.c.artifact_uri,
    "start_time": runs.c.start_time,
    "end_time": runs.c.end_time,
}
_EXPERIMENT_COLUMNS: dict[str, Any] = {
    "experiment_id": experiments.c.experiment_id,
    "name": experiments.c.name,
    "creation_time": experiments.c.creation_time,
    "last_update_time": experiments.c.last_update_time,
}
_NULLABLE = frozenset({"end_time"})

#: The value the store writes for a NaN metric (with ``is_nan`` set).
NAN_PLACEHOLDER = 0.0


# -- comparisons -------------------------------------------------------------------------


def _like_head(pattern: str) -> str:
    """The literal characters a LIKE pattern starts with (before its first wildcard)."""
    head: list[str] = []
    chars = iter(pattern)
    for ch in chars:
        if ch == "\\":
            head.append(next(chars, "\\"))
        elif ch in "%_":
            break
        else:
            head.append(ch)
    return "".join(head)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _searched_value(table: Table, op: str, value: Value, dialect: str) -> ColumnElement[bool]:
    """``value op value`` on params or tags, through the index of the value's prefix.

    The index holds ``value_prefix``, the first ``VALUE_PREFIX_CHARS`` characters: a
    value shorter than that is its own prefix, and in code-point order comparing the
    prefix with a shorter string answers as comparing the whole value would. So
    ``=`` and ``IN`` with short operands read the index alone; a long operand seeks
    its truncation and rechecks the whole value. LIKE tests the prefix of short values
    and the value of long ones, after a range on the pattern's literal head.
    """
    negated = op.startswith("NOT ") or op == "!="
    base = "=" if op == "!=" else op.removeprefix("NOT ")
    prefix, full, size = table.c.value_prefix, table.c.value, VALUE_PREFIX_CHARS
    operands = value if isinstance(value, tuple) else (value,)
    if not all(isinstance(v, str) for v in operands):
        return _compare(full, op, value, dialect)
    texts = [str(v) for v in operands]
    long_ = [v for v in texts if len(v) >= size]
    is_short = func.length(prefix) < size
    clause: ColumnElement[bool]
    if base in ("=", "IN"):
        heads = [v[:size] for v in texts]
        clause = prefix.in_(heads) if base == "IN" else prefix == heads[0]
        if long_:
            # A short value equals no long operand: only long values are rechecked.
            clause = and_(clause, or_(is_short, full.in_(long_)))
    elif base in ("LIKE", "ILIKE"):
        (text,) = texts
        clause = or_(
            and_(is_short, _compare(prefix, base, text, dialect)),
            and_(not_(is_short), _compare(full, base, text, dialect)),
        )
        head = _like_head(text)[:size]
        if base == "LIKE" and head:
            clause = and_(_compare(prefix, "LIKE", _escape_like(head) + "%", dialect), clause)
    else:  # MLflow allows no other comparison of params and tags
        return _compare(full, op, value, dialect)
    return not_(clause) if negated else clause


def _as_float(value: Value) -> Value:
    """Numbers as floats: a list mixing ints and floats binds as mixed types (PostgreSQL
    then compares wrongly), and metric values are floats."""
    if isinstance(value, tuple):
        return tuple(float(v) for v in value)
    return float(value) if isinstance(value, int | float) else value


def _integer_comparison(column: Any, op: str, value: Value, dialect: str) -> ColumnElement[bool]:
    """A comparison with an integer column (times in ms): whole numbers bind as integers;
    a fractional one compares the column as a float."""
    values = value if isinstance(value, tuple) else (value,)
    if all(isinstance(v, int) or (isinstance(v, float) and v.is_integer()) for v in values):
        whole = tuple(int(v) for v in values if isinstance(v, int | float))
        return _compare(column, op, whole if isinstance(value, tuple) else whole[0], dialect)
    return _compare(cast(column, Float), op, _as_float(value), dialect)


def _key_value_match(
    table: Table, owner: Column[Any], comparison: Comparison, dialect: str
) -> ColumnElement[bool]:
    """A params/tags-like (owner, key, value) table: the owner has the key, matching."""
    key, op, value = comparison.identifier.key, comparison.op, comparison.value
    having_key = select(table.c[owner.key]).where(table.c.key == key)
    if op == "IS NULL":
        return owner.not_in(having_key)
    if op == "IS NOT NULL":
        return owner.in_(having_key)
    return owner.in_(having_key.where(_compare(table.c.value, op, value, dialect)))


def _holds(number: float, op: str, value: Value) -> bool:
    """Whether ``number op value`` is true (for a numeric comparison)."""
    values = value if isinstance(value, tuple) else (value,)
    numbers = [float(v) for v in values if isinstance(v, int | float)]
    tests = {
        "=": lambda: number == numbers[0],
        "!=": lambda: number != numbers[0],
        "<": lambda: number < numbers[0],
        "<=": lambda: number <= numbers[0],
        ">": lambda: number > numbers[0],
        ">=": lambda: number >= numbers[0],
        "IN": lambda: number in numbers,
        "NOT IN": lambda: number not in numbers,
    }
    return tests[op]()


def _metric_rows(comparison: Comparison, dialect: str, *, exact: bool = True) -> Select[Any]:
    """The ids of the runs whose latest value of the metric matches.

    ``exact=False`` leaves out the NaN test: close enough to count rows.
    """
    lm = latest_metrics
    op, value = comparison.op, _as_float(comparison.value)
    condition = _compare(lm.c.value, op, value, dialect)
    # NaN is stored as is_nan with a placeholder value; NaN differs from every number
    # and compares false otherwise, as IEEE floats do. The is_nan test is only added
    # when the placeholder would answer wrongly, so that most comparisons are
    # answered from the (key, value) index alone.
    nan_matches = op in ("!=", "NOT IN")
    if exact and _holds(NAN_PLACEHOLDER, op, value) != nan_matches:
        if nan_matches:
            condition = or_(lm.c.is_nan == true(), condition)
        else:
            condition = and_(lm.c.is_nan == false(), condition)
    return select(lm.c.run_uuid).where(lm.c.key == comparison.identifier.key, condition)


def _dataset_match(comparison: Comparison, dialect: str) -> ColumnElement[bool]:
    key, op, value = comparison.identifier.key, comparison.op, comparison.value
    if key == "context":
        # The context is a tag of the run input, kept in its JSON list of tags.
        tag_key: ColumnElement[Any]
        tag_value: ColumnElement[Any]
        if dialect == "sqlite":
            item = func.json_each(run_inputs.c.tags).table_valued("value").alias("input_tag")
            tag_key = func.json_extract(item.c.value, "$.key")
            tag_value = func.json_extract(item.c.value, "$.value")
        else:
            item = func.json_array_elements(run_inputs.c.tags).table_valued("value")
            item = item.alias("input_tag")
            tag_key = item.c.value.op("->>")(literal_column("'key'"))
            tag_value = item.c.value.op("->>")(literal_column("'value'"))
        subquery = (
            select(run_inputs.c.run_uuid)
            .select_from(run_inputs)
            .join(item, true())
            .where(
                tag_key == DATASET_CONTEXT_TAG,
                _compare(cast(tag_value, String), op, value, dialect),
            )
        )
    else:
        subquery = (
            select(run_inputs.c.run_uuid)
            .join(datasets, datasets.c.dataset_uuid == run_inputs.c.dataset_uuid)
            .where(_compare(datasets.c[key], op, value, dialect))
        )
    return runs.c.run_uuid.in_(subquery)


#: Tables of the run keys, by the entity type that names them.
_KEY_TABLES: dict[EntityType, Table] = {
    EntityType.METRIC: latest_metrics,
    EntityType.PARAM: params,
    EntityType.TAG: tags,
}


def _key_rows(
    comparison: Comparison, dialect: str, *, exact: bool = True
) -> tuple[Select[Any], bool]:
    """For a metric, param or tag comparison: the ids of the runs whose row matches,
    and whether the comparison holds for those runs (``False`` for ``IS NULL``)."""
    identifier = comparison.identifier
    if identifier.type is EntityType.METRIC:
        return _metric_rows(comparison, dialect, exact=exact), True
    table = _KEY_TABLES[identifier.type]
    having_key = select(table.c.run_uuid).where(table.c.key == identifier.key)
    if comparison.op == "IS NULL":
        return having_key, False
    if comparison.op == "IS NOT NULL":
        return having_key, True
    match = _searched_value(table, comparison.op, comparison.value, dialect)
    return having_key.where(match), True


def _run_match(
    comparison: Comparison, dialect: str, broad: frozenset[Comparison] = frozenset()
) -> ColumnElement[bool]:
    """The SQL condition of one comparison on ``runs``.

    A metric, param or tag comparison is an ``IN`` subquery, read once from the
    ``(key, value)`` index; one in ``broad`` (matching many rows) is a correlated
    EXISTS instead, checked by primary key for the runs the scan reaches: SQLite
    would build the whole list first, though a page may need few of them.
    """
    identifier = comparison.identifier
    if identifier.type in _KEY_TABLES:
        rows, holds = _key_rows(comparison, dialect)
        if comparison in broad:
            table = _KEY_TABLES[identifier.type]
            match: ColumnElement[bool] = rows.where(table.c.run_uuid == runs.c.run_uuid).exists()
        else:
            match = runs.c.run_uuid.in_(rows)
        return match if holds else not_(match)
    if identifier.type is EntityType.DATASET:
        return _dataset_match(comparison, dialect)
    column = _RUN_COLUMNS[identifier.key]
    if identifier.key in RUNS.numeric_attributes:
        clause = _integer_comparison(column, comparison.op, comparison.value, dialect)
    else:
        clause = _compare(column, comparison.op, comparison.value, dialect)
    # A run without an end time matches no comparison on it, also under NOT.
    return and_(column.is_not(None), clause) if identifier.key in _NULLABLE else clause


def _leaves(expr: Expr) -> list[Comparison]:
    if isinstance(expr, And | Or):
        return [leaf for item in expr.items for leaf in _leaves(item)]
    if isinstance(expr, Not):
        return _leaves(expr.item)
    return [expr]


#: A key comparison matching at least this many rows is "broad" (see :func:`_run_match`).
BROAD_ROWS = 5_000
#: Probes count up to this many rows, to rank broad comparisons.
_PROBE_ROWS = 30_000


async def broad_comparisons(
    executor: Executor, expr: Expr | None, dialect: str
) -> frozenset[Comparison]:
    """The key comparisons of ``expr`` to test per run, probed with capped counts.

    A comparison matching ``BROAD_ROWS`` or more rows is broad, except the narrowest
    broad one of the top-level ``AND``: it stays a list, which lets the scan skip
    most runs before any per-run test. Only SQLite needs this: PostgreSQL's planner
    has statistics and turns IN and EXISTS into the same semi-join. A probe reads at
    most ``_PROBE_ROWS`` index entries; the probes of a search are one query, and a
    count is reused for ``PROBE_TTL_SECONDS`` (statistics, not answers).
    """
    if expr is None or dialect != "sqlite":
        return frozenset()
    leaves = [leaf for leaf in dict.fromkeys(_leaves(expr)) if leaf.identifier.type in _KEY_TABLES]
    counts = await _probe_counts(executor, leaves, dialect)
    broad = {leaf for leaf, count in counts.items() if count >= BROAD_ROWS}
    top = expr.items if isinstance(expr, And) else (expr,)
    conjuncts = [c for c in top if isinstance(c, Comparison) and c in broad]
    if conjuncts:
        narrowest = min(conjuncts, key=lambda c: counts[c])
        if counts[narrowest] < _PROBE_ROWS:
            broad.discard(narrowest)
    return frozenset(broad)


#: Seconds a probe's count is reused: it only chooses a plan (any plan answers right),
#: and a search repeated (a page after another, a dashboard) should not pay it again.
PROBE_TTL_SECONDS = 30.0
_probe_cache: dict[tuple[str, Comparison], tuple[float, int]] = {}
_PROBE_CACHE_SIZE = 1024


async def _probe_counts(
    executor: Executor, leaves: Sequence[Comparison], dialect: str
) -> dict[Comparison, int]:
    """The capped row count of each comparison: cached ones, then one query for the rest."""
    database = str((await connection_of(executor)).engine.url)
    now = time.monotonic()
    counts: dict[Comparison, int] = {}
    for leaf in leaves:
        cached = _probe_cache.get((database, leaf))
        if cached is not None and now - cached[0] < PROBE_TTL_SECONDS:
            counts[leaf] = cached[1]
    missing = [leaf for leaf in leaves if leaf not in counts]
    if missing:
        probes = []
        for leaf in missing:
            rows, _ = _key_rows(leaf, dialect, exact=False)
            # A constant, not the run id: the count then reads the (key, value) index only.
            capped = rows.with_only_columns(literal_column("1")).limit(_PROBE_ROWS).subquery()
            probes.append(select(func.count()).select_from(capped).scalar_subquery())
        found = (await executor.execute(select(*probes))).one()
        if len(_probe_cache) > _PROBE_CACHE_SIZE:
            _probe_cache.clear()
        for leaf, count in zip(missing, found, strict=True):
            counts[leaf] = int(count or 0)
            _probe_cache[(database, leaf)] = (now, counts[leaf])
    return counts


# -- ordering ----------------------------------------------------------------------------


def _run_order(query: Select[Any], order_by: Sequence[OrderBy]) -> tuple[Select[Any], list[Any]]:
    """Join what ``order_by`` sorts on; the ORDER BY clauses, missing values last."""
    clauses: list[Any] = []
    by_start_time = False
    for index, item in enumerate(order_by):
        identifier = item.identifier
        if identifier.type is EntityType.ATTRIBUTE:
            value = _RUN_COLUMNS[identifier.key]
            by_start_time = by_start_time or identifier.key == "start_time"
            if identifier.key in _NULLABLE:
                clauses.append(case((value.is_(None), 1), else_=0))
        else:
            table = {
                EntityType.METRIC: latest_metrics,
                EntityType.PARAM: params,
                EntityType.TAG: tags,
            }[identifier.type]
            joined = table.alias(f"order_{index}")
            query = query.outerjoin(
                joined,
                and_(joined.c.run_uuid == runs.c.run_uuid, joined.c.key == identifier.key),
            )
            value = joined.c.value
            if identifier.type is EntityType.METRIC:
                # As MLflow: numbers, then NaN, then runs without the metric.
                clauses.append(
                    case((joined.c.run_uuid.is_(None), 2), (joined.c.is_nan == true(), 1), else_=0)
                )
            else:
                clauses.append(case((joined.c.run_uuid.is_(None), 1), else_=0))
        clauses.append(value.asc() if item.ascending else value.desc())
    if not by_start_time:
        clauses.append(runs.c.start_time.desc())
    clauses.append(runs.c.run_uuid.asc())
    return query, clauses


# -- runs --------------------------------------------------------------------------------


def _in_scope(search: RunSearch) -> list[ColumnElement[bool]]:
    return [
        runs.c.experiment_id.in_(search.experiment_ids),
        runs.c.lifecycle_stage.in_(search.view_type.stages),
    ]


def run_search_query(
    search: RunSearch, dialect: str, broad: frozenset[Comparison] = frozenset()
) -> Select[Any]:
    """The query of the run ids of one page (one more than the page, to see if more follow).

    Args:
        search: The checked request.
        dialect: ``"sqlite"`` or ``"postgresql"``.
        broad: Comparisons to test per run (see :func:`broad_comparisons`).
    """
    query = select(runs.c.run_uuid).where(*_in_scope(search))
    if search.filter is not None:
        query = query.where(_combine(search.filter, lambda c: _run_match(c, dialect, broad)))
    query, order = _run_order(query, search.order_by)
    return query.order_by(*order).offset(search.offset).limit(search.max_results + 1)


def _walks_an_index(search: RunSearch) -> bool:
    """Whether the page is read by walking the (key, value) index of the sort key.

    Without a filter, ``order_by metrics.x`` alone would otherwise join and sort
    every run of the experiments to return the first page.
    """
    return (
        search.filter is None
        and len(search.order_by) == 1
        and search.order_by[0].identifier.type is not EntityType.ATTRIBUTE
    )


def run_segment_queries(search: RunSearch) -> list[Select[Any]]:
    """The ordered segments of a search by one metric, param or tag, without a filter.

    Runs with a value (ordered by it, read along the ``(key, value)`` index), then
    runs whose metric is NaN, then runs without it; ties by ``start_time DESC,
    run_id``: the order of :func:`run_search_query`, read one segment after another.
    The scope test is a correlated EXISTS so that the value index drives the query.
    """
    (item,) = search.order_by
    identifier = item.identifier
    table = {EntityType.METRIC: latest_metrics, EntityType.PARAM: params, EntityType.TAG: tags}[
        identifier.type
    ]
    row = table.alias("sort_key")
    in_scope = (
        select(literal_column("1"))
        .where(runs.c.run_uuid == row.c.run_uuid, *_in_scope(search))
        .exists()
    )
    start_time = select(runs.c.start_time).where(runs.c.run_uuid == row.c.run_uuid)
    ties = [start_time.scalar_subquery().desc(), row.c.run_uuid.asc()]
    # The prefix first: the index gives that order; only equal prefixes are sorted.
    sorted_on = (
        [row.c.value] if identifier.type is EntityType.METRIC else [row.c.value_prefix, row.c.value]
    )
    by_value = [v.asc() if item.ascending else v.desc() for v in sorted_on]
    having = select(row.c.run_uuid).where(row.c.key == identifier.key, in_scope)
    if identifier.type is EntityType.METRIC:
        segments = [
            having.where(row.c.is_nan == false()).order_by(*by_value, *ties),
            having.where(row.c.is_nan == true()).order_by(*ties),
        ]
    else:
        segments = [having.order_by(*by_value, *ties)]
    lacking = (
        select(runs.c.run_uuid)
        .where(
            *_in_scope(search),
            runs.c.run_uuid.not_in(select(table.c.run_uuid).where(table.c.key == identifier.key)),
        )
        .order_by(runs.c.start_time.desc(), runs.c.run_uuid.asc())
    )
    return [*segments, lacking]


#: Compiled id queries by search (all of it: a repeated search, a dashboard's, is one
#: hop to the driver): building and compiling the statement cost more than running it.
_COMPILED_SEARCHES: CompiledCache[tuple[str, RunSearch, frozenset[Comparison]]] = CompiledCache(256)


async def _run_ids(
    executor: Executor, search: RunSearch, dialect: str, broad: frozenset[Comparison]
) -> list[str]:
    connection = await connection_of(executor)
    compiled = _COMPILED_SEARCHES.get(
        (dialect, search, broad),
        lambda: run_search_query(search, dialect, broad),
        connection.dialect,
    )
    return [row[0] for row in await fetch_all(connection, compiled)]


async def _page_ids(executor: Executor, search: RunSearch, dialect: str) -> list[str]:
    """The ids of the page and of the first run after it (if any)."""
    if not _walks_an_index(search):
        # Testing per run pays only when the scan can stop early: in start_time order,
        # which the runs index gives; any other order visits every match to sort.
        in_index_order = all(
            item.identifier == Identifier(EntityType.ATTRIBUTE, "start_time")
            for item in search.order_by
        )
        broad = (
            await broad_comparisons(executor, search.filter, dialect)
            if in_index_order
            else frozenset()
        )
        return await _run_ids(executor, search, dialect, broad)
    ids: list[str] = []
    skip, wanted = search.offset, search.max_results + 1
    for segment in run_segment_queries(search):
        # LIMIT skip + wanted, no OFFSET: a short answer tells the segment's size,
        # which is what the page's offset has to skip in the following segments.
        found = (await executor.scalars(segment.limit(skip + wanted))).all()
        taken = list(found[skip:])
        ids.extend(taken)
        wanted -= len(taken)
        skip = max(0, skip - len(found))
        if wanted <= 0:
            break
    return ids


async def page_ids(executor: Executor, search: RunSearch) -> list[str]:
    """The ids of the search's page and of the first run after it (if any)."""
    if not search.experiment_ids:
        return []
    return await _page_ids(executor, search, dialect_of(executor).name)


def _ids_match(column: Column[Any], ids: Sequence[str | int], dialect: str) -> ColumnElement[bool]:
    """``column IN ids`` with one bound parameter, however many ids.

    An expanding ``IN (?, ?, ...)`` costs a parameter per id (and SQLAlchemy time to
    build them); a PostgreSQL array or a SQLite JSON array is one value. One id is
    an equality (a primary key lookup, as ``get_run`` makes).
    """
    if len(ids) == 1:
        return column == ids[0]
    if dialect == "postgresql":
        element = String if isinstance(column.type, String) else BigInteger
        return column == any_(bindparam(None, list(ids), type_=ARRAY(element)))
    listed = func.json_each(bindparam(None, json.dumps(list(ids)))).table_valued("value")
    return column.in_(select(listed.c.value))


#: A run in MLflow's REST JSON form (``{"info": ..., "data": ..., "inputs": ...}``).
RunJSON = dict[str, Any]


def _bound_ids(column: Column[Any], dialect: str, *, one: bool) -> ColumnElement[bool]:
    """``column IN :ids`` for :class:`Query`: one id, or a list (see :func:`id_list`)."""
    if one:
        return column == bindparam("ids")
    if dialect == "postgresql":
        return column == any_(bindparam("ids", type_=ARRAY(String)))
    listed = func.json_each(bindparam("ids")).table_valued("value")
    return column.in_(select(listed.c.value))


def _page_query(
    build: Callable[[Callable[[Column[Any]], Any]], Select[Any] | CompoundSelect[Any]],
) -> dict[bool, Query]:
    """A query of :func:`run_page`, for one run id and for many."""

    def variant(one: bool) -> Query:
        def statement(dialect: str) -> Select[Any] | CompoundSelect[Any]:
            return build(lambda column: _bound_ids(column, dialect, one=one))

        return Query(statement)

    return {True: variant(True), False: variant(False)}


_lm = latest_metrics
_PAGE_RUNS = _page_query(
    lambda ids: select(
        runs.c.run_uuid,
        runs.c.name,
        runs.c.experiment_id,
        runs.c.user_id,
        runs.c.status,
        runs.c.start_time,
        runs.c.end_time,
        runs.c.artifact_uri,
        runs.c.lifecycle_stage,
    ).where(ids(runs.c.run_uuid))
)
# Kinds of the rows of _PAGE_ENTRIES.
_METRIC, _PARAM, _TAG, _MODEL = 0, 1, 2, 3


def _page_entries(ids: Callable[[Column[Any]], Any]) -> CompoundSelect[Any]:
    """Latest metrics, params, tags and model links of the runs in one UNION ALL (one
    round trip, not four): ``(kind, run id, key, text, number, timestamp, step, flag)``."""
    text, number = cast(null(), String), cast(null(), Float)
    integer, flag = cast(null(), BigInteger), cast(null(), Boolean)
    rm = run_models
    return union_all(
        select(
            literal_column(str(_METRIC)).label("kind"),
            _lm.c.run_uuid,
            _lm.c.key,
            text.label("text"),
            _lm.c.value.label("number"),
            _lm.c.timestamp,
            _lm.c.step,
            _lm.c.is_nan.label("flag"),
        ).where(ids(_lm.c.run_uuid)),
        *(
            select(
                literal_column(str(kind)),
                table.c.run_uuid,
                table.c.key,
                table.c.value,
                number,
                integer,
                integer,
                flag,
            ).where(ids(table.c.run_uuid))
            for kind, table in ((_PARAM, params), (_TAG, tags))
        ),
        select(
            literal_column(str(_MODEL)),
            rm.c.run_uuid,
            rm.c.model_id,
            rm.c.direction,
            number,
            integer,
            rm.c.step,
            flag,
        ).where(ids(rm.c.run_uuid)),
    )


_PAGE_ENTRIES = _page_query(_page_entries)
_PAGE_INPUTS = _page_query(
    lambda ids: (
        select(
            run_inputs.c.run_uuid,
            run_inputs.c.tags,
            datasets.c.name,
            datasets.c.digest,
            datasets.c.source_type,
            datasets.c.source,
            datasets.c.schema,
            datasets.c.profile,
        )
        .join(datasets, datasets.c.dataset_uuid == run_inputs.c.dataset_uuid)
        .where(ids(run_inputs.c.run_uuid))
    )
)


def _dataset_input(row: Sequence[Any]) -> dict[str, Any]:
    _rid, input_tags, name, digest, source_type, source, schema, profile = row
    dataset = {"name": name, "digest": digest, "source_type": source_type, "source": source}
    if schema is not None:
        dataset["schema"] = schema
    if profile is not None:
        dataset["profile"] = profile
    return {"tags": list(json_value(input_tags)), "dataset": dataset}


async def run_page(executor: Executor, ids: Sequence[str]) -> list[RunJSON]:
    """The runs ``ids``, in that order, in MLflow's JSON form, with one query per table.

    The same runs as :func:`~driftloop_tracking.adapters.store.run_entities`, built
    as plain data: a page can hold 50,000 runs, and building and re-encoding
    models (about 10 per run) cost ten times the queries. The queries are compiled
    once and run through the driver (:class:`~driftloop_tracking.adapters.sql.Query`).
    Unset fields are left out, as MLflow does; NaN metrics are ``float("nan")`` for
    the encoder to spell.
    """
    if not ids:
        return []
    one = len(ids) == 1
    bound = ids[0] if one else id_list(ids, dialect_of(executor).name)
    found: dict[str, RunJSON] = {}
    metrics_of: dict[str, list[dict[str, Any]]] = {}
    params_of: dict[str, list[dict[str, Any]]] = {}
    tags_of: dict[str, list[dict[str, Any]]] = {}
    inputs_of: dict[str, list[dict[str, Any]]] = {}
    model_inputs_of: dict[str, list[dict[str, Any]]] = {}
    model_outputs_of: dict[str, list[dict[str, Any]]] = {}
    for row in await _PAGE_RUNS[one].all(executor, ids=bound):
        rid, name, experiment_id, user_id, status, start, end, artifact_uri, stage = row
        info = {
            "run_id": rid,
            "run_uuid": rid,
            "run_name": name,
            "experiment_id": str(experiment_id),
            "user_id": user_id,
            "status": status,
            "start_time": start,
            "artifact_uri": artifact_uri,
            "lifecycle_stage": stage,
        }
        if end is not None:
            info["end_time"] = end
        metrics_of[rid], params_of[rid], tags_of[rid], inputs_of[rid] = [], [], [], []
        model_inputs_of[rid], model_outputs_of[rid] = [], []
        found[rid] = {
            "info": info,
            "data": {"metrics": metrics_of[rid], "params": params_of[rid], "tags": tags_of[rid]},
            "inputs": {"dataset_inputs": inputs_of[rid], "model_inputs": model_inputs_of[rid]},
            "outputs": {"model_outputs": model_outputs_of[rid]},
        }
    if not found:
        return []
    for kind, rid, key, text, number, timestamp, step, flag in await _PAGE_ENTRIES[one].all(
        executor, ids=bound
    ):
        if kind == _METRIC:
            metric = {"key": key, "value": math.nan if flag else number}
            metrics_of[rid].append({**metric, "timestamp": timestamp, "step": step})
        elif kind == _PARAM:
            params_of[rid].append({"key": key, "value": text})
        elif kind == _TAG:
            tags_of[rid].append({"key": key, "value": text})
        elif text == "input":
            model_inputs_of[rid].append({"model_id": key})
        else:
            model_outputs_of[rid].append({"model_id": key, "step": step})
    for rid in found:  # by model id, as the store lists them
        model_inputs_of[rid].sort(key=lambda m: m["model_id"])
        model_outputs_of[rid].sort(key=lambda m: m["model_id"])
    for row in await _PAGE_INPUTS[one].all(executor, ids=bound):
        inputs_of[row[0]].append(_dataset_input(row))
    return [found[rid] for rid in ids if rid in found]


# -- experiments -------------------------------------------------------------------------


def _experiment_id_values(comparison: Comparison) -> Value:
    values = comparison.value if isinstance(comparison.value, tuple) else (comparison.value,)
    try:
        ids = tuple(int(v) for v in values if v is not None)
    except ValueError:
        raise InvalidInput(
            f"Invalid experiment ID in filter: {comparison.value!r} is not a number."
        ) from None
    return ids if isinstance(comparison.value, tuple) else ids[0]


def _experiment_match(comparison: Comparison, dialect: str) -> ColumnElement[bool]:
    identifier = comparison.identifier
    if identifier.type is EntityType.TAG:
        return _key_value_match(experiment_tags, experiments.c.experiment_id, comparison, dialect)
    column = _EXPERIMENT_COLUMNS[identifier.key]
    value = comparison.value
    if identifier.key in EXPERIMENTS.numeric_attributes:
        return _integer_comparison(column, comparison.op, value, dialect)
    if identifier.key == "experiment_id":
        if "LIKE" in comparison.op:
            column = cast(column, String)
        else:
            value = _experiment_id_values(comparison)
    return _compare(column, comparison.op, value, dialect)


def experiment_search_query(search: ExperimentSearch, dialect: str) -> Select[Any]:
    """The query of the experiment ids of one page (plus one, to see if more follow)."""
    query = select(experiments.c.experiment_id).where(
        experiments.c.lifecycle_stage.in_(search.view_type.stages)
    )
    if search.filter is not None:
        query = query.where(_combine(search.filter, lambda c: _experiment_match(c, dialect)))
    # MLflow's default order, and its tie-breaker: experiment_id descending.
    clauses: list[Any] = [
        _EXPERIMENT_COLUMNS[item.identifier.key].asc()
        if item.ascending
        else _EXPERIMENT_COLUMNS[item.identifier.key].desc()
        for item in search.order_by
    ]
    if not clauses:
        clauses = [experiments.c.creation_time.desc(), experiments.c.experiment_id.asc()]
    elif not any(item.identifier.key == "experiment_id" for item in search.order_by):
        clauses.append(experiments.c.experiment_id.desc())
    return query.order_by(*clauses).offset(search.offset).limit(search.max_results + 1)


async def experiment_entities(session: AsyncSession, ids: Sequence[int]) -> list[Experiment]:
    """Build many experiments with one query per table, in the order of ``ids``."""
    if not ids:
        return []
    dialect = session.get_bind().dialect.name
    rows = {
        r.experiment_id: r
        for r in (
            await session.execute(
                select(experiments).where(_ids_match(experiments.c.experiment_id, ids, dialect))
            )
        ).all()
    }
    tag_lists: dict[int, list[Tag]] = {i: [] for i in rows}
    for r in (
        await session.execute(
            select(experiment_tags).where(_ids_match(experiment_tags.c.experiment_id, ids, dialect))
        )
    ).all():
        tag_lists[r.experiment_id].append(Tag(key=r.key, value=r.value))
    return [
        Experiment(
            experiment_id=str(row.experiment_id),
            name=row.name,
            artifact_location=row.artifact_location,
            lifecycle_stage=LifecycleStage(row.lifecycle_stage),
            creation_time=row.creation_time,
            last_update_time=row.last_update_time,
            tags=tag_lists[row.experiment_id],
        )
        for i in ids
        if (row := rows.get(i)) is not None
    ]


async def experiment_page_ids(session: AsyncSession, search: ExperimentSearch) -> list[int]:
    """The ids of the search's page and of the first experiment after it (if any)."""
    query = experiment_search_query(search, dialect_of(session).name)
    return [int(i) for i in (await session.scalars(query)).all()]
