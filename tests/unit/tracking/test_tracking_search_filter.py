"""The search filter grammar: MLflow's comparisons plus AND/OR/NOT and parentheses."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from driftloop_kit.errors import InvalidInput
from driftloop_tracking.domain.search import (
    EXPERIMENTS,
    RUNS,
    And,
    Comparison,
    EntityType,
    Expr,
    Identifier,
    Not,
    Or,
    parse_filter,
    parse_run_filter,
    tokenize,
)

pytestmark = pytest.mark.unit

METRIC = EntityType.METRIC
PARAM = EntityType.PARAM
TAG = EntityType.TAG
ATTRIBUTE = EntityType.ATTRIBUTE
DATASET = EntityType.DATASET


def comparison(kind: EntityType, key: str, op: str, value: Any) -> Comparison:
    return Comparison(Identifier(kind, key), op, value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("metrics.acc > 0.9", comparison(METRIC, "acc", ">", 0.9)),
        ("metric.acc >= 1", comparison(METRIC, "acc", ">=", 1)),
        ("metrics.loss < -1.5e-3", comparison(METRIC, "loss", "<", -0.0015)),
        ("metrics.loss <= .5", comparison(METRIC, "loss", "<=", 0.5)),
        ("metrics.n = 3", comparison(METRIC, "n", "=", 3)),
        ("metrics.n != 3", comparison(METRIC, "n", "!=", 3)),
        ("metrics.n <> 3", comparison(METRIC, "n", "!=", 3)),
        ("params.model = 'rf'", comparison(PARAM, "model", "=", "rf")),
        ('param.model = "rf"', comparison(PARAM, "model", "=", "rf")),
        ("parameters.model LIKE 'r%'", comparison(PARAM, "model", "LIKE", "r%")),
        ("params.model ilike 'R%'", comparison(PARAM, "model", "ILIKE", "R%")),
        ("params.model NOT LIKE 'r%'", comparison(PARAM, "model", "NOT LIKE", "r%")),
        ("tags.team IN ('a', 'b')", comparison(TAG, "team", "IN", ("a", "b"))),
        ("tag.team not in ('a',)", comparison(TAG, "team", "NOT IN", ("a",))),
        ("tags.team IS NULL", comparison(TAG, "team", "IS NULL", None)),
        ("tags.team is not null", comparison(TAG, "team", "IS NOT NULL", None)),
        ("tags.mlflow.runName = 'x'", comparison(TAG, "mlflow.runName", "=", "x")),
        ("metrics.`f1 score` > 0", comparison(METRIC, "f1 score", ">", 0)),
        ("tags.\"my.key\" = 'v'", comparison(TAG, "my.key", "=", "v")),
        ("`metrics`.`a` > 0", comparison(METRIC, "a", ">", 0)),
        ("metrics.val-loss < 1", comparison(METRIC, "val-loss", "<", 1)),
        ("metrics.eval/acc > 0", comparison(METRIC, "eval/acc", ">", 0)),
        ("attributes.status = 'FAILED'", comparison(ATTRIBUTE, "status", "=", "FAILED")),
        ("attr.run_id = 'abc'", comparison(ATTRIBUTE, "run_id", "=", "abc")),
        ("run.run_name = 'abc'", comparison(ATTRIBUTE, "run_name", "=", "abc")),
        ("run_name = 'abc'", comparison(ATTRIBUTE, "run_name", "=", "abc")),
        ("`Run name` = 'abc'", comparison(ATTRIBUTE, "run_name", "=", "abc")),
        ("created > 5", comparison(ATTRIBUTE, "start_time", ">", 5)),
        ("attributes.end_time <= 5", comparison(ATTRIBUTE, "end_time", "<=", 5)),
        ("datasets.digest = 'd1'", comparison(DATASET, "digest", "=", "d1")),
        ("dataset.context IN ('training')", comparison(DATASET, "context", "IN", ("training",))),
        ("params.q = 'it''s'", comparison(PARAM, "q", "=", "it's")),
        ("params.q = 'a\\_b'", comparison(PARAM, "q", "=", "a\\_b")),
    ],
)
def test_every_comparison_form_parses_to_its_canonical_tree(text: str, expected: Expr) -> None:
    assert parse_run_filter(text) == expected


def test_empty_and_blank_filters_mean_no_filter() -> None:
    assert parse_run_filter(None) is None
    assert parse_run_filter("") is None
    assert parse_run_filter("   ") is None


def test_and_binds_tighter_than_or_and_not_tighter_than_and() -> None:
    a = comparison(METRIC, "a", ">", 1)
    b = comparison(METRIC, "b", ">", 1)
    c = comparison(METRIC, "c", ">", 1)

    assert parse_run_filter("metrics.a > 1 OR metrics.b > 1 AND metrics.c > 1") == Or(
        (a, And((b, c)))
    )
    assert parse_run_filter("(metrics.a > 1 OR metrics.b > 1) AND metrics.c > 1") == And(
        (Or((a, b)), c)
    )
    assert parse_run_filter("NOT metrics.a > 1 AND metrics.b > 1") == And((Not(a), b))
    assert parse_run_filter("not (metrics.a > 1 and metrics.b > 1)") == Not(And((a, b)))
    assert parse_run_filter("NOT NOT metrics.a > 1") == Not(Not(a))
    assert parse_run_filter("((metrics.a > 1))") == a


def test_chains_of_and_and_of_or_are_flat() -> None:
    parsed = parse_run_filter("metrics.a > 1 AND metrics.b > 1 AND metrics.c > 1")
    assert isinstance(parsed, And)
    assert len(parsed.items) == 3


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "metrics.acc >",
            "expected a quoted string or a number, found end of input at character 14",
        ),
        ("metrics.acc", "expected a comparator"),
        (
            "metrics.acc > 'x'",
            "expected a number for 'metrics.acc', found the string 'x' at character 15",
        ),
        ("params.a = 1", "expected a quoted string for 'params.a'"),
        ("params.a = rf", "found 'rf' at character 12"),
        ("foo.bar = 1", "unknown entity type 'foo'"),
        ("bogus = 'x'", "unknown attribute 'bogus' of runs"),
        ("datasets.size = 'x'", "unknown dataset key 'size'"),
        ("(params.a = 'b'", "expected ')' to close the '(' at character 1"),
        ("params.a = 'b')", "expected AND, OR or the end of the filter, found ')' at character 15"),
        ("params.a = 'b' params.c = 'd'", "found 'params.c' at character 16"),
        ("params.a = 'b' AND", "expected a comparison"),
        ("AND params.a = 'b'", "expected a comparison"),
        ("()", "empty parentheses"),
        ("metrics.a LIKE '1'", "comparator LIKE is not allowed for 'metrics.a'"),
        ("metrics.a IS NULL", "comparator IS NULL is not allowed"),
        ("attributes.status > 'A'", "comparator > is not allowed"),
        ("params.a IN ()", "expected a non-empty list of values"),
        ("params.a IN 'x'", "expected '(' starting the list of values"),
        ("params.a IN ('x' 'y')", "expected ',' or ')' in the list of values"),
        ("params.a = ('x')", "only allowed after IN or NOT IN"),
        ("params.a = 'x", "unterminated string"),
        ("metrics.`a > 1", "unterminated quoted name"),
        ("metrics. > 1", "expected a name after '.'"),
        ("metrics.a ~ 1", "unexpected character '~' at character 11"),
        ("params.a IS 'x'", "expected NULL after IS"),
        ("metrics.a > 1abc", "unexpected character '1'"),
    ],
)
def test_a_malformed_filter_names_the_problem_and_where_it_is(text: str, message: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_run_filter(text)

    assert refused.value.error_code == "INVALID_PARAMETER_VALUE"
    assert refused.value.status_code == 400
    assert message in refused.value.message
    assert refused.value.message.startswith(f"Invalid filter {text!r}")


def test_experiment_filters_know_names_tags_and_times_only() -> None:
    assert parse_filter("name LIKE 'fraud%'", EXPERIMENTS) == comparison(
        ATTRIBUTE, "name", "LIKE", "fraud%"
    )
    assert parse_filter("tags.team = 'x' OR creation_time > 5", EXPERIMENTS) == Or(
        (comparison(TAG, "team", "=", "x"), comparison(ATTRIBUTE, "creation_time", ">", 5))
    )
    assert parse_filter("experiment_id IN ('1', '2')", EXPERIMENTS) == comparison(
        ATTRIBUTE, "experiment_id", "IN", ("1", "2")
    )
    with pytest.raises(InvalidInput, match="unknown entity type 'metrics'"):
        parse_filter("metrics.acc > 1", EXPERIMENTS)
    with pytest.raises(InvalidInput, match="unknown attribute 'status' of experiments"):
        parse_filter("status = 'x'", EXPERIMENTS)


def test_keywords_are_case_insensitive_but_keys_and_values_are_not() -> None:
    assert parse_run_filter("params.Model = 'RF' and tags.X ilike 'y'") == And(
        (comparison(PARAM, "Model", "=", "RF"), comparison(TAG, "X", "ILIKE", "y"))
    )


def test_the_tokenizer_keeps_positions_for_messages() -> None:
    tokens = tokenize("metrics.a >= 1 AND (tags.b = 'c')")
    assert [(t.kind.name, t.position) for t in tokens] == [
        ("IDENT", 0),
        ("OP", 10),
        ("NUMBER", 13),
        ("KEYWORD", 15),
        ("LPAREN", 19),
        ("IDENT", 20),
        ("OP", 27),
        ("STRING", 29),
        ("RPAREN", 32),
        ("END", 33),
    ]


# -- property tests ----------------------------------------------------------------------

_keys = st.text(alphabet="abcXYZ_09 .-", min_size=1, max_size=8).filter(lambda k: "`" not in k)
_strings = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=8)
_numbers = st.one_of(
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=False, allow_infinity=False, width=64),
)


@st.composite
def comparisons(draw: st.DrawFn) -> Comparison:
    kind = draw(st.sampled_from([METRIC, PARAM, TAG]))
    key = draw(_keys)
    if kind is METRIC:
        op = draw(st.sampled_from(["=", "!=", "<", "<=", ">", ">=", "IN", "NOT IN"]))
        values: st.SearchStrategy[object] = _numbers
    else:
        op = draw(
            st.sampled_from(
                ["=", "!=", "LIKE", "ILIKE", "NOT LIKE", "IN", "NOT IN", "IS NULL", "IS NOT NULL"]
            )
        )
        values = _strings
    if op.startswith("IS"):
        value: object = None
    elif op.endswith("IN"):
        value = tuple(draw(st.lists(values, min_size=1, max_size=3)))
    else:
        value = draw(values)
    return comparison(kind, key, op, value)


def expressions() -> st.SearchStrategy[Expr]:
    return st.recursive(
        comparisons(),
        lambda inner: st.one_of(
            st.lists(inner, min_size=2, max_size=3).map(lambda items: And(tuple(items))),
            st.lists(inner, min_size=2, max_size=3).map(lambda items: Or(tuple(items))),
            inner.map(Not),
        ),
        max_leaves=6,
    )


def _literal(value: object) -> str:
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return repr(value)


def render(expr: Expr) -> str:
    """The filter text of a tree, fully parenthesized."""
    if isinstance(expr, And | Or):
        word = " AND " if isinstance(expr, And) else " OR "
        return "(" + word.join(render(item) for item in expr.items) + ")"
    if isinstance(expr, Not):
        return f"NOT ({render(expr.item)})"
    prefix = {METRIC: "metrics", PARAM: "params", TAG: "tags"}[expr.identifier.type]
    left = f"{prefix}.`{expr.identifier.key}`"
    if expr.value is None:
        return f"{left} {expr.op}"
    if isinstance(expr.value, tuple):
        return f"{left} {expr.op} ({', '.join(_literal(v) for v in expr.value)})"
    return f"{left} {expr.op} {_literal(expr.value)}"


@given(expressions())
def test_any_tree_rendered_as_text_parses_back_to_itself(expr: Expr) -> None:
    text = render(expr)

    parsed = parse_run_filter(text)

    assert parsed == expr, text


@given(st.text(max_size=40))
def test_any_text_parses_or_is_refused_as_invalid_input(text: str) -> None:
    refused: InvalidInput | None = None
    try:
        parse_filter(text, RUNS)
    except InvalidInput as exc:  # and never another exception
        refused = exc

    assert refused is None or refused.message.startswith(f"Invalid filter {text!r}")


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("(" * 200 + "metrics.acc > 0.5" + ")" * 200, "nests deeper than 32"),
        ("NOT " * 40 + "metrics.acc > 0.5", "nests deeper than 32"),
        (" AND ".join(["metrics.acc > 0.5"] * 201), "more than 200 comparisons"),
        ("params.p IN (" + ", ".join(f"'{i}'" for i in range(1001)) + ")", "at most 1000"),
    ],
    ids=["parentheses", "not", "comparisons", "in-list"],
)
def test_filters_beyond_the_bounds_are_refused_as_bad_input(source: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        parse_run_filter(source)


def test_filters_at_the_bounds_still_parse() -> None:
    assert parse_run_filter("(" * 32 + "metrics.acc > 0.5" + ")" * 32) is not None
    in_list = "params.p IN (" + ", ".join(f"'{i}'" for i in range(1000)) + ")"
    assert parse_run_filter(in_list) is not None
