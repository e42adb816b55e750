"""The features client asks as ``feast serve`` expects and turns its failures into statuses."""

from __future__ import annotations

import contextlib
import json
import socket
from pathlib import Path
from typing import Any

import numpy as np
import pydantic
import pytest

from driftloop.serving.v1 import events_pb2 as serving
from driftloop_events.envelope import from_record
from driftloop_kit.auth import Role, ServiceAuth, TokenSigner
from driftloop_kit.errors import DriftloopError
from driftloop_serving.adapters.features import FeaturesClient
from driftloop_serving.domain.models import Column, Predictor, ServedModel
from driftloop_serving.service_layer.scoring import Scorer
from driftloop_serving.settings import ServingSettings
from tests.fakes.serving import (
    CannedHTTPServer,
    FakePredictionLog,
    FakeServedModels,
    http_answer,
)

pytestmark = pytest.mark.unit

ANSWER = {
    "metadata": {"feature_names": ["flower_id", "iris__a", "iris__b"]},
    "results": [
        {"values": [7, 8], "statuses": ["PRESENT"] * 2},
        {
            "values": [1.0, 3.0],
            "statuses": ["PRESENT"] * 2,
            "event_timestamps": ["2026-01-02T03:04:05Z", "2026-01-02T03:04:06.250Z"],
        },
        {
            "values": [2.0, 4.0],
            "statuses": ["PRESENT"] * 2,
            "event_timestamps": ["2026-01-01T00:00:00Z", "2026-01-02T03:04:06.250Z"],
        },
    ],
}


def answering(status: int, body: Any) -> CannedHTTPServer:
    """A server answering every request with ``status`` and ``body`` (JSON, or bytes)."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return CannedHTTPServer(lambda head, sent: http_answer(status, raw))


async def test_a_lookup_sends_the_feature_service_or_references_with_full_names() -> None:
    auth = ServiceAuth(TokenSigner("k" * 32), subject="service:serving", role=Role.READER)
    async with answering(200, ANSWER) as server:
        features = FeaturesClient(server.url + "/", timeout=2, auth=auth)
        first = await features.get_online_features(source="fs", entities={"flower_id": [7]})
        await features.get_online_features(source=["iris:a"], entities={"flower_id": [7]})
        await features.stop()
    assert first == ANSWER
    assert [json.loads(body) for _, body in server.requests] == [
        {"entities": {"flower_id": [7]}, "full_feature_names": True, "feature_service": "fs"},
        {"entities": {"flower_id": [7]}, "full_feature_names": True, "features": ["iris:a"]},
    ]
    head = server.requests[0][0].decode()
    assert head.startswith("POST /get-online-features HTTP/1.1\r\n")
    assert f"\r\nAuthorization: Bearer {auth.token}\r\n" in head
    assert "\r\nContent-Type: application/json\r\n" in head
    assert server.connections == 1  # kept alive between the lookups


def _unused_port() -> int:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        return int(unused.getsockname()[1])


@pytest.mark.parametrize(
    ("server", "status", "message"),
    [
        (CannedHTTPServer(lambda head, body: ...), 503, "did not answer within 0.5s"),
        (None, 503, "is unreachable: "),
        (
            answering(404, {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "no fs"}),
            404,
            "feature service 'fs': no fs",
        ),
        (answering(400, {"message": "bad key"}), 400, "bad key"),
        (answering(500, b"boom"), 502, "failed (500): boom"),
        (answering(200, b"not json"), 502, "invalid JSON"),
        (answering(200, [1]), 502, "not an object"),
    ],
    ids=["timeout", "refused", "unknown-service", "refused-keys", "failing", "garbage", "list"],
)
async def test_failures_become_errors_whose_status_says_whose_fault_it_is(
    server: CannedHTTPServer | None, status: int, message: str
) -> None:
    async with contextlib.AsyncExitStack() as stack:
        url = (
            (await stack.enter_async_context(server)).url
            if server is not None
            else f"http://127.0.0.1:{_unused_port()}"
        )
        features = FeaturesClient(url, timeout=0.5)
        with pytest.raises(DriftloopError) as raised:
            await features.get_online_features(source="fs", entities={"flower_id": [7]})
        await features.stop()
    assert raised.value.status_code == status
    assert message in raised.value.message


async def test_the_record_of_an_entity_request_holds_the_features_keys_and_event_times(
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
    entities: dict[str, list[Any]] = {"flower_id": [7, 8]}
    async with answering(200, ANSWER) as server:
        features = FeaturesClient(server.url, timeout=2)
        scorer = Scorer(settings, FakeServedModels(model), log, features)
        source = scorer.feature_source("m", None)
        online = await scorer.online_matrix("m", source="fs", entities=entities, columns=["b", "a"])
        answer = scorer.score(
            "m",
            online.matrix,
            entities=entities,
            feature_names=online.names,
            feature_times=online.times,
        )
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
    assert [
        {k: v.timestamp_value.ToJsonString() for k, v in row.fields.items()}
        for row in event.feature_times
    ] == [
        {"b": "2026-01-01T00:00:00Z", "a": "2026-01-02T03:04:05Z"},
        {"b": "2026-01-02T03:04:06.250Z", "a": "2026-01-02T03:04:06.250Z"},
    ]


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
