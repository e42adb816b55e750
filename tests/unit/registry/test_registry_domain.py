"""The registry's pure rules: names, aliases, versions, lineage, search requests."""

from __future__ import annotations

import math

import pytest

from driftloop_kit.errors import InvalidInput
from driftloop_kit.search import And, Comparison, EntityType, Identifier
from driftloop_registry.domain.lineage import build_lineage
from driftloop_registry.domain.model import Stage
from driftloop_registry.domain.search import model_search, version_search
from driftloop_registry.domain.validation import (
    validate_alias,
    validate_model_name,
    validate_version,
)

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("alias", ["champion", "challenger-2", "prod_eu"])
def test_aliases_of_letters_digits_dashes_and_underscores_are_accepted(alias: str) -> None:
    assert validate_alias(alias) == alias


@pytest.mark.parametrize(
    ("alias", "message"),
    [
        ("", "cannot be empty"),
        ("bad alias", "may only contain"),
        ("Latest", "reserved"),
        ("v12", "reserved"),
        ("a" * 256, "maximum length"),
    ],
)
def test_bad_aliases_are_refused_with_mlflows_reason(alias: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        validate_alias(alias)


@pytest.mark.parametrize("name", ["", "  ", "a/b", "a:b", " padded"])
def test_bad_model_names_are_refused(name: str) -> None:
    with pytest.raises(InvalidInput):
        validate_model_name(name)


@pytest.mark.parametrize("version", ["0", "-1", "x", "1.5", None])
def test_versions_must_be_positive_integers(version: str | None) -> None:
    with pytest.raises(InvalidInput):
        validate_version(version)


def test_stages_parse_case_insensitively_and_unknown_stages_do_not() -> None:
    assert Stage.parse("production") is Stage.PRODUCTION
    with pytest.raises(ValueError, match="Live"):
        Stage.parse("Live")


def test_lineage_takes_the_runs_data_and_lets_version_tags_override_run_tags() -> None:
    run = {
        "info": {"run_id": "r1", "experiment_id": "3"},
        "data": {
            "metrics": [{"key": "acc", "value": 0.9}, {"key": "loss", "value": "NaN"}],
            "params": [{"key": "C", "value": "1.0"}],
            "tags": [
                {"key": "driftloop.feature_views", "value": "a, b"},
                {"key": "driftloop.trigger.event_id", "value": "evt-run"},
            ],
        },
        "inputs": {
            "dataset_inputs": [
                {
                    "dataset": {"name": "train", "digest": "d1", "source_type": "local"},
                    "tags": [{"key": "mlflow.data.context", "value": "training"}],
                }
            ]
        },
    }
    lineage = build_lineage(run, {"driftloop.trigger.event_id": "evt-version"})
    assert lineage.run_id == "r1"
    assert lineage.experiment_id == "3"
    assert lineage.metrics["acc"] == 0.9
    assert math.isnan(lineage.metrics["loss"])
    assert lineage.params == {"C": "1.0"}
    assert [(d.name, d.digest, d.context) for d in lineage.datasets] == [
        ("train", "d1", "training")
    ]
    assert lineage.feature_views == ["a", "b"]
    assert lineage.triggering_event is not None
    assert lineage.triggering_event.id == "evt-version"


def test_a_version_without_a_run_has_an_empty_lineage() -> None:
    lineage = build_lineage(None, {})
    assert (lineage.run_id, lineage.metrics, lineage.triggering_event) == ("", {}, None)


def test_version_search_knows_mlflows_attributes_and_aliases() -> None:
    search = version_search(filter_="version = 3 AND source LIKE 'models:/%'")
    assert isinstance(search.filter, And)
    items = search.filter.items
    assert items[0] == Comparison(Identifier(EntityType.ATTRIBUTE, "version_number"), "=", 3)
    assert isinstance(items[1], Comparison)
    assert items[1].identifier.key == "source_path"
    assert search.max_results == 10_000


def test_model_search_refuses_version_attributes_and_oversized_pages() -> None:
    with pytest.raises(InvalidInput, match="unknown attribute 'run_id'"):
        model_search(filter_="run_id = 'x'")
    with pytest.raises(InvalidInput, match="at most 1000"):
        model_search(max_results=1001)
    with pytest.raises(InvalidInput):
        model_search(order_by=["tags.team"])


def test_a_page_token_only_fits_the_search_it_came_from() -> None:
    first = model_search(filter_="name LIKE 'a%'", max_results=1)
    token = first.next_page_token(has_more=True)
    assert model_search(filter_="name LIKE 'a%'", max_results=1, page_token=token).offset == 1
    with pytest.raises(InvalidInput, match="another filter"):
        model_search(filter_="name LIKE 'b%'", page_token=token)
