"""Jobs of kind ``score`` against fakes: where they may read and write, what the job's
context and record say, and that they leave the training policy and its events alone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from driftloop_kit.errors import InvalidInput
from driftloop_trainer.domain.jobs import (
    SCORE_ENTRY_POINT,
    JobContext,
    JobKind,
    JobSpec,
    ModelConfig,
    ScoreRequest,
    allowed_uri,
)
from driftloop_trainer.entrypoints.job import run
from driftloop_trainer.service_layer.training import Endpoints, Training
from tests.fakes.common import FakeOutbox
from tests.fakes.trainer import FakeExecutor, FakeRegistry, FakeTrainerStore

pytestmark = pytest.mark.unit

HERE = "tests.unit.trainer.test_trainer_scoring_jobs"
SCORED = {"ok": True, "result": {"rows": 10, "version": 2, "output_uri": "/data/out.csv"}}


def training(tmp_path: Path, outcome: dict[str, Any]) -> tuple[Training, FakeTrainerStore]:
    outbox = FakeOutbox()  # the store's: a scoring job must stage nothing in it
    store = FakeTrainerStore(outbox=outbox)
    found = Training(
        models={"iris": ModelConfig()},
        store=store,
        registry=FakeRegistry(),
        executor=FakeExecutor(outcome),
        endpoints=Endpoints(
            "http://t",
            "http://r",
            "http://f",
            "exp",
            tmp_path,
            kafka_bootstrap_servers="kafka:9092",
            score_bases=("/data",),
        ),
    )
    return found, store


@pytest.mark.parametrize(
    ("uri", "allowed"),
    [
        ("/data/in.parquet", True),
        ("file:///data/sub/in.csv", True),
        ("/data/../etc/passwd", False),
        ("/database/in.csv", False),
        ("in.csv", False),
        ("s3://data/in.csv", False),
    ],
)
def test_a_scoring_job_opens_only_files_under_a_configured_base(uri: str, allowed: bool) -> None:
    assert allowed_uri(uri, ["/data"]) is allowed


def test_the_model_of_a_reference_is_its_name_whatever_the_form() -> None:
    names = {
        ScoreRequest(model=text, input_uri="/data/a.csv", output_uri="/data/b.csv").model_name
        for text in ("iris", "iris@champion", "iris/2", "models:/iris@challenger")
    }
    assert names == {"iris"}


async def test_a_scoring_job_is_run_by_the_executor_and_keeps_its_result(tmp_path: Path) -> None:
    use_cases, store = training(tmp_path, SCORED)
    request = ScoreRequest(
        model="iris@champion", input_uri="/data/in.csv", output_uri="/data/out.csv"
    )

    job_id = await use_cases.submit_score(request, by="user:ana")
    await use_cases.wait_idle()

    job = await store.get_job(job_id)
    assert job["status"] == "succeeded"
    assert job["result"] == SCORED["result"]
    assert job["spec"]["entry_point"] == SCORE_ENTRY_POINT
    assert job["parameters"]["bootstrap_servers"] == "kafka:9092"
    context = use_cases.context(job)
    assert context.kind == JobKind.SCORE
    assert context.parameters["model"] == "iris@champion"
    assert store.outbox.events == []  # type: ignore[attr-defined]  # no training.* event


async def test_a_scoring_job_outside_the_bases_is_refused_and_nothing_is_queued(
    tmp_path: Path,
) -> None:
    use_cases, store = training(tmp_path, SCORED)
    request = ScoreRequest(model="iris", input_uri="/data/in.csv", output_uri="/tmp/out.csv")

    with pytest.raises(InvalidInput, match=r"output_uri '/tmp/out\.csv' is not under"):
        await use_cases.submit_score(request, by="user:ana")

    assert store.jobs == {}


async def test_a_failed_scoring_job_keeps_its_error(tmp_path: Path) -> None:
    failed = {"ok": False, "stage": "data", "error": "column 'a', row 3: null", "error_type": "X"}
    use_cases, store = training(tmp_path, failed)
    request = ScoreRequest(model="iris", input_uri="/data/in.csv", output_uri="/data/out.csv")

    job_id = await use_cases.submit_score(request, by="user:ana")
    await use_cases.wait_idle()

    job = await store.get_job(job_id)
    assert job["status"] == "failed"
    assert job["error"] == "column 'a', row 3: null"
    assert store.outbox.events == []  # type: ignore[attr-defined]  # no training.failed


def scores(context: JobContext) -> dict[str, Any]:
    return {"rows": 7, "output_uri": context.parameters["output_uri"]}


def bad_column(context: JobContext) -> dict[str, Any]:
    raise ValueError("column 'a', row 3: null, and the model takes a number")


def score_context(entry_point: str, tmp_path: Path) -> JobContext:
    return JobContext(
        job_id="job-1",
        model_name="iris",
        parameters={"output_uri": "/data/out.csv"},
        spec=JobSpec(entry_point=entry_point),
        trigger={},
        tracking_url="",
        registry_url="",
        features_url="",
        experiment_name="",
        work_dir=str(tmp_path),
        kind=JobKind.SCORE.value,
    )


def test_the_job_process_keeps_what_a_scoring_entry_point_returns(tmp_path: Path) -> None:
    outcome = run(score_context(f"{HERE}:scores", tmp_path))

    assert outcome == {"ok": True, "result": {"rows": 7, "output_uri": "/data/out.csv"}}


def test_a_scoring_that_fails_fails_the_data_stage_with_its_message(tmp_path: Path) -> None:
    outcome = run(score_context(f"{HERE}:bad_column", tmp_path))

    assert (outcome["stage"], outcome["error"]) == (
        "data",
        "column 'a', row 3: null, and the model takes a number",
    )


def test_a_scoring_context_survives_its_json_form(tmp_path: Path) -> None:
    context = score_context(f"{HERE}:scores", tmp_path)

    assert JobContext.from_json(context.to_json()).kind == "score"
