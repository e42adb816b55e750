"""The SQL a search becomes (compiled only; the queries run in the integration tests)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.dialects.postgresql.base import PGDialect
from sqlalchemy.dialects.sqlite.base import SQLiteDialect
from sqlalchemy.sql import Select

from driftloop_kit.search_sql import like_to_glob
from driftloop_tracking.adapters.search_sql import (
    experiment_search_query,
    run_search_query,
    run_segment_queries,
)
from driftloop_tracking.domain.search import Comparison, experiment_search, run_search

pytestmark = pytest.mark.unit


def sql(query: Select[object], dialect: str = "sqlite") -> str:
    compiler = SQLiteDialect() if dialect == "sqlite" else PGDialect()  # type: ignore[no-untyped-call]
    text = str(query.compile(dialect=compiler, compile_kwargs={"literal_binds": True}))
    # PostgreSQL's pyformat doubles literal percent signs; keys are quoted on SQLite.
    return " ".join(text.replace("%%", "%").replace('"key"', "key").split())


def run_sql(filter_: str | None = None, dialect: str = "sqlite", **kwargs: Any) -> str:
    search = run_search(experiment_ids=["1"], filter_=filter_, **kwargs)
    return sql(run_search_query(search, dialect), dialect)


@pytest.mark.parametrize(
    ("like", "glob"),
    [
        ("abc", "abc"),
        ("a%", "a*"),
        ("a_c", "a?c"),
        ("%x%", "*x*"),
        ("a*b?c[d", "a[*]b[?]c[[]d"),
        ("100\\%", "100%"),
        ("a\\_b", "a_b"),
        ("a\\*", "a[*]"),
        ("trailing\\", "trailing\\"),
    ],
)
def test_like_patterns_become_case_sensitive_globs_on_sqlite(like: str, glob: str) -> None:
    assert like_to_glob(like) == glob


def test_like_is_case_sensitive_and_ilike_is_not_on_both_databases() -> None:
    assert "tags.value GLOB 'fr*'" in run_sql("tags.team LIKE 'fr%'")
    assert "lower(tags.value) LIKE lower('fr%') ESCAPE '\\'" in run_sql("tags.team ILIKE 'fr%'")
    assert "tags.value LIKE 'fr%'" in run_sql("tags.team LIKE 'fr%'", "postgresql")
    assert "tags.value ILIKE 'fr%'" in run_sql("tags.team ILIKE 'fr%'", "postgresql")


def test_a_short_operand_is_compared_with_the_indexed_prefix_alone() -> None:
    text = run_sql("params.model IN ('rf', 'xgb') AND tags.team != 'fraud'")
    assert "params.value_prefix IN ('rf', 'xgb')" in text
    assert "tags.value_prefix != 'fraud'" in text
    assert "params.value " not in text
    assert "tags.value " not in text


def test_a_long_operand_seeks_its_prefix_and_rechecks_long_values_in_full() -> None:
    long_value = "v" * 300
    text = run_sql(f"params.model = '{long_value}'")
    assert f"params.value_prefix = '{'v' * 256}'" in text
    assert f"length(params.value_prefix) < 256 OR params.value IN ('{long_value}')" in text


def test_like_reads_the_range_of_its_literal_head_then_tests_short_and_long_values() -> None:
    text = run_sql("tags.team LIKE 'fr\\_a%x'")
    assert "tags.value_prefix GLOB 'fr_a*'" in text
    assert "length(tags.value_prefix) < 256 AND (tags.value_prefix GLOB 'fr_a*x')" in text
    assert "length(tags.value_prefix) >= 256 AND (tags.value GLOB 'fr_a*x')" in text
    assert "tags.value_prefix LIKE 'fr\\_a%'" in run_sql("tags.team LIKE 'fr\\_a%x'", "postgresql")


def test_each_key_comparison_is_a_subquery_on_its_indexed_key_and_value() -> None:
    text = run_sql("metrics.acc > 0.9 AND params.model = 'rf' OR NOT tags.team IS NULL")

    assert (
        "runs.run_uuid IN (SELECT latest_metrics.run_uuid FROM latest_metrics "
        "WHERE latest_metrics.key = 'acc' AND latest_metrics.value > 0.9)"
    ) in text
    assert "params.key = 'model' AND params.value_prefix = 'rf'" in text
    # NOT (IS NULL): SQLAlchemy folds the double negation into a plain IN.
    assert "OR runs.run_uuid IN (SELECT tags.run_uuid FROM tags WHERE tags.key = 'team')" in text


def test_the_nan_test_is_added_only_where_the_nan_placeholder_would_answer_wrongly() -> None:
    # NaN is stored as 0.0 with is_nan set: "> 0.9" cannot match it anyway ...
    assert "is_nan" not in run_sql("metrics.acc > 0.9")
    assert "is_nan" not in run_sql("metrics.acc != 0.5")
    # ... but "< 0.1" would, and "!= 0" would miss it.
    assert "latest_metrics.is_nan = 0" in run_sql("metrics.acc < 0.1")
    assert "latest_metrics.is_nan = 1 OR" in run_sql("metrics.acc != 0")
    assert "latest_metrics.is_nan = 0" in run_sql("metrics.acc IN (0, 1)")


def test_comparisons_on_the_end_time_exclude_runs_still_running_also_under_not() -> None:
    assert "NOT (runs.end_time IS NOT NULL AND runs.end_time > 5)" in run_sql(
        "NOT attributes.end_time > 5"
    )


def test_a_fractional_time_compares_as_a_float_and_a_whole_one_as_an_integer() -> None:
    assert "runs.start_time > 5" in run_sql("start_time > 5.0")
    assert "CAST(runs.start_time AS FLOAT) > 5.5" in run_sql("start_time > 5.5")


def test_broad_comparisons_are_tested_per_run_with_exists() -> None:
    search = run_search(experiment_ids=["1"], filter_="metrics.acc > 0.5 AND tags.team = 'a'")
    assert search.filter is not None
    (broad, _narrow) = search.filter.items  # type: ignore[union-attr]
    assert isinstance(broad, Comparison)

    text = sql(run_search_query(search, "sqlite", frozenset({broad})))

    assert (
        "EXISTS (SELECT latest_metrics.run_uuid FROM latest_metrics "
        "WHERE latest_metrics.key = 'acc' AND latest_metrics.value > 0.5 "
        "AND latest_metrics.run_uuid = runs.run_uuid)"
    ) in text
    assert "runs.run_uuid IN (SELECT tags.run_uuid FROM tags" in text


def test_runs_are_ordered_with_missing_values_last_then_by_start_time_and_id() -> None:
    text = run_sql("status = 'FINISHED'", order_by=["metrics.acc DESC", "params.model"])

    assert "LEFT OUTER JOIN latest_metrics AS order_0 ON order_0.run_uuid = runs.run_uuid" in text
    assert (
        "ORDER BY CASE WHEN (order_0.run_uuid IS NULL) THEN 2 WHEN (order_0.is_nan = 1) THEN 1 "
        "ELSE 0 END, order_0.value DESC, CASE WHEN (order_1.run_uuid IS NULL) THEN 1 ELSE 0 END, "
        "order_1.value ASC, runs.start_time DESC, runs.run_uuid ASC"
    ) in text
    assert run_sql().endswith(
        "ORDER BY runs.start_time DESC, runs.run_uuid ASC LIMIT 1001 OFFSET 0"
    )
    assert "ORDER BY runs.start_time ASC, runs.run_uuid ASC" in run_sql(order_by=["created ASC"])


def test_an_unfiltered_search_by_one_metric_reads_its_index_in_segments() -> None:
    search = run_search(experiment_ids=["1"], order_by=["metrics.acc DESC"])

    values, nans, missing = (sql(q) for q in run_segment_queries(search))

    assert values.startswith("SELECT sort_key.run_uuid FROM latest_metrics AS sort_key WHERE")
    assert "sort_key.is_nan = 0" in values
    assert "ORDER BY sort_key.value DESC, (SELECT runs.start_time" in values
    assert "EXISTS (SELECT 1 FROM runs WHERE runs.run_uuid = sort_key.run_uuid" in values
    assert "sort_key.is_nan = 1" in nans
    assert "sort_key.value" not in nans.split("ORDER BY")[1]
    assert "runs.run_uuid NOT IN (SELECT latest_metrics.run_uuid" in missing
    assert len(run_segment_queries(run_search(experiment_ids=["1"], order_by=["tags.t"]))) == 2


def test_experiments_filter_by_name_tags_and_ids_in_their_default_order() -> None:
    search = experiment_search(
        filter_="name ILIKE 'a%' AND (tags.team = 'x' OR experiment_id = '7')"
    )

    text = sql(experiment_search_query(search, "postgresql"), "postgresql")

    assert "experiments.name ILIKE 'a%'" in text
    assert "experiments.experiment_id IN (SELECT experiment_tags.experiment_id" in text
    assert "experiments.experiment_id = 7" in text
    assert "ORDER BY experiments.creation_time DESC, experiments.experiment_id ASC" in text
    ordered = experiment_search(order_by=["name"])
    assert "ORDER BY experiments.name ASC, experiments.experiment_id DESC" in sql(
        experiment_search_query(ordered, "sqlite")
    )
