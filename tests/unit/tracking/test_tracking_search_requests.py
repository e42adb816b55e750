"""Search requests: order_by, view types, page sizes and page tokens."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from driftloop_kit.errors import InvalidInput
from driftloop_tracking.domain.search import (
    EXPERIMENTS,
    MAX_RESULTS_DEFAULT,
    RUNS,
    EntityType,
    Identifier,
    OrderBy,
    ViewType,
    decode_page_token,
    encode_page_token,
    experiment_search,
    parse_order_by,
    run_search,
)

pytestmark = pytest.mark.unit


def test_order_by_reads_keys_of_every_kind_with_an_optional_direction() -> None:
    parsed = parse_order_by(
        ["metrics.acc DESC", "params.`batch size` asc", "tags.team", "created", "run_name DESC"],
        RUNS,
    )

    assert parsed == (
        OrderBy(Identifier(EntityType.METRIC, "acc"), ascending=False),
        OrderBy(Identifier(EntityType.PARAM, "batch size"), ascending=True),
        OrderBy(Identifier(EntityType.TAG, "team"), ascending=True),
        OrderBy(Identifier(EntityType.ATTRIBUTE, "start_time"), ascending=True),
        OrderBy(Identifier(EntityType.ATTRIBUTE, "run_name"), ascending=False),
    )


@pytest.mark.parametrize(
    ("order_by", "message"),
    [
        (["metrics.acc SIDEWAYS"], "expected ASC or DESC after the key, found 'SIDEWAYS'"),
        (["metrics.acc DESC DESC"], "expected ASC or DESC"),
        (["DESC"], "expected a key"),
        ([""], "expected a key"),
        (["bogus"], "unknown attribute 'bogus' of runs"),
        (["datasets.name"], "is not orderable"),
        (["metrics.acc", "metric.acc DESC"], "`order_by` contains duplicate fields"),
        (["created", "start_time DESC"], "`order_by` contains duplicate fields"),
    ],
)
def test_a_bad_order_by_is_invalid_input(order_by: list[str], message: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_order_by(order_by, RUNS)

    assert message in refused.value.message


def test_experiments_are_ordered_by_their_attributes_only() -> None:
    assert parse_order_by(["name DESC", "attribute.creation_time"], EXPERIMENTS) == (
        OrderBy(Identifier(EntityType.ATTRIBUTE, "name"), ascending=False),
        OrderBy(Identifier(EntityType.ATTRIBUTE, "creation_time"), ascending=True),
    )
    with pytest.raises(InvalidInput, match="is not orderable"):
        parse_order_by(["tags.team"], EXPERIMENTS)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (None, ViewType.ACTIVE_ONLY),
        ("", ViewType.ACTIVE_ONLY),
        ("ACTIVE_ONLY", ViewType.ACTIVE_ONLY),
        ("deleted_only", ViewType.DELETED_ONLY),
        ("ALL", ViewType.ALL),
        (2, ViewType.DELETED_ONLY),
        ("3", ViewType.ALL),
    ],
)
def test_view_types_are_read_by_name_or_number(given: str | int | None, expected: ViewType) -> None:
    assert ViewType.parse(given) is expected


def test_view_types_select_lifecycle_stages_and_reject_unknown_ones() -> None:
    assert ViewType.ALL.stages == ("active", "deleted")
    assert ViewType.DELETED_ONLY.stages == ("deleted",)
    with pytest.raises(InvalidInput, match="Invalid view type 'SOME'"):
        ViewType.parse("SOME")
    with pytest.raises(InvalidInput):
        ViewType.parse(7)


def test_a_run_search_has_mlflows_defaults_and_limits() -> None:
    search = run_search(experiment_ids=["1", 2, "1"])

    assert search.experiment_ids == (1, 2)
    assert search.max_results == MAX_RESULTS_DEFAULT
    assert search.view_type is ViewType.ACTIVE_ONLY
    assert (search.filter, search.order_by, search.offset) == (None, (), 0)
    assert run_search(experiment_ids=["1"], max_results=50_000).max_results == 50_000
    for bad in (0, -1, 50_001):
        with pytest.raises(InvalidInput, match="max_results"):
            run_search(experiment_ids=["1"], max_results=bad)
    with pytest.raises(InvalidInput, match="Invalid experiment ID: 'abc'"):
        run_search(experiment_ids=["abc"])


def test_the_next_page_token_leads_to_the_following_offset_of_the_same_search() -> None:
    first = run_search(
        experiment_ids=["1"], filter_="metrics.a > 1", order_by=["metrics.a"], max_results=10
    )
    token = first.next_page_token(has_more=True)
    assert token is not None
    assert first.next_page_token(has_more=False) is None

    second = run_search(
        experiment_ids=["1"],
        filter_="metrics.a > 1",
        order_by=["metrics.a"],
        max_results=25,  # the page size may change between pages
        page_token=token,
    )

    assert second.offset == 10
    third = second.next_page_token(has_more=True)
    assert third is not None
    assert decode_page_token(third, second.query) == 35


@pytest.mark.parametrize(
    "other",
    [
        {"filter_": "metrics.a > 2"},
        {"order_by": ["metrics.a DESC"]},
        {"view_type": "ALL"},
        {"experiment_ids": ["2"]},
    ],
)
def test_a_page_token_is_refused_by_another_search(other: dict[str, Any]) -> None:
    request: dict[str, Any] = {
        "experiment_ids": ["1"],
        "filter_": "metrics.a > 1",
        "order_by": ["metrics.a"],
    }
    token = run_search(**request).next_page_token(has_more=True)

    with pytest.raises(InvalidInput, match="belongs to a search with another"):
        run_search(**{**request, **other, "page_token": token})


@pytest.mark.parametrize(
    "token",
    [
        "not base64!",
        base64.urlsafe_b64encode(b"not json").decode(),
        base64.urlsafe_b64encode(json.dumps({"offset": -1, "query": "q"}).encode()).decode(),
        base64.urlsafe_b64encode(json.dumps({"offset": "3", "query": "q"}).encode()).decode(),
        base64.urlsafe_b64encode(json.dumps([1, 2]).encode()).decode(),
    ],
)
def test_a_forged_page_token_is_invalid_input(token: str) -> None:
    with pytest.raises(InvalidInput, match="Invalid page token"):
        decode_page_token(token, "q")


def test_page_tokens_round_trip_and_no_token_means_the_first_page() -> None:
    assert decode_page_token(encode_page_token(1234, "q"), "q") == 1234
    assert decode_page_token(None, "q") == 0
    assert decode_page_token("", "q") == 0


def test_an_experiment_search_parses_its_filter_order_and_view() -> None:
    search = experiment_search(
        filter_="name LIKE 'a%' OR tags.team = 'x'",
        view_type="ALL",
        order_by=["name"],
        max_results=3,
    )

    assert search.view_type is ViewType.ALL
    assert search.max_results == 3
    assert search.order_by == (OrderBy(Identifier(EntityType.ATTRIBUTE, "name")),)
    token = search.next_page_token(has_more=True)
    assert (
        experiment_search(
            filter_="name LIKE 'a%' OR tags.team = 'x'",
            view_type="ALL",
            order_by=["name"],
            page_token=token,
        ).offset
        == 3
    )
