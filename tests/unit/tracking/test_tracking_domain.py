"""MLflow's input rules and the names the tracking service makes up."""

from __future__ import annotations

import re

import pytest

from driftloop_kit.errors import InvalidInput, NotFound
from driftloop_tracking.domain import names
from driftloop_tracking.domain.model import Metric, Param, RunStatus, Tag
from driftloop_tracking.domain.runs import experiment_id as parse_experiment_id
from driftloop_tracking.domain.runs import latest_per_key
from driftloop_tracking.domain.validation import (
    validate_batch,
    validate_experiment_name,
    validate_key,
)

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("key", ["loss", "val/loss", "f1 score", "a.b-c_d", "step:1"])
def test_names_mlflow_accepts_pass(key: str) -> None:
    validate_key(key, "metric")


@pytest.mark.parametrize("key", ["", "../x", "/abs", "semi;colon", "x" * 251, "a/../b"])
def test_names_mlflow_refuses_are_refused_with_the_reason(key: str) -> None:
    with pytest.raises(InvalidInput, match=r"(?i)metric name"):
        validate_key(key, "metric")


def test_batch_limits_are_mlflows() -> None:
    validate_batch([Metric(key="m", value=1.0)] * 1000, [], [])
    validate_batch([], [Param(key=f"p{i}", value="v") for i in range(100)], [])
    with pytest.raises(InvalidInput, match="at most 1000 metrics"):
        validate_batch([Metric(key="m", value=1.0)] * 1001, [], [])
    with pytest.raises(InvalidInput, match="at most 100 params"):
        validate_batch([], [Param(key=f"p{i}", value="v") for i in range(101)], [])
    with pytest.raises(InvalidInput, match="at most 100 tags"):
        validate_batch([], [], [Tag(key=f"t{i}", value="v") for i in range(101)])
    with pytest.raises(InvalidInput, match="in total"):
        validate_batch(
            [Metric(key="m", value=1.0)] * 900,
            [Param(key=f"p{i}", value="v") for i in range(100)],
            [Tag(key=f"t{i}", value="v") for i in range(1)],
        )


def test_a_param_value_longer_than_mlflows_limit_is_refused() -> None:
    with pytest.raises(InvalidInput, match="6000"):
        validate_batch([], [Param(key="p", value="x" * 6001)], [])


def test_experiment_names_must_not_be_blank() -> None:
    validate_experiment_name("fraud")
    with pytest.raises(InvalidInput):
        validate_experiment_name("   ")


def test_artifact_locations_use_the_proxy_scheme_mlflow_clients_resolve() -> None:
    location = names.experiment_artifact_location("7")
    assert location == "mlflow-artifacts:/7"
    assert names.run_artifact_uri(location, "abc") == "mlflow-artifacts:/7/abc/artifacts"


def test_random_run_names_read_like_mlflows() -> None:
    generated = {names.random_run_name() for _ in range(50)}
    assert all(re.fullmatch(r"[a-z]+-[a-z]+-\d{3}", n) for n in generated)
    assert len(generated) > 40


def test_only_end_statuses_finish_a_run() -> None:
    assert {s for s in RunStatus if s.terminal} == {
        RunStatus.FINISHED,
        RunStatus.FAILED,
        RunStatus.KILLED,
    }


def test_the_latest_value_of_a_key_is_the_highest_step_then_time_then_value() -> None:
    batch = [
        Metric(key="loss", value=0.5, timestamp=10, step=2),
        Metric(key="loss", value=0.9, timestamp=5, step=3),
        Metric(key="loss", value=0.1, timestamp=5, step=3),
        Metric(key="acc", value=float("nan"), timestamp=1, step=0),
        Metric(key="acc", value=float("nan"), timestamp=1, step=0),
    ]
    latest = latest_per_key(batch)
    assert [(m.key, m.value) for m in latest if m.key == "loss"] == [("loss", 0.9)]
    (acc,) = [m for m in latest if m.key == "acc"]
    assert acc is batch[4], "two NaNs at the same step and time: the later one wins"


@pytest.mark.parametrize("value", ["-1", str(2**63), "999999999999999999999999999999"])
def test_an_experiment_id_no_database_can_hold_is_not_found_not_a_crash(value: str) -> None:
    # Found by the API fuzzer: /experiments/delete with such an id was a 500.
    with pytest.raises(NotFound, match=f"No Experiment with id={value} exists"):
        parse_experiment_id(value)
