"""``driftloop lineage``: reading MODEL[@ALIAS|/VERSION], finding the registry, the timeline."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from driftloop_cli.lineage import (
    DEFAULT_REGISTRY_URL,
    ModelRef,
    describe,
    format_lineage,
    parse_model_ref,
    registry_url,
)
from driftloop_cli.main import app

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("iris", ModelRef("iris")),
        ("iris@champion", ModelRef("iris", alias="champion")),
        ("iris/3", ModelRef("iris", version="3")),
        ("iris/03", ModelRef("iris", version="3")),
        ("team@iris@canary-2", ModelRef("team@iris", alias="canary-2")),  # "@" fits in names
        ("a@b/2", ModelRef("a@b", version="2")),
    ],
)
def test_a_model_an_alias_or_a_version_is_read_from_the_argument(
    text: str, expected: ModelRef
) -> None:
    assert parse_model_ref(text) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "no model given"),
        ("iris/", "not a positive integer"),
        ("iris/0", "not a positive integer"),
        ("iris/two", "not a positive integer"),
        ("iris/1/2", "not a positive integer"),
        ("/3", "names no model"),
        ("@champion", "names no model"),
        ("iris@", "not an alias name"),
        ("iris@champ ion", "not an alias name"),
        ("models:iris", "cannot contain ':'"),
    ],
)
def test_a_malformed_argument_is_refused_with_the_reason(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_model_ref(text)


def test_the_query_names_the_model_and_the_version_or_alias() -> None:
    assert ModelRef("iris", alias="champion").query() == {"name": "iris", "alias": "champion"}
    assert ModelRef("iris", version="2").query() == {"name": "iris", "version": "2"}
    assert ModelRef("iris").query() == {"name": "iris"}


def test_the_registry_is_the_given_one_else_the_one_up_announced_else_the_local_default(
    tmp_path: Path,
) -> None:
    assert registry_url(None, tmp_path) == DEFAULT_REGISTRY_URL
    (tmp_path / "up.json").write_text("{not json")
    assert registry_url(None, tmp_path) == DEFAULT_REGISTRY_URL
    (tmp_path / "up.json").write_text(
        json.dumps({"services": {"registry": "http://127.0.0.1:15001/"}})
    )
    assert registry_url(None, tmp_path) == "http://127.0.0.1:15001"
    assert registry_url("http://registry:5001/", tmp_path) == "http://registry:5001"


def test_a_bad_argument_exits_with_a_usage_error_before_asking_anyone() -> None:
    result = CliRunner().invoke(
        app, ["lineage", "iris/latest", "--registry-url", "http://127.0.0.1:9"]
    )
    assert result.exit_code == 2
    assert "error: version 'latest' in 'iris/latest' is not a positive integer" in result.output


ANSWER: dict[str, Any] = {
    "name": "iris",
    "aliases": [{"alias": "champion", "version": "2"}, {"alias": "canary", "version": "1"}],
    "version": "2",
    "alias": "champion",
    "lineage": {
        "run_id": "8f2c1a9e0b7d4c3e9a6f5b1d2e3c4a5b",
        "experiment_id": "1",
        "metrics": {"accuracy": 0.962},
        "params": {"C": "1.0"},
        "datasets": [{"name": "iris-train", "digest": "a3f5c9e1", "context": "training"}],
        "feature_views": ["iris_features"],
        "triggering_event": {"id": "d-1", "type": "driftloop.monitor.drift.detected"},
        "training_job_id": "job-7d1c2b",
    },
    "events": [
        {
            "id": "d-1",
            "type": "driftloop.monitor.drift.detected",
            "time": "2026-11-30T15:02:03.120456Z",
            "version": "1",
            "role": "trigger",
            "summary": {
                "columns": 4,
                "drifted_columns": ["petal_width", "petal_length", "sepal_length"],
                "drift_share": 0.75,
                "report_url": "http://monitor:8006/reports/rep-1",
            },
        },
        {
            "id": "r-1",
            "type": "driftloop.trainer.training.requested",
            "time": "2026-11-30T15:02:03.5Z",
            "role": "training",
            "summary": {
                "job_id": "job-7d1c2b",
                "trigger_kind": "drift",
                "trigger_event_id": "d-1",
                "reason": "3 of 4 columns drifted",
            },
        },
        {
            "id": "a-2",
            "type": "driftloop.registry.alias.set",
            "time": "2026-11-30T15:02:09Z",
            "version": "2",
            "role": "alias",
            "summary": {
                "alias": "champion",
                "version": 2,
                "previous_version": 1,
                "cause_event_id": "c-1",
                "cause_event_type": "driftloop.trainer.training.completed",
            },
        },
        {
            "id": "c-1",
            "type": "driftloop.trainer.training.completed",
            "time": "2026-11-30T15:02:10.000001Z",
            "version": "2",
            "role": "training",
            "summary": {
                "job_id": "job-7d1c2b",
                "model_version": 2,
                "evaluation": {
                    "metric": "accuracy",
                    "challenger_score": 0.962,
                    "champion_score": 0.911,
                    "champion_version": 1,
                },
                "promoted": True,
                "alias": "champion",
            },
        },
    ],
}


def test_a_versions_lineage_prints_as_a_header_and_a_timeline() -> None:
    assert format_lineage(ANSWER).splitlines() == [
        "iris v2 (@champion)",
        "  run       8f2c1a9e0b7d4c3e9a6f5b1d2e3c4a5b (experiment 1)",
        "  metrics   accuracy=0.962",
        "  params    C=1.0",
        "  dataset   iris-train digest a3f5c9e1 (training)",
        "  features  iris_features",
        "  trigger   drift.detected d-1",
        "  job       job-7d1c2b",
        "",
        "2026-11-30T15:02:03.120Z  drift.detected      d-1  v1: 3/4 columns drifted (share 0.75)"
        " [petal_width, petal_length, sepal_length] report: http://monitor:8006/reports/rep-1",
        "2026-11-30T15:02:03.500Z  training.requested  r-1  job job-7d1c2b: drift trigger d-1:"
        " 3 of 4 columns drifted",
        "2026-11-30T15:02:09.000Z  alias.set           a-2  champion: v1 → v2"
        " (cause training.completed c-1)",
        "2026-11-30T15:02:10.000Z  training.completed  c-1  job job-7d1c2b: v2 accuracy 0.962"
        " vs champion v1 0.911, promoted to champion",
    ]


def test_a_models_whole_log_names_its_aliases_and_says_when_it_is_empty() -> None:
    text = format_lineage({"name": "iris", "aliases": ANSWER["aliases"], "events": []})
    assert text.splitlines() == [
        "iris (aliases: champion → v2, canary → v1)",
        "",
        "no events recorded",
    ]


@pytest.mark.parametrize(
    ("event", "facts"),
    [
        (
            {"type": "driftloop.registry.alias.set", "summary": {"alias": "c", "version": 1}},
            "c → v1 (new)",
        ),
        (
            {"type": "driftloop.registry.alias.deleted", "summary": {"alias": "c", "version": 4}},
            "c deleted (was v4)",
        ),
        (
            {
                "type": "driftloop.registry.model_version.created",
                "summary": {"version": 3, "run_id": "abc", "training_job_id": "job-1"},
            },
            "v3 registered from run abc by job job-1",
        ),
        (
            {
                "type": "driftloop.monitor.performance.degraded",
                "version": "3",
                "summary": {
                    "metric": "accuracy",
                    "value": 0.81,
                    "threshold": 0.9,
                    "higher_is_better": True,
                    "labelled_rows": 480,
                },
            },
            "v3: accuracy 0.81 below 0.9 on 480 labelled rows",
        ),
        (
            {
                "type": "driftloop.monitor.drift.cleared",
                "version": "3",
                "summary": {"drift_share": 0.25, "report_id": "rep-9"},
            },
            "v3: drift cleared (share 0.25) report: rep-9",
        ),
        (
            {
                "type": "driftloop.trainer.training.failed",
                "summary": {
                    "job_id": "job-1",
                    "stage": "data",
                    "error_type": "KeyError",
                    "error": "'x'",
                    "will_retry": True,
                },
            },
            "job job-1 failed in data: KeyError: 'x' (will retry)",
        ),
        (
            {
                "type": "driftloop.trainer.training.completed",
                "summary": {
                    "job_id": "job-1",
                    "model_version": 5,
                    "evaluation": {"metric": "rmse", "challenger_score": "NaN"},
                },
            },
            "job job-1: v5 rmse NaN, not promoted",
        ),
        (
            {
                "type": "driftloop.trainer.training.escalated",
                "summary": {
                    "episode_id": "ep-1",
                    "rule": "max_refusals_per_episode=3",
                    "reason": "3 challengers refused",
                    "job_ids": ["job-1", "job-2", "job-3"],
                },
            },
            "retraining stopped, a person must look (max_refusals_per_episode=3): "
            "3 challengers refused (episode ep-1); jobs job-1, job-2, job-3",
        ),
        (
            {
                "type": "driftloop.monitor.performance.recovered",
                "version": "3",
                "summary": {
                    "metric": "accuracy",
                    "value": 0.94,
                    "threshold": 0.9,
                    "episode_id": "ep-2",
                },
            },
            "v3: accuracy 0.94 meets 0.9 again (episode ep-2)",
        ),
        ({"type": "driftloop.other.thing.done", "summary": {"a": 1}}, "a=1"),
    ],
)
def test_each_event_type_prints_its_key_facts(event: dict[str, Any], facts: str) -> None:
    assert describe(event) == facts
