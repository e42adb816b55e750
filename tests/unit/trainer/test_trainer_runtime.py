"""The job runtime: an entry point's outcome, or the stage it failed in."""

from __future__ import annotations

from pathlib import Path

import pytest

from driftloop_trainer.domain.jobs import JobSpec, Stage
from driftloop_trainer.runtime import JobContext, StageFailed, TrainingOutput, run

pytestmark = pytest.mark.unit

HERE = "tests.unit.trainer.test_trainer_runtime"


def succeeds(context: JobContext) -> TrainingOutput:
    return TrainingOutput(run_id="r" * 32, model_version=3, metrics={"accuracy": 0.9})


def no_data(context: JobContext) -> TrainingOutput:
    raise StageFailed(Stage.DATA, "no labelled rows", error_type="NoData")


def crashes(context: JobContext) -> TrainingOutput:
    raise ZeroDivisionError("division by zero")


def context(entry_point: str, tmp_path: Path) -> JobContext:
    return JobContext(
        job_id="job-1",
        model_name="iris",
        parameters={},
        spec=JobSpec(entry_point=entry_point),
        trigger={},
        tracking_url="",
        registry_url="",
        features_url="",
        experiment_name="",
        work_dir=str(tmp_path),
    )


def test_a_successful_entry_point_gives_its_output(tmp_path: Path) -> None:
    outcome = run(context(f"{HERE}:succeeds", tmp_path))
    assert outcome["ok"] is True
    assert (outcome["model_version"], outcome["metrics"]) == (3, {"accuracy": 0.9})


def test_a_stage_failure_names_its_stage_and_type(tmp_path: Path) -> None:
    outcome = run(context(f"{HERE}:no_data", tmp_path))
    assert outcome == {
        "ok": False,
        "stage": "data",
        "error": "no labelled rows",
        "error_type": "NoData",
    }


def test_any_other_exception_fails_the_training_stage(tmp_path: Path) -> None:
    outcome = run(context(f"{HERE}:crashes", tmp_path))
    assert (outcome["stage"], outcome["error_type"]) == ("training", "ZeroDivisionError")


def test_an_entry_point_that_cannot_be_loaded_fails_the_setup_stage(tmp_path: Path) -> None:
    outcome = run(context(f"{HERE}:missing", tmp_path))
    assert (outcome["stage"], outcome["error_type"]) == ("setup", "AttributeError")


def test_a_context_survives_its_json_form(tmp_path: Path) -> None:
    original = context(f"{HERE}:succeeds", tmp_path)
    assert JobContext.from_json(original.to_json()) == original


def test_an_entry_point_must_name_module_and_function() -> None:
    with pytest.raises(ValueError, match="module:function"):
        JobSpec(entry_point="just_a_module")
