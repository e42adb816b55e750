"""A model's training set from the label store: each label joined with the features as
of its event time (nothing newer), whether the label came before its features or hours
after them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from driftloop_kit.testing import auth_headers

from .conftest import RunningServer, new_flower_ids

pytestmark = pytest.mark.integration

T0 = datetime(2030, 7, 1, 12, 0, tzinfo=UTC)


def _push(url: str, flower_id: int, at: datetime, sepal_length: float) -> None:
    df = {
        "flower_id": [flower_id],
        "sepal_length": [sepal_length],
        "sepal_width": [3.0],
        "petal_length": [1.5],
        "petal_width": [0.25],
        "site": ["lab"],
        "event_timestamp": [at.isoformat()],
        "created": [at.isoformat()],
    }
    response = httpx.post(
        f"{url}/push",
        json={"push_source_name": "iris_push", "df": df, "to": "online_and_offline"},
        timeout=30,
        headers=auth_headers(),
    )
    assert response.status_code == 200, response.text


def _label(model: str, at: datetime, truth: str, **keys: object) -> dict[str, object]:
    return {"model_name": model, "ground_truth": truth, "event_time": at.isoformat(), **keys}


def test_the_training_set_joins_each_label_with_the_features_as_of_its_event_time(
    sqlite_server: RunningServer,
) -> None:
    url = sqlite_server.url
    model = f"iris-{uuid.uuid4().hex[:8]}"
    early, late = new_flower_ids(2)
    # The label of `late` arrives before any of its features exist.
    posted = httpx.post(
        f"{url}/labels",
        json={
            "labels": [
                _label(
                    model, T0 + timedelta(minutes=30), "virginica", entity_keys={"flower_id": late}
                ),
            ]
        },
        timeout=30,
        headers=auth_headers(),
    )
    assert posted.status_code == 202, posted.text
    _push(url, early, T0 - timedelta(hours=1), 5.0)
    _push(url, early, T0 + timedelta(hours=1), 7.0)
    _push(url, late, T0, 6.0)
    _push(url, late, T0 + timedelta(hours=2), 9.0)
    # Labels of `early` come hours after its features; one names a request id only.
    posted = httpx.post(
        f"{url}/labels",
        json={
            "labels": [
                _label(model, T0, "setosa", entity_keys={"flower_id": early}),
                _label(
                    model,
                    T0 + timedelta(hours=5),
                    "versicolor",
                    entity_keys={"flower_id": early},
                    request_id="req-9",
                ),
                _label(model, T0, "setosa", request_id="req-only"),
            ]
        },
        timeout=30,
        headers=auth_headers(),
    )
    assert posted.status_code == 202, posted.text

    response = httpx.post(
        f"{url}/labels/{model}/training-set",
        json={"features": ["iris_features:sepal_length"], "label_column": "species"},
        headers={**auth_headers(), "accept": "application/json"},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    rows = [dict(zip(answer["columns"], row, strict=True)) for row in answer["data"]]
    got = sorted((r["flower_id"], r["species"], r["sepal_length"]) for r in rows)
    assert got == sorted(
        [(late, "virginica", 6.0), (early, "setosa", 5.0), (early, "versicolor", 7.0)]
    )


def test_a_training_set_of_a_model_without_labels_is_a_400(sqlite_server: RunningServer) -> None:
    response = httpx.post(
        f"{sqlite_server.url}/labels/no-such-model/training-set",
        json={"features": ["iris_features:sepal_length"]},
        timeout=30,
        headers=auth_headers(),
    )
    assert response.status_code == 400, response.text
    assert "no labels" in response.text


async def test_a_label_keyed_by_a_request_id_alone_gets_the_inputs_its_prediction_was_given(
    sqlite_server: RunningServer,
) -> None:
    from driftloop.common.v1.common_pb2 import ModelRef
    from driftloop.serving.v1 import events_pb2 as serving
    from driftloop_bus.publisher import Publisher
    from driftloop_events.envelope import CloudEvent
    from driftloop_events.topics import TOPICS
    from driftloop_events.values import make_record

    from ..bus.helpers import eventually

    url = sqlite_server.url
    model = f"iris-{uuid.uuid4().hex[:8]}"
    one, two, multi = (f"req-{uuid.uuid4().hex[:10]}" for _ in range(3))
    seen_at = T0 + timedelta(minutes=3)

    def prediction(request_id: str, *rows: float) -> CloudEvent[serving.PredictionLogged]:
        logged = serving.PredictionLogged(
            request_id=request_id,
            model=ModelRef(name=model, version=1),
            inputs=[make_record({"sepal_length": value, "petal_width": 0.2}) for value in rows],
            outputs=[make_record({"prediction": "setosa"}) for _ in rows],
            request_time=seen_at,
        )
        return CloudEvent.new(logged)

    publisher = Publisher(
        sqlite_server.settings.kafka_bootstrap_servers, topics=[TOPICS["predictions"]]
    )
    await publisher.start()
    try:
        for event in (prediction(one, 4.4), prediction(two, 6.6), prediction(multi, 5.0, 5.1)):
            await publisher.publish(event)
        await publisher.flush()
    finally:
        await publisher.stop()
    # Labels name the requests only; `multi` had two rows, so its label says nothing
    # about which one, and a request never seen has nothing to join.
    (flower,) = new_flower_ids(1)
    _push(url, flower, T0, 5.5)  # and one label keyed by its entity, in the same set
    labels = [
        _label(model, T0 + timedelta(hours=1), "versicolor", entity_keys={"flower_id": flower}),
        _label(model, T0 + timedelta(hours=1), "setosa", request_id=one),
        _label(model, T0 + timedelta(hours=1), "virginica", request_id=two),
        _label(model, T0 + timedelta(hours=1), "setosa", request_id=multi),
        _label(model, T0 + timedelta(hours=1), "setosa", request_id="req-never-seen"),
    ]
    async with httpx.AsyncClient(timeout=60, headers=auth_headers()) as client:
        posted = await client.post(f"{url}/labels", json={"labels": labels})
        assert posted.status_code == 202, posted.text

        async def training_set() -> list[dict[str, object]] | None:
            response = await client.post(
                f"{url}/labels/{model}/training-set",
                json={"features": ["iris_features:sepal_length"], "label_column": "species"},
                headers={"accept": "application/json"},
            )
            if response.status_code != 200:
                return None
            answer = response.json()
            rows = [dict(zip(answer["columns"], row, strict=True)) for row in answer["data"]]
            return rows if len(rows) == 3 else None

        rows = await eventually(training_set, timeout=90)  # a loaded CI machine

    got = sorted((str(r["request_id"]), r["species"], r["sepal_length"]) for r in rows)
    assert got == sorted(
        [(one, "setosa", 4.4), (two, "virginica", 6.6), ("None", "versicolor", 5.5)]
    )
    # A logged row's time is when the model was asked: the features it saw then.
    logged = [r for r in rows if r["request_id"] in (one, two)]
    times = {datetime.fromisoformat(str(r["event_timestamp"])) for r in logged}
    assert times == {seen_at}
