"""Requests with entity keys only: serving reads their features from the real features service."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import numpy as np
import pandas as pd  # type: ignore[import-untyped]
import pytest
import tritonclient.grpc as triton  # type: ignore[import-untyped]

from driftloop.serving.v1 import events_pb2 as serving_events
from driftloop_bus.embedded import EmbeddedBroker, free_port
from driftloop_events.envelope import from_record
from driftloop_events.errors import EnvelopeError
from driftloop_events.topics import TOPICS
from driftloop_kit.auth import Role
from driftloop_kit.testing import ServedApp, auth_headers

from ..bus.helpers import eventually
from ..features.conftest import RunningServer, features_settings, new_flower_ids, read_records
from ..stack import Stack
from .conftest import Models, serving_settings, start_serving

pytestmark = pytest.mark.integration

COLUMNS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


def start_features(broker: EmbeddedBroker, home: Any) -> RunningServer:
    """The features service on the example repo (no Kafka ingestion: rows come by /push)."""
    server = RunningServer(
        features_settings(
            home=home, bootstrap_servers=broker.bootstrap_servers, ingest_enabled=False
        )
    )
    server.start()
    return server


def push(
    url: str,
    flowers: list[int],
    rows: np.ndarray[Any, Any],
    times: list[datetime] | None = None,
) -> None:
    """``POST /push`` one iris row per flower to the online store (event time: a second
    ago, or ``times``, one per flower)."""
    now = datetime.now(UTC) - timedelta(seconds=1)
    stamps = [t.isoformat() for t in times] if times else [now.isoformat()] * len(flowers)
    df: dict[str, list[Any]] = {"flower_id": flowers}
    df.update({c: rows[:, i].tolist() for i, c in enumerate(COLUMNS)})
    df.update(
        site=["lab"] * len(flowers),
        event_timestamp=stamps,
        created=[now.isoformat()] * len(flowers),
    )
    response = httpx.post(
        f"{url}/push",
        json={"push_source_name": "iris_push", "df": df, "to": "online"},
        timeout=30,
        headers=auth_headers(),
    )
    assert response.status_code == 200, response.text


async def ready(url: str) -> bool:
    async with httpx.AsyncClient(headers=auth_headers()) as client:
        return (await client.get(f"{url}/v2/health/ready")).status_code == 200


def v2_keys(flowers: list[int], **extra: Any) -> dict[str, Any]:
    return {
        "inputs": [
            {"name": "flower_id", "shape": [len(flowers)], "datatype": "INT64", "data": flowers}
        ],
        **extra,
    }


class Flowers:
    """Flower ids pushed to the online store, with their features."""

    def __init__(self, ids: list[int], features: np.ndarray[Any, Any]) -> None:
        self.ids = ids
        self.features = features


@pytest.fixture(scope="module")
def features_server(
    broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    server = start_features(broker, tmp_path_factory.mktemp("serving-features"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def flowers(features_server: RunningServer, iris_models: Models) -> Flowers:
    """Three flowers, one of each species (so the predictions differ), in the online store."""
    features = iris_models.features.to_numpy()[[0, 60, 120]]
    ids = new_flower_ids(3)
    push(features_server.url, ids, features)
    return Flowers(ids, features)


@pytest.fixture(scope="module")
def grpc_port() -> int:
    """Where the served app's V2 gRPC server listens."""
    return free_port()


@pytest.fixture(scope="module")
def served(
    serving_stack: Stack,
    iris_models: Models,
    features_server: RunningServer,
    tmp_path_factory: pytest.TempPathFactory,
    broker: EmbeddedBroker,
    *,
    grpc_port: int,
) -> Iterator[ServedApp]:
    settings = serving_settings(
        serving_stack,
        tmp_path_factory.mktemp("serving-entities"),
        broker.bootstrap_servers,
        models=iris_models.name,
        features_url=features_server.url,
        feature_services={iris_models.name: "iris_classifier"},
        features_timeout_seconds=5,
        grpc_port=grpc_port,
    )
    server = start_serving(settings)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def url(served: ServedApp) -> str:
    await eventually(lambda: ready(served.url), timeout=60)
    return served.url


async def test_entity_keys_over_both_protocols_score_the_online_features(
    url: str, iris_models: Models, flowers: Flowers
) -> None:
    name = iris_models.name
    expected = iris_models.first.predict(pd.DataFrame(flowers.features, columns=COLUMNS)).tolist()
    assert len(set(expected)) == 3
    async with httpx.AsyncClient(headers=auth_headers(), base_url=url, timeout=30) as client:
        v2 = await client.post(f"/v2/models/{name}/infer", json=v2_keys(flowers.ids))
        named = await client.post(
            f"/v2/models/{name}/versions/1/infer",
            json={
                "parameters": {"feature_service": "iris_classifier"},
                "inputs": [
                    {
                        "name": "flower_id",
                        "shape": [len(flowers.ids), 1],
                        "datatype": "INT64",
                        "data": [[i] for i in flowers.ids],
                    }
                ],
            },
        )
        records = await client.post(
            f"/invocations?model={name}",
            json={"dataframe_records": [{"flower_id": i} for i in flowers.ids]},
        )
        split = await client.post(
            f"/models/{name}/invocations",
            json={
                "dataframe_split": {"columns": ["flower_id"], "data": [[i] for i in flowers.ids]},
                "params": {"feature_service": "iris_classifier"},
            },
        )
        csv = await client.post(
            f"/invocations?model={name}",
            content="flower_id\n" + "\n".join(map(str, flowers.ids)) + "\n",
            headers={"Content-Type": "text/csv"},
        )
        # The plain-feature path is unchanged for a model with a feature service.
        plain = await client.post(
            f"/invocations?model={name}", json={"instances": flowers.features.tolist()}
        )
    for response in (v2, named):
        body = response.json()
        assert response.status_code == 200, body
        assert body["outputs"][0]["data"] == expected
        assert body["parameters"]["feature_service"] == "iris_classifier"
    for response in (records, split, csv):
        assert response.status_code == 200, response.text
        assert response.json()["predictions"] == expected
        assert len(response.json()["feature_event_times"]) == len(expected)
    # The plain-feature path answers exactly MLflow's shape.
    assert plain.status_code == 200, plain.text
    assert plain.json() == {"predictions": expected}


async def test_the_prediction_log_holds_the_features_used_and_the_entity_keys(
    url: str, iris_models: Models, flowers: Flowers, broker: EmbeddedBroker
) -> None:
    request_id = f"entity-keys-{flowers.ids[0]}"
    async with httpx.AsyncClient(headers=auth_headers(), base_url=url, timeout=30) as client:
        response = await client.post(
            f"/v2/models/{iris_models.name}/infer", json=v2_keys(flowers.ids, id=request_id)
        )
    assert response.status_code == 200, response.text

    def ours(record: Any) -> bool:
        try:
            event = from_record(record.value, list(record.headers))
        except EnvelopeError:  # another test's poison record on the shared broker
            return False
        return bool(event.data.request_id == request_id)

    records = await read_records(
        broker.bootstrap_servers, TOPICS["predictions"].name, ours, expected=1, timeout=30
    )
    assert len(records) == 1
    logged: serving_events.PredictionLogged = from_record(
        records[0].value, list(records[0].headers)
    ).data
    inputs = [
        {name: getattr(value, value.WhichOneof("kind")) for name, value in row.fields.items()}
        for row in logged.inputs
    ]
    assert inputs == [
        {"flower_id": flower, **dict(zip(COLUMNS, row.tolist(), strict=True))}
        for flower, row in zip(flowers.ids, flowers.features, strict=True)
    ]
    assert [row.fields["flower_id"].WhichOneof("kind") for row in logged.inputs] == [
        "int64_value"
    ] * 3


async def test_keyed_answers_and_records_carry_the_event_times_the_store_holds(
    url: str,
    iris_models: Models,
    features_server: RunningServer,
    broker: EmbeddedBroker,
) -> None:
    name = iris_models.name
    ids = new_flower_ids(2)
    # Two flowers written at known times, days and hours apart (within the view's TTL;
    # whole seconds: the SQLite online store keeps its event times to the second).
    base = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)
    written = [base, base + timedelta(hours=5, seconds=7)]
    await asyncio.to_thread(
        push, features_server.url, ids, iris_models.features.to_numpy()[[0, 120]], written
    )
    expected_times = [dict.fromkeys(COLUMNS, f"{t:%Y-%m-%dT%H:%M:%S}Z") for t in written]
    request_id = f"feature-times-{ids[0]}"
    async with httpx.AsyncClient(headers=auth_headers(), base_url=url, timeout=30) as client:
        v2 = await client.post(f"/v2/models/{name}/infer", json=v2_keys(ids, id=request_id))
        mlflow_ = await client.post(
            f"/invocations?model={name}",
            json={"dataframe_records": [{"flower_id": i} for i in reversed(ids)]},
        )
    assert v2.status_code == 200, v2.text
    assert v2.json()["parameters"]["feature_event_times"] == expected_times
    assert mlflow_.status_code == 200, mlflow_.text
    assert mlflow_.json()["feature_event_times"] == expected_times[::-1]

    def ours(record: Any) -> bool:
        try:
            event = from_record(record.value, list(record.headers))
        except EnvelopeError:  # another test's poison record on the shared broker
            return False
        inputs = (
            event.data.inputs if isinstance(event.data, serving_events.PredictionLogged) else []
        )
        return bool(inputs) and inputs[0].fields["flower_id"].int64_value in ids

    records = await read_records(
        broker.bootstrap_servers, TOPICS["predictions"].name, ours, expected=2, timeout=30
    )
    assert len(records) == 2
    logged = [from_record(r.value, list(r.headers)).data for r in records]
    by_request = {event.request_id == request_id: event for event in logged}
    for event, rows in ((by_request[True], ids), (by_request[False], ids[::-1])):
        assert [row.fields["flower_id"].int64_value for row in event.inputs] == rows
        assert [
            {k: v.timestamp_value.ToDatetime(tzinfo=UTC) for k, v in row.fields.items()}
            for row in event.feature_times
        ] == [dict.fromkeys(COLUMNS, written[ids.index(flower)]) for flower in rows]


async def test_a_keyed_grpc_answer_carries_the_event_times_as_json_in_a_parameter(
    url: str,
    iris_models: Models,
    features_server: RunningServer,
    grpc_port: int,
) -> None:
    ids = new_flower_ids(2)
    written = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)
    await asyncio.to_thread(
        push, features_server.url, ids, iris_models.features.to_numpy()[[0, 60]], [written] * 2
    )
    tensor = triton.InferInput("flower_id", [2], "INT64")
    tensor.set_data_from_numpy(np.array(ids, dtype=np.int64))
    headers = {key.lower(): value for key, value in auth_headers(Role.READER).items()}
    client = triton.InferenceServerClient(url=f"127.0.0.1:{grpc_port}")
    try:
        result = await asyncio.to_thread(client.infer, iris_models.name, [tensor], headers=headers)
    finally:
        client.close()
    parameters = result.get_response().parameters
    assert parameters["feature_service"].string_param == "iris_classifier"
    assert (
        json.loads(parameters["feature_event_times"].string_param)
        == [dict.fromkeys(COLUMNS, f"{written:%Y-%m-%dT%H:%M:%S}Z")] * 2
    )


async def test_unknown_entities_and_feature_services_are_4xx_naming_them(
    url: str, iris_models: Models, flowers: Flowers
) -> None:
    name = iris_models.name
    unknown = new_flower_ids(1)[0]
    async with httpx.AsyncClient(headers=auth_headers(), base_url=url, timeout=30) as client:
        v2 = await client.post(f"/v2/models/{name}/infer", json=v2_keys([flowers.ids[0], unknown]))
        mlflow_ = await client.post(
            f"/invocations?model={name}", json={"dataframe_records": [{"flower_id": unknown}]}
        )
        service = await client.post(
            f"/v2/models/{name}/infer",
            json=v2_keys(flowers.ids, parameters={"feature_service": "no_such_service"}),
        )
        mlflow_service = await client.post(
            f"/invocations?model={name}",
            json={
                "dataframe_records": [{"flower_id": flowers.ids[0]}],
                "params": {"feature_service": "no_such_service"},
            },
        )
        mixed = await client.post(
            f"/invocations?model={name}",
            json={
                "dataframe_records": [{"flower_id": flowers.ids[0], "sepal_length": 5.0}],
                "params": {"feature_service": "iris_classifier"},
            },
        )
        wrong_key = await client.post(
            f"/v2/models/{name}/infer",
            json={"inputs": [{"name": "flowerid", "shape": [1], "datatype": "INT64", "data": [1]}]},
        )
    assert v2.status_code == 404, v2.text
    assert f"flower_id={unknown}" in v2.json()["error"]
    assert f"flower_id={flowers.ids[0]}" not in v2.json()["error"]
    assert mlflow_.status_code == 404, mlflow_.text
    assert mlflow_.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    assert f"flower_id={unknown}" in mlflow_.json()["message"]
    assert service.status_code == 404, service.text
    assert "no_such_service" in service.json()["error"]
    assert mlflow_service.status_code == 404, mlflow_service.text
    assert "no_such_service" in mlflow_service.json()["message"]
    assert mixed.status_code == 400, mixed.text
    assert "sepal_length" in mixed.json()["message"]
    assert wrong_key.status_code == 400, wrong_key.text
    assert "flower_id" in wrong_key.json()["error"]


async def test_with_the_features_service_stopped_entity_requests_get_503_and_features_still_score(
    serving_stack: Stack,
    iris_models: Models,
    broker: EmbeddedBroker,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    name = iris_models.name
    features = await asyncio.to_thread(
        start_features, broker, tmp_path_factory.mktemp("features-to-stop")
    )
    stopped = False
    flower = new_flower_ids(1)
    row = iris_models.features.to_numpy()[:1]
    expected = iris_models.first.predict(iris_models.features.iloc[:1]).tolist()
    settings = serving_settings(
        serving_stack,
        tmp_path_factory.mktemp("serving-features-down"),
        broker.bootstrap_servers,
        models=name,
        features_url=features.url,
        feature_services={name: "iris_classifier"},
        features_timeout_seconds=2,
    )
    server = await asyncio.to_thread(start_serving, settings)
    try:
        await asyncio.to_thread(push, features.url, flower, row)
        await eventually(lambda: ready(server.url), timeout=60)
        async with httpx.AsyncClient(
            headers=auth_headers(), base_url=server.url, timeout=30
        ) as client:
            before = await client.post(f"/v2/models/{name}/infer", json=v2_keys(flower))
            assert before.status_code == 200, before.text
            assert before.json()["outputs"][0]["data"] == expected

            await asyncio.to_thread(features.stop)
            stopped = True
            v2 = await client.post(f"/v2/models/{name}/infer", json=v2_keys(flower))
            mlflow_ = await client.post(
                f"/invocations?model={name}", json={"dataframe_records": [{"flower_id": flower[0]}]}
            )
            plain = await client.post(
                f"/v2/models/{name}/infer",
                json={
                    "inputs": [
                        {"name": "x", "shape": [1, 4], "datatype": "FP64", "data": row[0].tolist()}
                    ]
                },
            )
    finally:
        await asyncio.to_thread(server.stop)
        if not stopped:
            await asyncio.to_thread(features.stop)
    assert v2.status_code == 503, v2.text
    assert features.url in v2.json()["error"]
    assert mlflow_.status_code == 503, mlflow_.text
    assert mlflow_.json()["error_code"] == "TEMPORARILY_UNAVAILABLE"
    assert plain.status_code == 200, plain.text
    assert plain.json()["outputs"][0]["data"] == expected
