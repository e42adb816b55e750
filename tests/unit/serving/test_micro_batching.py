"""Adaptive micro-batching: concurrent requests are scored in one call of the model,
and each request keeps its own answer, error and prediction record."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi import FastAPI
from prometheus_client import REGISTRY

from driftloop.serving.v1 import events_pb2 as serving
from driftloop_events.envelope import from_record
from driftloop_kit.app import create_service_app
from driftloop_kit.declarations import BatchingPolicy, ModelDeclaration
from driftloop_kit.testing import app_client
from driftloop_serving.domain.models import Column, Predictor, ServedModel
from driftloop_serving.domain.signature import Batch
from driftloop_serving.entrypoints.fast_routes import FAST_ROUTES
from driftloop_serving.entrypoints.routers import ROUTERS
from driftloop_serving.service_layer.batching import merge, split
from driftloop_serving.service_layer.catalog import Catalog
from driftloop_serving.service_layer.scoring import Scorer
from driftloop_serving.settings import ServingSettings
from tests.fakes.serving import FakePredictionLog, FakeServedModels

pytestmark = pytest.mark.unit

ON = {"m": {"max_batch_size": 64, "max_batch_time": 0.05}}


class CountingModel:
    """``10 a + b`` per row; keeps the rows of every call and refuses a NaN."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def __call__(self, matrix: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        self.calls.append(len(matrix))
        if np.isnan(matrix).any():
            raise ValueError("Input contains NaN")
        return np.asarray(matrix[:, 0] * 10 + matrix[:, 1])


def build(
    tmp_path: Path, batching: dict[str, Any] | None
) -> tuple[FastAPI, CountingModel, FakePredictionLog]:
    model = CountingModel()
    predictor = Predictor(
        flavor="sklearn", columns=(Column("a", "double"), Column("b", "double")), predict=model
    )
    served = ServedModel(
        name="m", version=3, run_id="r" * 32, alias="champion", predictor=predictor
    )
    settings = ServingSettings.model_validate(
        {"home": tmp_path, "models": "m", "batching": batching or {}}
    )
    log = FakePredictionLog()
    app = create_service_app(
        settings=settings, title="serving", routers=ROUTERS, fast_routes=FAST_ROUTES
    )
    app.state.scorer = Scorer(settings, FakeServedModels(served), log)
    return app, model, log


def v2(a: float, b: float, request_id: str) -> dict[str, Any]:
    return {
        "id": request_id,
        "inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP64", "data": [a, b]}],
    }


async def concurrently(
    app: FastAPI, bodies: list[tuple[str, dict[str, Any]]]
) -> list[httpx.Response]:
    async with app_client(app) as client:
        return list(await asyncio.gather(*(client.post(path, json=b) for path, b in bodies)))


def batch_count(model: str) -> float:
    return REGISTRY.get_sample_value("driftloop_serving_batch_size_count", {"model": model}) or 0.0


async def test_concurrent_requests_are_scored_in_one_call_with_their_own_answers(
    tmp_path: Path,
) -> None:
    app, model, _ = build(tmp_path, ON)
    before = batch_count("m")
    bodies = [("/v2/models/m/infer", v2(i, i + 1, f"r{i}")) for i in range(12)]
    bodies += [("/invocations", {"dataframe_records": [{"a": i, "b": 1}]}) for i in range(4)]
    answers = await concurrently(app, bodies)

    assert [a.status_code for a in answers] == [200] * 16
    assert max(model.calls) > 1  # requests were merged
    assert sum(model.calls) == 16  # every row scored once
    v2_answers = [a.json() for a in answers[:12]]
    assert [a["outputs"][0]["data"] for a in v2_answers] == [[i * 10 + i + 1] for i in range(12)]
    assert [a["id"] for a in v2_answers] == [f"r{i}" for i in range(12)]
    assert [a.json()["predictions"] for a in answers[12:]] == [[i * 10 + 1] for i in range(4)]
    assert batch_count("m") - before == len(model.calls)


async def test_each_batched_answer_equals_the_answer_scored_alone(tmp_path: Path) -> None:
    bodies = [("/v2/models/m/infer", v2(i / 7, -i, f"r{i}")) for i in range(10)]
    alone_app, alone_model, _ = build(tmp_path / "off", None)
    async with app_client(alone_app) as client:
        alone = [(await client.post(path, json=body)).json() for path, body in bodies]
    batched_app, batched_model, _ = build(tmp_path / "on", ON)
    batched = [a.json() for a in await concurrently(batched_app, bodies)]

    assert batched == alone
    assert alone_model.calls == [1] * 10
    assert max(batched_model.calls) > 1


async def test_a_bad_request_in_a_batch_gets_its_own_400_and_the_others_their_answers(
    tmp_path: Path,
) -> None:
    app, model, log = build(tmp_path, ON)
    bodies = [("/v2/models/m/infer", v2(i, 1, f"r{i}")) for i in range(6)]
    bad = {
        "id": "bad",
        "inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP64", "data": [1, None]}],
    }
    bodies.insert(3, ("/v2/models/m/infer", bad))
    answers = await concurrently(app, bodies)

    assert [a.status_code for a in answers] == [200, 200, 200, 400, 200, 200, 200]
    assert "column 'b', row 0: null" in answers[3].json()["error"]
    assert [answers[i].json()["outputs"][0]["data"] for i in (0, 4)] == [[1.0], [31.0]]
    assert model.calls[0] == 7  # tried as one batch first, then request by request
    requests = [from_record(r.value, r.headers).data.request_id for r in log.records]
    assert sorted(requests) == sorted(f"r{i}" for i in range(6))  # nothing logged for "bad"


async def test_batching_is_off_by_default(tmp_path: Path) -> None:
    app, model, _ = build(tmp_path, None)
    answers = await concurrently(app, [("/v2/models/m/infer", v2(i, 1, f"r{i}")) for i in range(8)])

    assert [a.status_code for a in answers] == [200] * 8
    assert model.calls == [1] * 8
    assert not BatchingPolicy().enabled


async def test_the_prediction_log_has_one_record_per_batched_request(tmp_path: Path) -> None:
    app, model, log = build(tmp_path, ON)
    await concurrently(app, [("/v2/models/m/infer", v2(i, 2, f"r{i}")) for i in range(9)])
    events = [from_record(r.value, r.headers).data for r in log.records]

    assert max(model.calls) > 1
    assert len(events) == 9
    by_id = {e.request_id: e for e in events}
    assert set(by_id) == {f"r{i}" for i in range(9)}
    for i in range(9):
        event = by_id[f"r{i}"]
        assert isinstance(event, serving.PredictionLogged)
        assert [r.fields["a"].double_value for r in event.inputs] == [float(i)]
        assert [r.fields["prediction"].double_value for r in event.outputs] == [i * 10 + 2.0]


async def test_a_batch_is_scored_when_it_holds_max_batch_size_rows(tmp_path: Path) -> None:
    # A second to wait: requests answered sooner were scored when their batch was full.
    app, model, _ = build(tmp_path, {"m": {"max_batch_size": 4, "max_batch_time": 1.0}})
    async with app_client(app) as client:
        started = time.perf_counter()
        answers = await asyncio.gather(
            *(client.post("/v2/models/m/infer", json=v2(i, 1, f"r{i}")) for i in range(8))
        )
        took = time.perf_counter() - started

    assert [a.status_code for a in answers] == [200] * 8
    assert model.calls == [4, 4]
    assert took < 1.0


def test_typed_batches_merge_and_split_by_request() -> None:
    first = Batch(columns={"s": np.array(["x", "y"]), "n": np.array([1, 2])}, rows=2)
    second = Batch(columns={"s": np.array(["z"]), "n": np.array([3])}, rows=1)
    merged = merge([first, second])

    assert isinstance(merged, Batch)
    assert merged.rows == 3
    assert merged.columns["s"].tolist() == ["x", "y", "z"]
    assert [p.tolist() for p in split(np.array(["a", "b", "c"]), [2, 1])] == [["a", "b"], ["c"]]
    with pytest.raises(ValueError, match="outputs for 3 rows"):
        split(np.array([1.0]), [2, 1])


def test_a_model_document_turns_batching_on_and_bounds_it(tmp_path: Path) -> None:
    document = {
        "apiVersion": "driftloop/v1",
        "kind": "Model",
        "metadata": {"name": "m"},
        "spec": {
            "label": "y",
            "features": {"feature_service": "fs"},
            "training": {"entry_point": "pkg.train:main"},
            "serving": {"batching": {"max_batch_size": 32, "max_batch_time": 0.004}},
        },
    }
    catalog = Catalog(ServingSettings(home=tmp_path, models="m"))
    assert not catalog.batching("m").enabled
    catalog.declare(ModelDeclaration.model_validate(document), revision=1)

    assert catalog.batching("m") == BatchingPolicy(max_batch_size=32, max_batch_time=0.004)
    document["spec"]["serving"]["batching"] = {"max_batch_size": 100_000}  # type: ignore[index]
    with pytest.raises(ValueError, match="max_batch_size"):
        ModelDeclaration.model_validate(document)
    assert "max_batch_time" in json.dumps(ModelDeclaration.model_json_schema())


class ChampionAndChallenger:
    """Two versions of ``m`` (a ``ServedModelsPort``): the champion answers ``a``, the
    challenger ``2 a``; each keeps its call sizes."""

    def __init__(self) -> None:
        self.calls: dict[str, list[int]] = {"champion": [], "challenger": []}
        self.models = {alias: self._model(alias, n) for n, alias in enumerate(self.calls, 1)}

    def _model(self, alias: str, factor: int) -> ServedModel:
        def predict(matrix: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
            self.calls[alias].append(len(matrix))
            return np.asarray(matrix[:, 0] * factor)

        predictor = Predictor(flavor="sklearn", columns=(Column("a", "double"),), predict=predict)
        return ServedModel(
            name="m", version=factor, run_id="r" * 32, alias=alias, predictor=predictor
        )

    def get(self, name: str, alias: str) -> ServedModel | None:
        return self.models.get(alias)


async def test_a_shadow_scores_the_batch_too_and_logs_a_record_per_request(
    tmp_path: Path,
) -> None:
    settings = ServingSettings.model_validate(
        {"home": tmp_path, "models": "m", "traffic": {"m": {"shadow": True}}, "batching": ON}
    )
    models, log = ChampionAndChallenger(), FakePredictionLog()
    scorer = Scorer(settings, models, log)
    answers = await asyncio.gather(
        *(scorer.infer("m", np.array([[float(i)]]), request_id=f"r{i}") for i in range(6))
    )
    events = [from_record(r.value, r.headers).data for r in log.records]

    assert [a.predictions.tolist() for a in answers] == [[float(i)] for i in range(6)]
    assert models.calls == {"champion": [6], "challenger": [6]}
    shadowed = {
        e.request_id: e.outputs[0].fields["prediction"].double_value
        for e in events
        if e.route == serving.ROUTE_SHADOW
    }
    assert shadowed == {f"r{i}": 2.0 * i for i in range(6)}
    assert len(events) == 12
