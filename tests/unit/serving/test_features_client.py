"""The features client asks as ``feast serve`` expects and turns its failures into statuses."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pydantic
import pytest

from driftloop.serving.v1 import events_pb2 as serving
from driftloop_events.envelope import from_record
from driftloop_kit.errors import DriftloopError
from driftloop_serving.adapters.features import FeaturesClient
from driftloop_serving.domain.models import Column, Predictor, ServedModel
from driftloop_serving.service_layer.scoring import Scorer
from driftloop_serving.settings import ServingSettings
from tests.fakes.serving import FakePredictionLog, FakeServedModels

pytestmark = pytest.mark.unit

ANSWER = {
    "metadata": {"feature_names": ["flower_id", "iris__a", "iris__b"]},
    "results": [
        {"values": [7, 8], "statuses": ["PRESENT"] * 2},
        {"values": [1.0, 3.0], "statuses": ["PRESENT"] * 2},
        {"values": [2.0, 4.0], "statuses": ["PRESENT"] * 2},
    ],
}


def client(handler: Callable[[httpx.Request], httpx.Response]) -> FeaturesClient:
    return FeaturesClient(
        "http://features:6566/", timeout=0.5, transport=httpx.MockTransport(handler)
    )


async def test_a_lookup_sends_the_feature_service_or_references_with_full_names() -> None:
    sent: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url == "http://features:6566/get-online-features"
        sent.append(json.loads(request.content))
        return httpx.Response(200, json=ANSWER)

    features = client(handler)
    assert await features.get_online_features(source="fs", entities={"flower_id": [7]}) == ANSWER
    await features.get_online_features(source=["iris:a"], entities={"flower_id": [7]})
    await features.stop()
    assert sent == [
        {"entities": {"flower_id": [7]}, "full_feature_names": True, "feature_service": "fs"},
        {"entities": {"flower_id": [7]}, "full_feature_names": True, "features": ["iris:a"]},
    ]


def _raise(error: Exception) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        raise error

    return handler


@pytest.mark.parametrize(
    ("handler", "status", "message"),
    [
        (
            _raise(httpx.ReadTimeout("slow")),
            503,
            "at http://features:6566 did not answer within 0.5s",
        ),
        (_raise(httpx.ConnectError("refused")), 503, "unreachable: refused"),
        (
            lambda r: httpx.Response(
                404, json={"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "no fs"}
            ),
            404,
            "feature service 'fs': no fs",
        ),
        (lambda r: httpx.Response(400, json={"message": "bad key"}), 400, "bad key"),
        (lambda r: httpx.Response(500, text="boom"), 502, "failed (500): boom"),
        (lambda r: httpx.Response(200, text="not json"), 502, "invalid JSON"),
        (lambda r: httpx.Response(200, json=[1]), 502, "not an object"),
    ],
    ids=["timeout", "refused", "unknown-service", "refused-keys", "failing", "garbage", "list"],
)
async def test_failures_become_errors_whose_status_says_whose_fault_it_is(
    handler: Callable[[httpx.Request], httpx.Response], status: int, message: str
) -> None:
    features = client(handler)
    with pytest.raises(DriftloopError) as raised:
        await features.get_online_features(source="fs", entities={"flower_id": [7]})
    await features.stop()
    assert raised.value.status_code == status
    assert message in raised.value.message


async def test_the_record_of_an_entity_request_holds_the_features_and_the_keys(
    tmp_path: Path,
) -> None:
    predictor = Predictor(
        flavor="sklearn",
        columns=(Column("b", "double"), Column("a", "double")),
        predict=lambda m: m[:, 0] * 10,
    )
    model = ServedModel(name="m", version=3, run_id="r" * 32, alias="champion", predictor=predictor)
    log = FakePredictionLog()
    settings = ServingSettings(home=tmp_path, models="m", feature_services={"m": "fs"})
    features = client(lambda r: httpx.Response(200, json=ANSWER))
    scorer = Scorer(settings, FakeServedModels(model), log, features)
    entities: dict[str, list[Any]] = {"flower_id": [7, 8]}

    source = scorer.feature_source("m", None)
    matrix, names = await scorer.online_matrix(
        "m", source="fs", entities=entities, columns=["b", "a"]
    )
    answer = scorer.score("m", matrix, entities=entities, feature_names=names)
    await features.stop()

    assert source == "fs"
    assert scorer.feature_source("m", "other") == "other"
    assert scorer.feature_source("unconfigured", None) is None
    assert np.array_equal(answer.predictions, [20.0, 40.0])
    event = from_record(log.records[0].value, log.records[0].headers).data
    assert isinstance(event, serving.PredictionLogged)
    assert [
        {k: getattr(v, v.WhichOneof("kind")) for k, v in row.fields.items()} for row in event.inputs
    ] == [{"b": 2.0, "a": 1.0, "flower_id": 7}, {"b": 4.0, "a": 3.0, "flower_id": 8}]
    assert event.inputs[0].fields["flower_id"].WhichOneof("kind") == "int64_value"


async def test_without_a_features_client_an_entity_request_is_503(tmp_path: Path) -> None:
    settings = ServingSettings(home=tmp_path, models="m")
    scorer = Scorer(settings, FakeServedModels(None), FakePredictionLog())
    with pytest.raises(DriftloopError) as raised:
        await scorer.online_matrix("m", source="fs", entities={"k": [1]}, columns=["a"])
    assert raised.value.status_code == 503


def test_feature_services_are_read_from_json_and_references_must_name_their_view(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "DRIFTLOOP_SERVING_FEATURE_SERVICES", '{"iris": "iris_classifier", "other": ["v:f"]}'
    )
    settings = ServingSettings(home=tmp_path)
    assert settings.feature_services == {"iris": "iris_classifier", "other": ["v:f"]}
    with pytest.raises(pydantic.ValidationError, match="view:feature"):
        ServingSettings(home=tmp_path, feature_services={"iris": ["sepal_length"]})
    with pytest.raises(pydantic.ValidationError, match="names no feature service"):
        ServingSettings(home=tmp_path, feature_services={"iris": ""})
