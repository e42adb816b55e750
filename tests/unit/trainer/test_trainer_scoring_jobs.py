"""Jobs of kind ``score`` against fakes: where they may read and write, what the job's
context and record say, and that they leave the training policy and its events alone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from driftloop_kit.errors import InvalidInput
from driftloop_trainer.domain.jobs import (
    SCORE_ENTRY_POINT,
    JobKind,
    ModelConfig,
    ScoreRequest,
    allowed_uri,
)
from driftloop_trainer.service_layer.training import Endpoints, Training
from tests.fakes.common import FakeOutbox
from tests.fakes.trainer import FakeExecutor, FakeRegistry, FakeTrainerStore

pytestmark = pytest.mark.unit

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
