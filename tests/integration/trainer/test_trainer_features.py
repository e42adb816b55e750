"""The reference pipeline's data stage against the real features service (point in time)."""

from __future__ import annotations

from collections.abc import Generator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pandas as pd  # type: ignore[import-untyped]
import pytest

from driftloop_bus.embedded import EmbeddedBroker
from driftloop_kit.auth import Role
from driftloop_kit.errors import Unavailable
from driftloop_kit.testing import auth_headers
from driftloop_trainer.adapters.labels import LabelStoreClient
from driftloop_trainer.domain.jobs import JobContext, JobSpec
from driftloop_trainer.pipelines.holdout import mask as holdout_mask
from driftloop_trainer.pipelines.sklearn import feature_columns, load_data, split

from ..features.conftest import RunningServer, features_settings, new_flower_ids

pytestmark = pytest.mark.integration

T0 = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)
SPECIES = ["setosa", "versicolor", "virginica"]


@pytest.fixture(scope="module")
def features_server(
    broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    home = tmp_path_factory.mktemp("trainer-features")
    server = RunningServer(
        features_settings(
            home=home, bootstrap_servers=broker.bootstrap_servers, ingest_enabled=False
        )
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


def job_context(model: str, spec: JobSpec, *, features_url: str, work_dir: Path) -> JobContext:
    """What a job of ``model`` is given, with a job token, reading only the features service."""
    return JobContext(
        job_id=f"job-{model}",
        model_name=model,
        parameters={},
        spec=spec,
        trigger={},
        tracking_url="http://unused",
        registry_url="http://unused",
        features_url=features_url,
        experiment_name="unused",
        work_dir=str(work_dir),
        token=auth_headers(job=f"job-{model}")["Authorization"].removeprefix("Bearer "),
    )


def push(url: str, flowers: list[int], at: datetime, sepal_length: float) -> None:
    df = {
        "flower_id": flowers,
        "sepal_length": [sepal_length + i for i in range(len(flowers))],
        "sepal_width": [3.0] * len(flowers),
        "petal_length": [1.5 + i % 3 for i in range(len(flowers))],
        "petal_width": [0.2 + i % 3 for i in range(len(flowers))],
        "site": ["lab"] * len(flowers),
        "event_timestamp": [at.isoformat()] * len(flowers),
        "created": [at.isoformat()] * len(flowers),
    }
    response = httpx.post(
        f"{url}/push",
        json={"push_source_name": "iris_push", "df": df, "to": "offline"},
        headers=auth_headers(),
    )
    assert response.status_code == 200, response.text


def test_the_reference_pipeline_reads_features_as_of_each_labelled_row(
    features_server: RunningServer, tmp_path: Path
) -> None:
    flowers = new_flower_ids(12)
    push(features_server.url, flowers, T0, 1.0)
    # Measured again after the labels were taken: must not leak into training.
    push(features_server.url, flowers, T0 + timedelta(hours=2), 100.0)
    labels = tmp_path / "labels.csv"
    pd.DataFrame(
        {
            "flower_id": flowers,
            "event_timestamp": [
                (T0 + timedelta(hours=1, minutes=i)).isoformat() for i in range(len(flowers))
            ],
            "species": [SPECIES[i % 3] for i in range(len(flowers))],
        }
    ).to_csv(labels, index=False)
    context = job_context(
        "iris-classifier",
        JobSpec(feature_service="iris_classifier", label="species", labels_source=str(labels)),
        features_url=features_server.url,
        work_dir=tmp_path / "job",
    )

    frame, source = load_data(context)

    assert source == f"{features_server.url}/get-historical-features"
    assert len(frame) == len(flowers)
    by_flower = frame.set_index("flower_id")
    assert [by_flower.loc[f, "sepal_length"] for f in flowers] == [
        1.0 + i for i in range(len(flowers))
    ]
    assert list(by_flower.loc[flowers, "species"]) == [SPECIES[i % 3] for i in range(12)]
    training, evaluation, columns, rule = split(frame, context.spec, salt=context.job_id)
    assert columns == ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    assert len(training) + len(evaluation) == 12
    assert 1 <= len(evaluation) <= 7
    # The held-out rows are drawn from the recent labels (the newest 8), and the other
    # recent ones train: both sides see the data the model is meant for.
    times = pd.to_datetime(frame["event_timestamp"], utc=True).sort_values()
    recent = set(times.iloc[-8:])
    assert set(evaluation["event_timestamp"]) <= recent
    assert len(recent & set(training["event_timestamp"])) == 8 - len(evaluation)
    # The trainer, reloading the same rows, finds exactly the same holdout by the rule.
    assert rule is not None
    assert rule.salt == context.job_id
    ordered = training.pipe(lambda t: pd.concat([t, evaluation])).sort_values("event_timestamp")
    chosen = holdout_mask(ordered, rule, columns=columns, label="species")
    assert sorted(ordered[chosen]["flower_id"]) == sorted(evaluation["flower_id"])
    newest_train, newest_eval, _, none = split(frame, context.spec, {"holdout": "newest"})
    assert none is None
    assert newest_eval["event_timestamp"].min() > newest_train["event_timestamp"].max()


def test_without_a_labels_source_the_pipeline_trains_from_the_label_store(
    features_server: RunningServer, tmp_path: Path
) -> None:
    flowers = new_flower_ids(6)
    model = f"iris-{flowers[0]}"
    posted = httpx.post(
        f"{features_server.url}/labels",
        json={
            "labels": [
                {
                    "model_name": model,
                    "entity_keys": {"flower_id": flower},
                    "ground_truth": SPECIES[i % 3],
                    "event_time": (T0 + timedelta(hours=1, minutes=i)).isoformat(),
                }
                for i, flower in enumerate(flowers)
            ]
        },
        timeout=30,
        headers=auth_headers(),
    )
    assert posted.status_code == 202, posted.text
    push(features_server.url, flowers, T0, 1.0)
    push(features_server.url, flowers, T0 + timedelta(hours=2), 100.0)  # newer: not used
    context = job_context(
        model,
        JobSpec(feature_service="iris_classifier", label="species"),
        features_url=features_server.url,
        work_dir=tmp_path / "job",
    )

    frame, source = load_data(context)

    assert source == f"{features_server.url}/labels/{model}/training-set"
    by_flower = frame.set_index("flower_id")
    assert [by_flower.loc[f, "sepal_length"] for f in flowers] == [
        1.0 + i for i in range(len(flowers))
    ]
    assert list(by_flower.loc[flowers, "species"]) == [SPECIES[i % 3] for i in range(6)]
    # The request id stays a key column, never a feature the model is fitted on.
    assert "request_id" in frame.columns
    assert "request_id" not in feature_columns(frame, context.spec)


class Bearer(httpx.Auth):
    def __init__(self, headers: dict[str, str]) -> None:
        self.headers = headers

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers.update(self.headers)
        yield request


async def test_the_trainer_counts_a_models_labels_since_the_drift_began(
    features_server: RunningServer,
) -> None:
    flowers = new_flower_ids(12)
    model = f"iris-{flowers[0]}"
    onset = T0 + timedelta(hours=3)
    async with httpx.AsyncClient(timeout=30) as http:
        posted = await http.post(
            f"{features_server.url}/labels",
            json={
                "labels": [
                    {
                        "model_name": model,
                        "entity_keys": {"flower_id": flower},
                        "ground_truth": SPECIES[i % 3],
                        # Four before the onset, eight from it on.
                        "event_time": (onset + timedelta(minutes=i - 4)).isoformat(),
                    }
                    for i, flower in enumerate(flowers)
                ]
            },
            headers=auth_headers(),
        )
    assert posted.status_code == 202, posted.text
    client = LabelStoreClient(features_server.url, auth=Bearer(auth_headers(Role.READER)))

    assert await client.count(model, since=onset, at_least=100) == 8
    assert await client.count(model, since=onset, at_least=5) == 5  # no more than asked
    assert await client.count(model, since=onset + timedelta(hours=1), at_least=100) == 0
    assert await client.count("no-such-model", since=onset, at_least=10) == 0
    with pytest.raises(Unavailable):
        await LabelStoreClient(features_server.url).count(model, since=onset, at_least=1)
