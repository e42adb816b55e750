"""Logged models: names, statuses, LIKE patterns and search requests checked before any I/O."""

from __future__ import annotations

from typing import Any

import pytest

from driftloop_kit.errors import InvalidInput
from driftloop_kit.search_sql import like_to_glob
from driftloop_tracking.adapters.logged_models import SqlLoggedModelStore
from driftloop_tracking.adapters.store import SqlTrackingStore
from driftloop_tracking.domain.logged_models import (
    DatasetFilter,
    LoggedModelStatus,
    ModelOrderBy,
    model_artifact_location,
    validate_model_name,
)
from driftloop_tracking.domain.model import Param
from driftloop_tracking.domain.search import encode_page_token
from driftloop_tracking.service_layer.logged_models import LoggedModels
from tests.fakes.tracking import UnusableDatabase

pytestmark = pytest.mark.unit


def store() -> LoggedModels:
    return LoggedModels(
        database=UnusableDatabase(), store=SqlLoggedModelStore(), runs=SqlTrackingStore()
    )


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("LOGGED_MODEL_READY", LoggedModelStatus.READY),
        ("READY", LoggedModelStatus.READY),
        ("ready", LoggedModelStatus.READY),
        ("FAILED", LoggedModelStatus.FAILED),
        ("LOGGED_MODEL_UPLOAD_FAILED", LoggedModelStatus.FAILED),
        (1, LoggedModelStatus.PENDING),
        ("2", LoggedModelStatus.READY),
    ],
)
def test_a_status_is_read_from_its_proto_name_short_name_or_number(
    given: str | int, expected: LoggedModelStatus
) -> None:
    assert LoggedModelStatus.parse(given) is expected


@pytest.mark.parametrize("given", ["SHINY", 7, "", "-1"])
def test_an_unknown_status_is_invalid_input(given: str | int) -> None:
    with pytest.raises(InvalidInput, match="status"):
        LoggedModelStatus.parse(given)


def test_the_stored_short_status_is_what_mlflow_prints() -> None:
    assert [s.short for s in LoggedModelStatus] == ["UNSPECIFIED", "PENDING", "READY", "FAILED"]


@pytest.mark.parametrize("name", ["model", "my model", "model-v2_final", None])
def test_model_names_mlflow_accepts_pass(name: str | None) -> None:
    validate_model_name(name)


@pytest.mark.parametrize("name", ["", "a/b", "a:b", "v1.0", "50%", "it's", 'say "hi"'])
def test_model_names_with_uri_characters_are_refused(name: str) -> None:
    with pytest.raises(InvalidInput, match="Invalid model name"):
        validate_model_name(name)


def test_a_models_files_live_below_its_experiments_location() -> None:
    assert (
        model_artifact_location("mlflow-artifacts:/3/", "m-abc")
        == "mlflow-artifacts:/3/models/m-abc/artifacts"
    )


@pytest.mark.parametrize(
    ("like", "glob"),
    [
        ("model%", "model*"),
        ("m_del", "m?del"),
        ("a*b?c[d", "a[*]b[?]c[[]d"),
        (r"100\%", "100%"),
        (r"under\_score", "under_score"),
        ("trailing\\", "trailing\\"),
    ],
)
def test_like_patterns_become_case_sensitive_glob_patterns(like: str, glob: str) -> None:
    assert like_to_glob(like) == glob


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"experiment_ids": []}, "experiment_ids"),
        ({"experiment_ids": ["one"]}, "experiment ID"),
        ({"filter_": "name = "}, "filter"),
        ({"filter_": "unknown.x = 'a'"}, "entity type"),
        ({"filter_": "nonsense = 'a'"}, "unknown attribute"),
        ({"filter_": "metrics.acc > 'high'"}, "number"),
        ({"filter_": "params.alpha > '1'"}, "comparator"),
        ({"max_results": 5000}, "max_results"),
        ({"max_results": -1}, "max_results"),
        ({"page_token": "not-a-token"}, "page token"),
        ({"order_by": [ModelOrderBy(field_name="params.alpha")]}, "order by"),
        ({"order_by": [ModelOrderBy(field_name="colour")]}, "order by"),
        (
            {"order_by": [ModelOrderBy(field_name="name", dataset_name="eval")]},
            "ordering by a metric",
        ),
        ({"datasets": [DatasetFilter(dataset_name="")]}, "dataset_name"),
    ],
)
async def test_malformed_searches_are_refused_before_the_database(
    kwargs: dict[str, Any], message: str
) -> None:
    arguments: dict[str, Any] = {"experiment_ids": ["1"], **kwargs}
    with pytest.raises(InvalidInput, match=f"(?i){message}"):
        await store().search(**arguments)


async def test_a_page_token_of_another_search_is_refused() -> None:
    # A token is only valid for the search (filter, order, experiments) that made it.
    token = encode_page_token(100, "some-other-search")
    with pytest.raises(InvalidInput, match=r"(?i)page token"):
        await store().search(experiment_ids=["1"], page_token=token)


@pytest.mark.parametrize(
    "params",
    [
        [Param(key="", value="1")],
        [Param(key="../x", value="1")],
        [Param(key="alpha", value="x" * 6001)],
        [Param(key="alpha", value="1"), Param(key="alpha", value="2")],
    ],
)
async def test_bad_params_are_refused_before_the_database(params: list[Param]) -> None:
    with pytest.raises(InvalidInput):
        await store().log_params(model_id="m-1", params=params)
    with pytest.raises(InvalidInput):
        await store().create(experiment_id="1", name="m", params=params)


async def test_finalizing_with_an_unspecified_status_is_refused() -> None:
    with pytest.raises(InvalidInput, match="unspecified"):
        await store().finalize(model_id="m-1", status=LoggedModelStatus.UNSPECIFIED)
