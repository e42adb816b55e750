"""Run and experiment search through the official mlflow client, on SQLite and PostgreSQL."""

from __future__ import annotations

import math
import random
import string
from dataclasses import dataclass
from typing import Any

import httpx
import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient
from mlflow.data.numpy_dataset import from_numpy
from mlflow.entities import Metric, Param, ViewType
from mlflow.exceptions import MlflowException

from driftloop_kit.testing import auth_headers
from driftloop_tracking.adapters import search_sql
from tests.fakes.common import unique

pytestmark = pytest.mark.integration


@dataclass
class Seeded:
    """Five runs with known metrics, params and tags in one experiment."""

    client: MlflowClient
    experiment_id: str
    ids: dict[str, str]  # run name -> run id

    def names(self, filter_string: str, **kwargs: Any) -> set[str]:
        found = self.client.search_runs([self.experiment_id], filter_string, **kwargs)
        return {r.info.run_name for r in found}

    def ordered(self, order_by: list[str], **kwargs: Any) -> list[str]:
        found = self.client.search_runs([self.experiment_id], order_by=order_by, **kwargs)
        return [r.info.run_name for r in found]


#: name: (start_time, metrics, params, tags, final status)
RUNS: dict[str, tuple[int, dict[str, float], dict[str, str], dict[str, str], str | None]] = {
    "alpha": (
        1000,
        {"acc": 0.9, "loss": 0.3, "val loss": 0.2},
        {"model": "rf", "lr": "0.1"},
        {"team": "fraud", "env": "prod"},
        "FINISHED",
    ),
    "beta": (
        2000,
        {"acc": 0.8, "loss": math.nan},
        {"model": "xgb", "lr": "0.01"},
        {"team": "Fraud"},
        "FINISHED",
    ),
    "gamma": (3000, {"acc": 0.95}, {"model": "rf"}, {"team": "risk"}, None),
    "delta": (4000, {"loss": 0.5}, {}, {}, "KILLED"),
    "epsilon": (5000, {"acc": 0.7}, {"model": "linear"}, {"team": "risk_%"}, "FAILED"),
}


@pytest.fixture
def seeded(tracking_url: str) -> Seeded:
    client = MlflowClient(tracking_url)
    experiment_id = client.create_experiment(unique("search"))
    ids = {}
    for name, (start, metrics, params, tags, status) in RUNS.items():
        run = client.create_run(experiment_id, start_time=start, run_name=name, tags=tags)
        client.log_batch(
            run.info.run_id,
            metrics=[Metric(k, v, 1_700_000_000_000, 0) for k, v in metrics.items()],
            params=[Param(k, v) for k, v in params.items()],
        )
        if status:
            client.set_terminated(run.info.run_id, status)
        ids[name] = run.info.run_id
    return Seeded(client, experiment_id, ids)


@pytest.fixture(params=["lists", "per-run"])
def plan(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both SQLite plans: key comparisons as IN lists, or as per-run EXISTS tests (used
    for comparisons matching many rows, forced here by a threshold of one row)."""
    if request.param == "per-run":
        monkeypatch.setattr(search_sql, "BROAD_ROWS", 1)
    return str(request.param)


@pytest.mark.usefixtures("plan")
def test_every_comparator_selects_the_runs_mlflow_would(seeded: Seeded) -> None:
    expected = {
        "metrics.acc > 0.85": {"alpha", "gamma"},
        "metrics.acc >= 0.9": {"alpha", "gamma"},
        "metrics.acc < 0.8": {"epsilon"},
        "metrics.acc <= 0.8": {"beta", "epsilon"},
        "metrics.acc = 0.8": {"beta"},
        "metrics.acc != 0.8": {"alpha", "gamma", "epsilon"},  # delta has no acc
        "metrics.loss > 0": {"alpha", "delta"},  # beta's loss is NaN
        "metrics.loss <= 0.3": {"alpha"},  # NaN is not smaller than anything
        "metrics.loss != 0.3": {"beta", "delta"},  # but differs from everything
        "metrics.loss IN (0, 0.5)": {"delta"},
        "metric.`val loss` < 0.5": {"alpha"},
        "params.model = 'rf'": {"alpha", "gamma"},
        'params.model != "rf"': {"beta", "epsilon"},
        "params.model LIKE 'x%'": {"beta"},
        "params.model ILIKE '%R%'": {"alpha", "gamma", "epsilon"},  # rf, rf, linear
        "params.lr IS NULL": {"gamma", "delta", "epsilon"},
        "params.lr IS NOT NULL": {"alpha", "beta"},
        "tags.team LIKE 'fr%'": {"alpha"},  # LIKE is case-sensitive, also on SQLite
        "tags.team ILIKE 'fr%'": {"alpha", "beta"},
        "tags.team LIKE 'risk\\_\\%'": {"epsilon"},  # backslash escapes wildcards
        "tags.mlflow.runName = 'beta'": {"beta"},
        "attributes.run_name IN ('alpha', 'gamma')": {"alpha", "gamma"},
        "run_name NOT IN ('alpha', 'gamma')": {"beta", "delta", "epsilon"},
        "`Run name` LIKE '%ta'": {"beta", "delta"},
        "attributes.status = 'FAILED'": {"epsilon"},
        "status != 'FINISHED'": {"gamma", "delta", "epsilon"},
        "attributes.start_time > 3000": {"delta", "epsilon"},
        "created <= 2000": {"alpha", "beta"},
        "start_time IN (1000, 3000.0)": {"alpha", "gamma"},
        "start_time < 2000.5": {"alpha", "beta"},
        f"attributes.run_id = '{seeded.ids['gamma']}'": {"gamma"},
        f"run_id IN ('{seeded.ids['alpha']}', '{seeded.ids['delta']}')": {"alpha", "delta"},
        "attributes.end_time > 0": {"alpha", "beta", "delta", "epsilon"},
    }

    actual = {f: seeded.names(f) for f in expected}

    assert actual == expected


@pytest.mark.usefixtures("plan")
def test_or_not_and_parentheses_combine_with_the_usual_precedence(seeded: Seeded) -> None:
    expected = {
        "metrics.acc > 0.9 OR params.model = 'xgb'": {"gamma", "beta"},
        "(params.model = 'rf' OR params.model = 'linear') AND metrics.acc < 0.92": {
            "alpha",
            "epsilon",
        },
        # AND binds tighter than OR.
        "params.model = 'rf' or params.model = 'linear' and metrics.acc < 0.92": {
            "alpha",
            "gamma",
            "epsilon",
        },
        "NOT params.model = 'rf'": {"beta", "delta", "epsilon"},
        "NOT (metrics.acc > 0.75 OR tags.team = 'risk')": {"delta", "epsilon"},
        "not attributes.end_time > 0": {"gamma"},  # a running run has no end time
        "((tags.team = 'risk'))": {"gamma"},
    }

    actual = {f: seeded.names(f) for f in expected}

    assert actual == expected


def test_order_by_metrics_params_and_attributes_puts_missing_values_last(seeded: Seeded) -> None:
    assert seeded.ordered([]) == ["epsilon", "delta", "gamma", "beta", "alpha"]
    assert seeded.ordered(["attributes.start_time ASC"]) == [
        "alpha",
        "beta",
        "gamma",
        "delta",
        "epsilon",
    ]
    assert seeded.ordered(["metrics.acc DESC"]) == ["gamma", "alpha", "beta", "epsilon", "delta"]
    assert seeded.ordered(["metrics.acc"]) == ["epsilon", "beta", "alpha", "gamma", "delta"]
    # Numbers, then NaN, then runs without the metric (by start_time DESC).
    assert seeded.ordered(["metrics.loss ASC"]) == ["alpha", "delta", "beta", "epsilon", "gamma"]
    assert seeded.ordered(["params.model ASC", "metrics.acc DESC"]) == [
        "epsilon",
        "gamma",
        "alpha",
        "beta",
        "delta",
    ]
    by_team = seeded.ordered(["tags.team DESC"])  # how "fraud" and "Fraud" sort is collation's
    assert (by_team[:2], by_team[-1]) == (["epsilon", "gamma"], "delta")
    assert seeded.ordered(["run_name"]) == ["alpha", "beta", "delta", "epsilon", "gamma"]


def test_page_tokens_return_every_run_exactly_once_in_order(tracking_url: str) -> None:
    client = MlflowClient(tracking_url)
    experiment_id = client.create_experiment(unique("pages"))
    for i in range(23):
        run = client.create_run(experiment_id, start_time=1000 + i % 4)  # ties on start_time
        if i % 6:  # some runs lack the metric, one has NaN: pages cross those segments
            client.log_metric(run.info.run_id, "score", math.nan if i == 7 else float(i % 5))
        client.set_tag(run.info.run_id, "parity", str(i % 2))

    orders: tuple[list[str], ...] = (
        [],
        ["metrics.score DESC"],
        ["metrics.score"],
        ["tags.parity"],
        ["params.none"],
    )
    for order_by in orders:
        everything = [r.info.run_id for r in client.search_runs([experiment_id], order_by=order_by)]
        pages: list[list[str]] = []
        token = None
        while True:
            page = client.search_runs(
                [experiment_id], order_by=order_by, max_results=5, page_token=token
            )
            pages.append([r.info.run_id for r in page])
            token = page.token
            if not token:
                break

        # A filter takes the other plan (one query, sorted), which must agree.
        filtered = client.search_runs([experiment_id], "start_time > 0", order_by=order_by)

        assert [len(p) for p in pages] == [5, 5, 5, 5, 3]
        assert [run_id for page in pages for run_id in page] == everything
        assert len(set(everything)) == 23
        assert [r.info.run_id for r in filtered] == everything


def test_the_fluent_search_runs_returns_a_frame_filtered_and_ordered(seeded: Seeded) -> None:
    mlflow.set_tracking_uri(seeded.client.tracking_uri)

    frame = mlflow.search_runs(
        experiment_ids=[seeded.experiment_id],
        filter_string="metrics.acc > 0.75 OR params.model = 'linear'",
        order_by=["metrics.acc DESC"],
    )

    assert list(frame["tags.mlflow.runName"]) == ["gamma", "alpha", "beta", "epsilon"]
    assert list(frame["metrics.acc"]) == [0.95, 0.9, 0.8, 0.7]
    assert list(frame["params.model"]) == ["rf", "rf", "xgb", "linear"]
    assert math.isnan(frame["metrics.loss"][2]), "beta's NaN loss comes back as NaN"


def test_deleted_runs_are_shown_per_view_type(seeded: Seeded) -> None:
    seeded.client.delete_run(seeded.ids["delta"])

    active = seeded.names("", run_view_type=ViewType.ACTIVE_ONLY)
    deleted = seeded.names("", run_view_type=ViewType.DELETED_ONLY)
    everything = seeded.names("", run_view_type=ViewType.ALL)

    assert active == {"alpha", "beta", "gamma", "epsilon"}
    assert deleted == {"delta"}
    assert everything == set(RUNS)
    assert seeded.names("metrics.loss > 0", run_view_type=ViewType.DELETED_ONLY) == {"delta"}


def test_runs_are_searched_by_dataset_name_digest_and_context(tracking_url: str) -> None:
    mlflow.set_tracking_uri(tracking_url)
    client = MlflowClient(tracking_url)
    experiment_id = mlflow.set_experiment(unique("datasets")).experiment_id
    train = from_numpy(np.arange(8.0).reshape(4, 2), source="s3://b/train.npy", name="train")
    other = from_numpy(np.arange(6.0).reshape(3, 2), source="s3://b/other.npy", name="other")
    with mlflow.start_run(run_name="trained") as trained:
        mlflow.log_input(train, context="training")
    with mlflow.start_run(run_name="evaluated"):
        mlflow.log_input(other, context="evaluation")

    def names(filter_string: str) -> set[str]:
        return {r.info.run_name for r in client.search_runs([experiment_id], filter_string)}

    assert names("datasets.name = 'train'") == {"trained"}
    assert names(f"dataset.digest = '{train.digest}'") == {"trained"}
    assert names("datasets.context = 'evaluation'") == {"evaluated"}
    assert names("datasets.context LIKE '%ing' OR datasets.name IN ('other')") == {
        "trained",
        "evaluated",
    }
    assert trained.info.run_id in {r.info.run_id for r in client.search_runs([experiment_id])}


@pytest.mark.parametrize(
    ("kwargs", "in_message"),
    [
        ({"filter_string": "metrics.acc >"}, "character 14"),
        ({"filter_string": "metrics.acc > 'high'"}, "expected a number"),
        ({"filter_string": "parameters.model = rf"}, "expected a quoted string"),
        ({"filter_string": "foo.bar = 1"}, "unknown entity type 'foo'"),
        ({"filter_string": "(params.a = 'b'"}, "expected ')'"),
        ({"filter_string": "params.a = 'b' params.c = 'd'"}, "expected AND, OR"),
        ({"filter_string": "metrics.acc LIKE '%'"}, "not allowed"),
        ({"order_by": ["metrics.acc SIDEWAYS"]}, "ASC or DESC"),
        ({"order_by": ["metrics.acc", "metric.acc DESC"]}, "duplicate"),
        ({"page_token": "bm90IGEgdG9rZW4="}, "page token"),
        ({"max_results": 50_001}, "at most 50000"),
    ],
)
def test_bad_filters_order_by_and_tokens_are_invalid_parameter_values(
    tracking_url: str, kwargs: dict[str, Any], in_message: str
) -> None:
    client = MlflowClient(tracking_url)

    with pytest.raises(MlflowException) as refused:
        client.search_runs(["0"], **kwargs)

    assert refused.value.error_code == "INVALID_PARAMETER_VALUE"
    assert in_message in refused.value.message


def test_a_page_token_of_another_search_is_refused(seeded: Seeded) -> None:
    page = seeded.client.search_runs([seeded.experiment_id], max_results=2)
    assert page.token

    with pytest.raises(MlflowException) as refused:
        seeded.client.search_runs(
            [seeded.experiment_id], "metrics.acc > 0", max_results=2, page_token=page.token
        )

    assert refused.value.error_code == "INVALID_PARAMETER_VALUE"


def test_experiments_are_searched_by_name_tags_and_times_ordered_and_paged(
    tracking_url: str,
) -> None:
    client = MlflowClient(tracking_url)
    prefix = unique("exps")
    ids = {
        name: client.create_experiment(f"{prefix}-{name}", tags=tags)
        for name, tags in [
            ("apple", {"team": "fraud"}),
            ("banana", {"team": "risk"}),
            ("cherry", {"team": "fraud", "archived": "yes"}),
            ("date", {}),
        ]
    }
    client.delete_experiment(ids["banana"])

    def names(filter_string: str, **kwargs: Any) -> list[str]:
        found = client.search_experiments(
            filter_string=f"name LIKE '{prefix}-%' AND ({filter_string})",
            **kwargs,
        )
        return [e.name.removeprefix(f"{prefix}-") for e in found]

    assert set(names("tags.team = 'fraud'")) == {"apple", "cherry"}
    assert names("tags.archived IS NULL", order_by=["name DESC"]) == ["date", "apple"]
    assert names("name ILIKE '%-DATE' OR tags.team != 'fraud'") == ["date"]
    assert names("name LIKE '%-DATE'") == []
    assert names("tags.team = 'risk'", view_type=ViewType.DELETED_ONLY) == ["banana"]
    assert set(names("creation_time > 0", view_type=ViewType.ALL)) == {
        "apple",
        "banana",
        "cherry",
        "date",
    }
    assert names(f"experiment_id = '{ids['cherry']}'") == ["cherry"]
    assert names("name != 'x'", order_by=["name ASC"]) == ["apple", "cherry", "date"]
    assert names("creation_time >= 0", order_by=["experiment_id DESC"]) == [
        "date",
        "cherry",
        "apple",
    ]

    pages, token = [], None
    while True:
        page = client.search_experiments(
            filter_string=f"name LIKE '{prefix}-%'",
            view_type=ViewType.ALL,
            order_by=["name"],
            max_results=3,
            page_token=token,
        )
        pages.append([e.name.removeprefix(f"{prefix}-") for e in page])
        token = page.token
        if not token:
            break
    assert pages == [["apple", "banana", "cherry"], ["date"]]

    with pytest.raises(MlflowException) as refused:
        client.search_experiments(filter_string="metrics.acc > 1")
    assert refused.value.error_code == "INVALID_PARAMETER_VALUE"


def test_the_rest_endpoints_answer_mlflows_json_shape(seeded: Seeded) -> None:
    url = seeded.client.tracking_uri
    response = httpx.post(
        f"{url}/api/2.0/mlflow/runs/search",
        json={
            "experiment_ids": [seeded.experiment_id],
            "filter": "params.model = 'rf'",
            "run_view_type": "ACTIVE_ONLY",
            "max_results": 1,
            "order_by": ["metrics.acc DESC"],
        },
        headers=auth_headers(),
    )
    experiments = httpx.get(
        f"{url}/api/2.0/mlflow/experiments/search",
        params={"max_results": 1000},
        headers=auth_headers(),
    )

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"runs", "next_page_token"}
    (run,) = body["runs"]
    assert run["info"]["run_name"] == "gamma"
    assert {"key": "model", "value": "rf"} in run["data"]["params"]
    assert experiments.status_code == 200
    assert seeded.experiment_id in {e["experiment_id"] for e in experiments.json()["experiments"]}


def _random_text(rng: random.Random, length: int) -> str:
    """Text that does not compress: letters, digits and Cyrillic (2 UTF-8 bytes)."""
    alphabet = string.ascii_letters + string.digits + "".join(map(chr, range(0x430, 0x450)))
    return "".join(rng.choice(alphabet) for _ in range(length))


def test_values_of_mlflows_maximum_length_are_stored_and_searched(tracking_url: str) -> None:
    # A btree entry over a whole 6000-character value exceeds PostgreSQL's limit;
    # the search index holds a prefix and long values are compared in full.
    rng = random.Random(7)
    client = MlflowClient(tracking_url)
    experiment_id = client.create_experiment(unique("long-values"))
    param_head, tag_head = _random_text(rng, 5999), _random_text(rng, 7999)
    values = {  # the two runs share all but the last character
        "first": (param_head + "b", tag_head + "b"),
        "second": (param_head + "a", tag_head + "a"),
    }
    ids = {}
    for name, (param, tag) in values.items():
        run = client.create_run(experiment_id, run_name=name)
        client.log_param(run.info.run_id, "long", param)
        client.set_tag(run.info.run_id, "long", tag)
        ids[name] = run.info.run_id
    client.log_batch(ids["first"], params=[Param("short", "x")])

    for name, (param, tag) in values.items():
        data = client.get_run(ids[name]).data
        assert (data.params["long"], data.tags["long"]) == (param, tag)
    # The other key/value tables hold values as long.
    client.set_experiment_tag(experiment_id, "long", tag_head)
    assert client.get_experiment(experiment_id).tags["long"] == tag_head
    model = client.create_logged_model(experiment_id, params={"long": param_head})
    client.set_logged_model_tags(model.model_id, {"long": tag_head})
    found = client.get_logged_model(model.model_id)
    assert (found.params["long"], found.tags["long"]) == (param_head, tag_head)

    def names(filter_string: str) -> set[str]:
        return {r.info.run_name for r in client.search_runs([experiment_id], filter_string)}

    first_param, first_tag = values["first"]
    assert names(f"params.long = '{first_param}'") == {"first"}
    assert names(f"params.long != '{first_param}'") == {"second"}
    assert names(f"params.long IN ('{first_param}', 'x')") == {"first"}
    assert names(f"params.long LIKE '{param_head}_'") == {"first", "second"}
    assert names(f"tags.long = '{first_tag}'") == {"first"}
    assert names(f"tags.long LIKE '{tag_head[:300]}%'") == {"first", "second"}
    assert names(f"tags.long LIKE '%{tag_head[-20:]}b'") == {"first"}
    ascii_upper = "".join(c.upper() if c.isascii() else c for c in first_tag)  # SQLite's rule
    assert names(f"tags.long ILIKE '{ascii_upper}'") == {"first"}
    assert names(f"tags.long LIKE '{first_tag}' AND params.short = 'x'") == {"first"}
    assert [
        r.info.run_name for r in client.search_runs([experiment_id], order_by=["tags.long"])
    ] == [
        "second",
        "first",
    ]
