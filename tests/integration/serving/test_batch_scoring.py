"""Batch scoring: a file scored with a registered model, a chunk at a time.

Through the real registry (the mlflow client registers and aliases the model) and the
module's embedded broker: ``driftloop score`` scores a million rows in a process that
stays under 1 GiB and writes the model's own predictions; the prediction records reach
the ``predictions`` topic on route ``batch``, several rows each; a value that does not
fit is an error naming its column and row, and no output is left behind; the same runs
as a trainer job of kind ``score`` through its local executor.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd  # type: ignore[import-untyped]
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from mlflow import MlflowClient
from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]

from driftloop.serving.v1 import events_pb2 as serving_events
from driftloop_bus.embedded import EmbeddedBroker
from driftloop_events.envelope import from_record
from driftloop_events.topics import TOPICS
from driftloop_events.values import record_to_dict
from driftloop_serving.domain.batch import BatchInputError
from driftloop_serving.entrypoints.batch import ScoreOptions, score

from ..features.conftest import read_records
from ..stack import Stack
from ..trainer.conftest import running_trainer, wait_for_job
from .conftest import Models, iris_frame, register_sklearn

pytestmark = pytest.mark.integration

NAME = "batch-iris"
COLUMNS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
DRIFTLOOP = str(Path(sys.executable).with_name("driftloop"))
#: Runs a command and prints the peak RSS (KiB) of its process tree's largest process.
PEAK_RSS = (
    "import resource, subprocess, sys\n"
    "code = subprocess.run(sys.argv[1:]).returncode\n"
    "print('PEAK_RSS_KIB', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    "sys.exit(code)\n"
)


@pytest.fixture(scope="module")
def batch_model(serving_stack: Stack) -> Models:
    """A linear iris classifier (the fast path), registered and ``champion``."""
    frame, labels = iris_frame()
    model = LogisticRegression(max_iter=500).fit(frame, labels)
    register_sklearn(NAME, model, frame)
    MlflowClient().set_registered_model_alias(NAME, "champion", "1")
    return Models(name=NAME, features=frame, first=model, second=model)


def score_command(
    stack: Stack, broker: EmbeddedBroker, tmp_path: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    """``driftloop score`` against the module's registry and broker, its peak RSS printed."""
    return subprocess.run(
        [
            sys.executable,
            "-c",
            PEAK_RSS,
            DRIFTLOOP,
            "score",
            *args,
            "--registry-url",
            stack.registry_url,
            "--bootstrap-servers",
            broker.bootstrap_servers,
            "--home",
            str(tmp_path / "home"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def rows(count: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        rng.normal([5.8, 3.0, 3.8, 1.2], [0.8, 0.4, 1.7, 0.7], (count, 4)), columns=COLUMNS
    )
    frame.insert(0, "id", np.arange(count, dtype=np.int64))
    return frame


def peak_rss_mib(result: subprocess.CompletedProcess[str]) -> float:
    line = next(x for x in result.stdout.splitlines() if x.startswith("PEAK_RSS_KIB"))
    return int(line.split()[1]) / 1024


def test_a_million_rows_score_in_under_a_gibibyte_with_the_models_own_predictions(
    serving_stack: Stack, broker: EmbeddedBroker, batch_model: Models, tmp_path: Path
) -> None:
    total = 1_000_000
    source = tmp_path / "rows.parquet"
    with pq.ParquetWriter(source, pa.Schema.from_pandas(rows(1), preserve_index=False)) as out:
        for start in range(0, total, 250_000):  # the test itself never holds the file either
            part = rows(250_000, seed=start)
            part["id"] += start
            out.write_table(pa.Table.from_pandas(part, preserve_index=False))
    output = tmp_path / "scored.parquet"

    result = score_command(
        serving_stack, broker, tmp_path, NAME, "--input", str(source), "--output", str(output),
        "--keep", "id", "--no-log",
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.splitlines()[0])
    assert summary["rows"] == total
    assert summary["version"] == 1
    peak = peak_rss_mib(result)
    print(f"batch scoring: {total} rows in {summary['seconds']} s, peak RSS {peak:.0f} MiB")
    assert peak < 1024
    scored = pq.ParquetFile(output)
    assert scored.metadata.num_rows == total
    assert scored.schema_arrow.names == ["id", "prediction"]
    checked = 0
    for batch in scored.iter_batches(batch_size=250_000):  # the same rows, in order
        part = batch.to_pandas()
        expected_rows = rows(250_000, seed=checked)
        np.testing.assert_array_equal(part["id"].to_numpy(), np.arange(checked, checked + 250_000))
        np.testing.assert_array_equal(
            part["prediction"].to_numpy(), batch_model.first.predict(expected_rows[COLUMNS])
        )
        checked += 250_000
    assert checked == total


def options(stack: Stack, broker: EmbeddedBroker, tmp_path: Path, **given: Any) -> ScoreOptions:
    """A run in this process against the module's registry and broker."""
    return ScoreOptions(
        registry_url=stack.registry_url,
        bootstrap_servers=broker.bootstrap_servers,
        cache=tmp_path / "models",
        token=os.environ["MLFLOW_TRACKING_TOKEN"],
        **given,
    )


async def test_batch_predictions_reach_the_topic_several_rows_a_record_on_route_batch(
    serving_stack: Stack, broker: EmbeddedBroker, batch_model: Models, tmp_path: Path
) -> None:
    frame = rows(1_200, seed=7)
    source = tmp_path / "rows.csv"
    frame.to_csv(source, index=False)
    output = tmp_path / "scored.csv"

    result = await score(
        options(
            serving_stack, broker, tmp_path, model=f"models:/{NAME}@champion",
            input=str(source), output=str(output), keep=("id",), chunk_rows=700,
            run_id="batch-topic",
        )
    )  # fmt: skip

    assert result.records == 3  # chunks of 700 and 500 rows, records of at most 500 rows
    expected = batch_model.first.predict(frame[COLUMNS])
    np.testing.assert_array_equal(pd.read_csv(output)["prediction"].to_numpy(), expected)

    def of_this_run(record: Any) -> bool:
        # Records are keyed by model; the request ids name the run.
        event = from_record(record.value, list(record.headers))
        return bool(event.data.request_id.startswith("batch-topic-"))

    found = await read_records(
        broker.bootstrap_servers, TOPICS["predictions"].name, of_this_run, expected=3
    )
    events: list[serving_events.PredictionLogged] = [
        from_record(record.value, list(record.headers)).data for record in found
    ]
    assert {event.route for event in events} == {serving_events.ROUTE_BATCH}
    assert sorted(len(event.inputs) for event in events) == [200, 500, 500]
    assert {(event.model.name, event.model.version, event.alias) for event in events} == {
        (NAME, 1, "champion")
    }
    by_row = sorted(events, key=lambda event: int(event.request_id.rsplit("-", 1)[1]))
    logged_inputs = [record_to_dict(r) for event in by_row for r in event.inputs]
    logged = [record_to_dict(r)["prediction"] for event in by_row for r in event.outputs]
    assert logged == expected.tolist()
    assert logged_inputs[0] == {c: pytest.approx(frame[c][0]) for c in COLUMNS}


async def test_a_value_that_is_not_a_number_names_its_column_and_row_and_leaves_no_output(
    serving_stack: Stack, broker: EmbeddedBroker, batch_model: Models, tmp_path: Path
) -> None:
    frame = rows(1_000).astype({"petal_length": object})
    frame.loc[701, "petal_length"] = "long"
    source = tmp_path / "rows.csv"
    frame.to_csv(source, index=False)
    output = tmp_path / "out" / "scored.parquet"
    output.parent.mkdir()

    with pytest.raises(BatchInputError, match="column 'petal_length', row 701: 'long' is not"):
        await score(
            options(
                serving_stack, broker, tmp_path, model=NAME, input=str(source),
                output=str(output), keep=("id",), chunk_rows=256, log=False,
            )
        )  # fmt: skip

    assert list(output.parent.iterdir()) == []  # neither the output nor its partial file


async def test_a_column_the_model_does_not_take_is_refused_before_anything_is_scored(
    serving_stack: Stack, broker: EmbeddedBroker, batch_model: Models, tmp_path: Path
) -> None:
    source = tmp_path / "rows.parquet"
    rows(10).to_parquet(source, index=False)
    output = tmp_path / "scored.parquet"

    with pytest.raises(BatchInputError, match="column 'id' of the input is not an input"):
        await score(
            options(
                serving_stack, broker, tmp_path, model=NAME, input=str(source),
                output=str(output), log=False,
            )
        )  # fmt: skip

    assert not output.exists()


async def test_a_scoring_job_runs_through_the_trainers_local_executor(
    serving_stack: Stack,
    broker: EmbeddedBroker,
    batch_model: Models,
    tmp_path: Path,
    sqlite_url: str,
) -> None:
    data = tmp_path / "scoring"
    data.mkdir()
    frame = rows(3_000, seed=3)
    frame.to_parquet(data / "in.parquet", index=False)
    async with running_trainer(
        home=tmp_path / "trainer",
        database_url=sqlite_url,
        bootstrap_servers=broker.bootstrap_servers,
        models={},
        registry_url=serving_stack.registry_url,
        score_uris=[str(data)],
        warm_process=False,
    ) as trainer:
        outside = await trainer.post(
            "/jobs",
            json={
                "model": NAME,
                "input_uri": str(data / ".." / "elsewhere.parquet"),
                "output_uri": str(data / "out.parquet"),
            },
        )
        submitted = await trainer.post(
            "/jobs",
            json={
                "kind": "score",
                "model": f"{NAME}/1",
                "input_uri": f"file://{data / 'in.parquet'}",
                "output_uri": f"file://{data / 'out.parquet'}",
                "keep": ["id"],
                "log": False,
            },
        )
        assert submitted.status_code == 202, submitted.text
        job = await wait_for_job(trainer, submitted.json()["job"]["id"], timeout=240)
        logs = (await trainer.get(f"/jobs/{job['id']}/logs", params={"tail": 30})).text

    assert outside.status_code == 400
    assert "is not under a folder scoring jobs may use" in outside.json()["message"]
    assert job["status"] == "succeeded", logs
    assert job["kind"] == "score"
    assert job["result"]["rows"] == 3_000
    assert job["result"]["version"] == 1
    scored = pd.read_parquet(data / "out.parquet")
    np.testing.assert_array_equal(scored["id"].to_numpy(), frame["id"].to_numpy())
    np.testing.assert_array_equal(
        scored["prediction"].to_numpy(), batch_model.first.predict(frame[COLUMNS])
    )
