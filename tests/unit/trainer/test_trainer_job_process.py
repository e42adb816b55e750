"""The job process: an entry point's outcome, or the stage it failed in; reporting it."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from driftloop_kit.retry import REPORT
from driftloop_trainer import runtime
from driftloop_trainer.domain.jobs import (
    RESULT_PREFIX,
    JobContext,
    JobSpec,
    Stage,
    StageFailed,
    TrainingOutput,
)
from driftloop_trainer.entrypoints import job
from driftloop_trainer.entrypoints.job import run

pytestmark = pytest.mark.unit

HERE = "tests.unit.trainer.test_trainer_job_process"


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


def written_for_the_earlier_path(context: runtime.JobContext) -> runtime.TrainingOutput:
    return runtime.TrainingOutput(run_id="e" * 32, model_version=7, metrics={"accuracy": 0.5})


def test_the_earlier_runtime_module_still_runs_a_job_and_its_entry_points(
    tmp_path: Path,
) -> None:
    """``python -m driftloop_trainer.runtime`` (an earlier Job template) and entry points
    that import the contract from ``driftloop_trainer.runtime`` keep working."""
    path = tmp_path / "context.json"
    path.write_text(json.dumps(context(f"{HERE}:written_for_the_earlier_path", tmp_path).to_json()))
    done = subprocess.run(
        [sys.executable, "-m", "driftloop_trainer.runtime", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    line = next(x for x in done.stdout.splitlines() if x.startswith(RESULT_PREFIX))
    outcome = json.loads(line.removeprefix(RESULT_PREFIX))
    assert (outcome["ok"], outcome["model_version"]) == (True, 7)


def test_a_context_survives_its_json_form(tmp_path: Path) -> None:
    original = context(f"{HERE}:succeeds", tmp_path)
    assert JobContext.from_json(original.to_json()) == original


def test_an_entry_point_must_name_module_and_function() -> None:
    with pytest.raises(ValueError, match="module:function"):
        JobSpec(entry_point="just_a_module")


class Answers:
    """``httpx.post`` answering with the given status codes (or raising), in turn."""

    def __init__(self, *answers: int | Exception) -> None:
        self.answers = list(answers)
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __call__(
        self, url: str, *, json: dict[str, Any], headers: dict[str, str], timeout: float
    ) -> httpx.Response:
        self.calls.append((url, json))
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return httpx.Response(answer)


@pytest.fixture
def answers(monkeypatch: pytest.MonkeyPatch) -> Callable[..., Answers]:
    monkeypatch.setattr(job, "REPORT", REPORT.with_(initial=0.0, maximum=0.0))

    def install(*found: int | Exception) -> Answers:
        fake = Answers(*found)
        monkeypatch.setattr(httpx, "post", fake)
        return fake

    return install


def test_the_report_schedule_is_five_attempts_waiting_2_4_8_16_seconds() -> None:
    assert REPORT.attempts == 5
    assert [REPORT.delay(n) for n in range(1, 5)] == [2, 4, 8, 16]
    assert REPORT.delay(10) == 30


def test_a_report_is_retried_on_connection_errors_and_5xx_until_it_is_taken(
    answers: Callable[..., Answers],
) -> None:
    fake = answers(httpx.ConnectError("refused"), 503, 200)
    job.report("http://trainer:8008/", "job-1", {"ok": True})
    assert [url for url, _ in fake.calls] == ["http://trainer:8008/jobs/job-1/result"] * 3
    assert fake.calls[-1][1] == {"ok": True}


def test_a_4xx_answer_to_a_report_is_final(answers: Callable[..., Answers]) -> None:
    fake = answers(409, 200)
    job.report("http://trainer:8008", "job-1", {"ok": False})
    assert len(fake.calls) == 1


def test_a_report_gives_up_after_five_attempts(answers: Callable[..., Answers]) -> None:
    fake = answers(*([500] * 6))
    job.report("http://trainer:8008", "job-1", {"ok": False})
    assert len(fake.calls) == 5
