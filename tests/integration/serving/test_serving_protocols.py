"""Both protocols answer as the model does in-process; bad requests get the protocol's 4xx."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import mlflow
import numpy as np
import onnxruntime  # type: ignore[import-untyped]
import pytest
from mlflow import MlflowClient
from skl2onnx import to_onnx  # type: ignore[import-untyped]
from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]

from driftloop_bus.embedded import EmbeddedBroker
from driftloop_kit.testing import ServedApp, auth_headers

from ..bus.helpers import eventually
from ..stack import Stack
from .conftest import Models, iris_frame, serving_settings, start_serving

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def onnx_model(serving_stack: Stack) -> tuple[str, Any, np.ndarray[Any, Any]]:
    """An iris classifier converted to ONNX, logged with mlflow.onnx and registered."""
    frame, labels = iris_frame()
    features = frame.to_numpy(dtype=np.float32)
    model = to_onnx(
        LogisticRegression(max_iter=500).fit(features, labels),
        features[:1],
        options={"zipmap": False},
    )
    name = "iris-onnx"
    with mlflow.start_run():
        mlflow.onnx.log_model(model, name="model", registered_model_name=name)
    MlflowClient().set_registered_model_alias(name, "champion", "1")
    session = onnxruntime.InferenceSession(model.SerializeToString())
    expected = session.run(None, {session.get_inputs()[0].name: features})[0]
    return name, model, expected


@pytest.fixture(scope="module")
def served(
    serving_stack: Stack,
    iris_models: Models,
    onnx_model: tuple[str, Any, np.ndarray[Any, Any]],
    tmp_path_factory: pytest.TempPathFactory,
    broker: EmbeddedBroker,
) -> Iterator[ServedApp]:
    settings = serving_settings(
        serving_stack,
        tmp_path_factory.mktemp("serving"),
        broker.bootstrap_servers,
        models=f"{iris_models.name},{onnx_model[0]}",
    )
    server = start_serving(settings)
    try:
        yield server
    finally:
        server.stop()


async def ready(url: str) -> bool:
    """V2's ready, and the service's: the model documents read (a group join away)."""
    async with httpx.AsyncClient(headers=auth_headers()) as client:
        if (await client.get(f"{url}/v2/health/ready")).status_code != 200:
            return False
        return (await client.get(f"{url}/readyz")).status_code == 200


@pytest.fixture
async def url(served: ServedApp) -> str:
    await eventually(lambda: ready(served.url), timeout=60)
    return served.url


async def test_v2_and_mlflow_protocols_return_the_in_process_prediction(
    url: str, iris_models: Models
) -> None:
    frame = iris_models.features
    expected = iris_models.first.predict(frame).tolist()
    rows = frame.to_numpy().tolist()
    name = iris_models.name
    async with httpx.AsyncClient(headers=auth_headers(), base_url=url) as client:
        tensor = await client.post(
            f"/v2/models/{name}/infer",
            json={
                "id": "req-1",
                "inputs": [
                    {
                        "name": "input-0",
                        "shape": [len(rows), 4],
                        "datatype": "FP64",
                        "data": [x for row in rows for x in row],
                    }
                ],
            },
        )
        columns = await client.post(
            f"/v2/models/{name}/versions/1/infer",
            json={
                "inputs": [
                    {
                        "name": c,
                        "shape": [len(frame)],
                        "datatype": "FP32",
                        "data": frame[c].tolist(),
                    }
                    for c in frame.columns
                ]
            },
        )
        split = await client.post(
            f"/invocations?model={name}",
            json={"dataframe_split": {"columns": list(frame.columns), "data": rows}},
        )
        records = await client.post(
            f"/models/{name}/invocations",
            json={"dataframe_records": frame.to_dict(orient="records")},
        )
        instances = await client.post(f"/invocations?model={name}", json={"instances": rows})
        csv = await client.post(
            f"/invocations?model={name}",
            content=frame.to_csv(index=False),
            headers={"Content-Type": "text/csv"},
        )
    body = tensor.json()
    assert tensor.status_code == 200, body
    assert body["id"] == "req-1"
    assert (body["model_name"], body["model_version"]) == (name, "1")
    assert body["outputs"][0]["shape"] == [len(rows)]
    assert body["outputs"][0]["data"] == expected
    assert columns.json()["outputs"][0]["data"] == expected
    for response in (split, records, instances, csv):
        assert response.status_code == 200, response.text
        assert response.json() == {"predictions": expected}
        assert response.headers["X-Model-Version"] == "1"


async def test_an_onnx_model_answers_as_onnxruntime_does_in_process(
    url: str, onnx_model: tuple[str, Any, np.ndarray[Any, Any]]
) -> None:
    name, _, expected = onnx_model
    frame, _ = iris_frame()
    rows = frame.to_numpy().tolist()
    async with httpx.AsyncClient(headers=auth_headers(), base_url=url) as client:
        response = await client.post(f"/invocations?model={name}", json={"inputs": rows})
        metadata = await client.get(f"/v2/models/{name}")
    assert response.status_code == 200, response.text
    assert response.json()["predictions"] == expected.tolist()
    assert metadata.json()["platform"] == "onnx"


@pytest.mark.parametrize(
    "case",
    [
        ("/v2/models/{name}/infer", {"inputs": []}, 400, "non-empty 'inputs'"),
        (
            "/v2/models/{name}/infer",
            {"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP64", "data": [1, 2, 3]}]},
            400,
            "expected 4 features",
        ),
        (
            "/v2/models/{name}/infer",
            {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": [1, 2]}]},
            400,
            "needs 4 values",
        ),
        (
            "/v2/models/{name}/infer",
            {
                "inputs": [
                    {
                        "name": "x",
                        "shape": [1, 4],
                        "datatype": "BYTES",
                        "data": ["a", "b", "c", "d"],
                    }
                ]
            },
            400,
            "not supported",
        ),
        (
            "/v2/models/{name}/infer",
            {
                "inputs": [
                    {"name": "x", "shape": [1, 4], "datatype": "FP64", "data": [1, 2, "c", 4]}
                ]
            },
            400,
            "column 'petal_length', row 0: 'c' is not FP64",
        ),
        ("/v2/models/nope/infer", {"inputs": []}, 404, "not served"),
        ("/v2/models/{name}/versions/9/infer", {"inputs": []}, 404, "not loaded"),
    ],
)
async def test_bad_v2_requests_get_a_4xx_with_a_v2_error(
    url: str, iris_models: Models, case: tuple[str, Any, int, str]
) -> None:
    path, payload, status, message = case
    async with httpx.AsyncClient(headers=auth_headers(), base_url=url) as client:
        response = await client.post(path.format(name=iris_models.name), json=payload)
    assert response.status_code == status
    assert message in response.json()["error"]


@pytest.mark.parametrize(
    ("payload", "code", "message"),
    [
        ({"instances": [[1, 2, 3]]}, "BAD_REQUEST", "expected 4 features"),
        (
            {"instances": [[1, 2, 3, 4], [1, "b", 3, 4]]},
            "INVALID_PARAMETER_VALUE",
            "column 'sepal_width', row 1: 'b' is not a number",
        ),
        ({"dataframe_records": [{"sepal_length": 1}]}, "BAD_REQUEST", "missing feature"),
        ({"rows": []}, "BAD_REQUEST", "exactly one of"),
        ({"instances": [[1, 2, 3, 4]], "inputs": [[1, 2, 3, 4]]}, "BAD_REQUEST", "exactly one of"),
    ],
)
async def test_bad_mlflow_requests_get_a_4xx_with_an_mlflow_error(
    url: str, iris_models: Models, payload: Any, code: str, message: str
) -> None:
    async with httpx.AsyncClient(headers=auth_headers(), base_url=url) as client:
        response = await client.post(f"/invocations?model={iris_models.name}", json=payload)
        unknown = await client.post("/invocations?model=nope", json={"instances": [[1, 2, 3, 4]]})
        not_json = await client.post(f"/invocations?model={iris_models.name}", content=b"{")
    assert response.status_code == 400
    assert response.json()["error_code"] == code
    assert message in response.json()["message"]
    assert unknown.status_code == 404
    assert unknown.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    assert not_json.status_code == 400


async def test_health_metadata_and_readiness_endpoints(
    url: str, iris_models: Models, tmp_path: Path
) -> None:
    async with httpx.AsyncClient(headers=auth_headers(), base_url=url) as client:
        assert (await client.get("/v2/health/live")).json() == {"live": True}
        assert (await client.get("/ping")).status_code == 200
        metadata = (await client.get(f"/v2/models/{iris_models.name}")).json()
        assert metadata["versions"] == ["1"]
        assert [i["name"] for i in metadata["inputs"]] == list(iris_models.features.columns)
        assert (await client.get(f"/v2/models/{iris_models.name}/ready")).status_code == 200
        assert (
            await client.get(f"/v2/models/{iris_models.name}/versions/5/ready")
        ).status_code == 404
        assert (await client.get("/readyz")).status_code == 200
        assert "driftloop_serving_requests_total" in (await client.get("/metrics")).text


async def test_a_request_the_version_fails_to_score_is_counted_against_its_route(
    url: str, iris_models: Models
) -> None:
    """What the console's error share by version reads: the model raised on the inputs."""
    from prometheus_client.parser import text_string_to_metric_families

    async def failures(client: httpx.AsyncClient) -> float:
        text = (await client.get("/metrics")).text
        return sum(
            sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == "driftloop_serving_request_failures_total"
            and sample.labels == {"model": iris_models.name, "route": "champion"}
        )

    async with httpx.AsyncClient(headers=auth_headers(), base_url=url) as client:
        before = await failures(client)
        refused = await client.post(
            f"/invocations?model={iris_models.name}", json={"instances": [[1, None, 3, 4]]}
        )
        answered = await client.post(
            f"/invocations?model={iris_models.name}", json={"instances": [[1, 2, 3, 4]]}
        )
        after = await failures(client)
    assert refused.status_code == 400
    assert "sepal_width" in refused.json()["message"]
    assert answered.status_code == 200
    assert after - before == 1
