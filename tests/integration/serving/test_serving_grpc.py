"""``tritonclient.grpc``, as a user runs it, against serving's V2 gRPC port, in front of
the real registry. Registered with the mlflow client and aliased: two versions of a float
scikit-learn model (the fast path, hot-swapped under gRPC load), a scikit-learn Pipeline
over a string, a float and an integer column, and a custom ``PythonModel`` that also
takes a boolean and answers strings (through ``mlflow.pyfunc``). Each answers over gRPC
as in process and as on REST; a request that does not fit is ``INVALID_ARGUMENT``
naming the column, and is not logged; a gRPC answer is logged as a REST one is.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import grpc
import httpx
import numpy as np
import pandas as pd  # type: ignore[import-untyped]
import pytest
import tritonclient.grpc as triton  # type: ignore[import-untyped]
import tritonclient.grpc.aio as triton_aio  # type: ignore[import-untyped]
from mlflow import MlflowClient
from sklearn.pipeline import Pipeline  # type: ignore[import-untyped]
from tritonclient.grpc import service_pb2, service_pb2_grpc
from tritonclient.utils import InferenceServerException  # type: ignore[import-untyped]

from driftloop.serving.v1 import events_pb2 as serving_events
from driftloop_bus.embedded import EmbeddedBroker, free_port
from driftloop_events.envelope import from_record
from driftloop_events.topics import TOPICS
from driftloop_events.values import record_to_dict
from driftloop_kit.auth import Role
from driftloop_kit.testing import ServedApp, auth_headers

from ..features.conftest import read_records
from ..stack import Stack
from .conftest import Models, register_sklearn, serving_settings, start_serving
from .test_serving_typed_models import (
    Labeller,
    city_pipeline,
    customers,
    prediction_of,
    register_labeller,
)

pytestmark = pytest.mark.integration

PIPELINE, LABELLER, NEVER = "grpc-pipeline", "grpc-labeller", "grpc-never-registered"


@dataclass
class Registered:
    """The module's typed models, and the frames they answer in process."""

    frame: pd.DataFrame
    pipeline: Pipeline
    labeller_frame: pd.DataFrame
    labeller: Labeller


@pytest.fixture(scope="module")
def registered(serving_stack: Stack) -> Registered:
    frame = customers(300, seed=5)
    labels = np.where((frame["city"] == "Rome") | (frame["visits"] > 12), "buy", "skip")
    pipeline = city_pipeline(frame, labels)
    register_sklearn(PIPELINE, pipeline, frame)
    labeller_frame, labeller = register_labeller(LABELLER, frame)
    client = MlflowClient()
    for name in (PIPELINE, LABELLER):
        client.set_registered_model_alias(name, "champion", "1")
    return Registered(frame, pipeline, labeller_frame, labeller)


@dataclass
class Served:
    """The serving app, and where its gRPC server listens."""

    app: ServedApp
    grpc: str


@pytest.fixture(scope="module")
def served(
    serving_stack: Stack,
    registered: Registered,
    iris_models: Models,
    tmp_path_factory: pytest.TempPathFactory,
    broker: EmbeddedBroker,
) -> Iterator[Served]:
    port = free_port()
    settings = serving_settings(
        serving_stack,
        tmp_path_factory.mktemp("serving"),
        broker.bootstrap_servers,
        # NEVER is served and never registered: it has no version to answer with.
        models=f"{iris_models.name},{PIPELINE},{LABELLER},{NEVER}",
        unpickle_models=[LABELLER],  # mlflow.pyfunc runs the model's code: an opt-in
        grpc_port=port,
        reconcile_interval_seconds=600,  # swaps come from the alias events
    )
    server = start_serving(settings)
    try:
        yield Served(server, f"127.0.0.1:{port}")
    finally:
        server.stop()


#: A reader's token, as gRPC metadata (whose keys are lower case).
HEADERS = {key.lower(): value for key, value in auth_headers(Role.READER).items()}


@pytest.fixture(scope="module")
def client(served: Served, iris_models: Models) -> Iterator[triton.InferenceServerClient]:
    """tritonclient's gRPC client, once every registered model is ready (bounded wait)."""
    triton_client = triton.InferenceServerClient(url=served.grpc)
    deadline = time.monotonic() + 90
    for name in (iris_models.name, PIPELINE, LABELLER):
        while not triton_client.is_model_ready(name, headers=HEADERS):
            assert time.monotonic() < deadline, f"serving did not load {name} in 90 s"
            time.sleep(0.2)
    try:
        yield triton_client
    finally:
        triton_client.close()


#: tritonclient's datatype of each pandas column type.
DATATYPES = {"object": "BYTES", "float64": "FP64", "int64": "INT64", "bool": "BOOL"}


def columns(frame: pd.DataFrame) -> list[Any]:
    """One tritonclient input per column of ``frame``, as a user builds them."""
    inputs = []
    for name in frame.columns:
        datatype = DATATYPES[str(frame[name].dtype)]
        values = frame[name].to_numpy(dtype=object if datatype == "BYTES" else None)
        tensor = triton.InferInput(name, [len(frame)], datatype)
        tensor.set_data_from_numpy(values)
        inputs.append(tensor)
    return inputs


def texts(values: Any) -> list[str]:
    """tritonclient's BYTES output as strings."""
    return [v.decode() if isinstance(v, bytes) else str(v) for v in values.reshape(-1)]


def rest_v2(url: str, name: str, frame: pd.DataFrame) -> list[Any]:
    """The same rows through REST's V2 ``infer``, one JSON input per column."""
    inputs = []
    for column in frame.columns:
        datatype = DATATYPES[str(frame[column].dtype)]
        inputs.append(
            {
                "name": column,
                "shape": [len(frame)],
                "datatype": datatype,
                "data": frame[column].tolist(),
            }
        )
    response = httpx.post(
        f"{url}/v2/models/{name}/infer", json={"inputs": inputs}, headers=HEADERS, timeout=30
    )
    assert response.status_code == 200, response.text
    (output,) = response.json()["outputs"]
    return list(output["data"])


def test_tritonclient_sees_the_server_and_each_model_live_ready_and_described(
    client: triton.InferenceServerClient, served: Served
) -> None:
    rest = httpx.get(f"{served.app.url}/v2/models/{PIPELINE}", headers=HEADERS).json()

    metadata = client.get_model_metadata(PIPELINE, headers=HEADERS, as_json=True)

    assert client.is_server_live(headers=HEADERS)
    assert not client.is_server_ready(headers=HEADERS)  # NEVER has no version
    assert client.is_model_ready(PIPELINE, headers=HEADERS)
    assert client.is_model_ready(PIPELINE, "1", headers=HEADERS)
    assert not client.is_model_ready(NEVER, headers=HEADERS)
    assert metadata["versions"] == ["1"]
    assert [(i["name"], i["datatype"]) for i in metadata["inputs"]] == [
        ("city", "BYTES"),
        ("income", "FP64"),
        ("visits", "INT64"),
    ]
    assert [(i["name"], i["datatype"]) for i in metadata["inputs"]] == [
        (i["name"], i["datatype"]) for i in rest["inputs"]
    ]
    assert [o["name"] for o in metadata["outputs"]] == ["predict", "predict_proba"]
    assert client.get_server_metadata(headers=HEADERS).name == "driftloop-serving"


def test_typed_models_answer_over_grpc_as_in_process_and_as_on_rest(
    client: triton.InferenceServerClient, served: Served, registered: Registered
) -> None:
    frame = registered.frame.head(40)
    labeller_frame = registered.labeller_frame.head(25)
    expected = registered.pipeline.predict(frame).tolist()
    labels = registered.labeller.predict(None, labeller_frame)
    assert set(expected) == {"buy", "skip"}

    pipeline = client.infer(PIPELINE, columns(frame), headers=HEADERS)
    labeller = client.infer(LABELLER, columns(labeller_frame), headers=HEADERS)
    proba = client.infer(
        PIPELINE,
        columns(frame),
        outputs=[triton.InferRequestedOutput("predict_proba")],
        headers=HEADERS,
    )

    assert texts(pipeline.as_numpy("predict")) == expected
    assert texts(pipeline.as_numpy("predict")) == rest_v2(served.app.url, PIPELINE, frame)
    assert texts(labeller.as_numpy("predict")) == labels
    assert texts(labeller.as_numpy("predict")) == rest_v2(served.app.url, LABELLER, labeller_frame)
    response = pipeline.get_response(as_json=True)
    assert response["model_version"] == "1"
    assert response["parameters"]["route"]["string_param"] == "champion"
    assert response["outputs"][0]["datatype"] == "BYTES"
    np.testing.assert_allclose(
        proba.as_numpy("predict_proba"), registered.pipeline.predict_proba(frame)
    )


def test_a_float_model_answers_one_matrix_input_as_in_process(
    client: triton.InferenceServerClient, iris_models: Models
) -> None:
    rows = iris_models.features.head(30).to_numpy()
    matrix = triton.InferInput("x", list(rows.shape), "FP64")
    matrix.set_data_from_numpy(rows)

    answer = client.infer(iris_models.name, [matrix], headers=HEADERS)

    assert answer.as_numpy("predict").tolist() == iris_models.first.predict(rows).tolist()


def contents_request(frame: pd.DataFrame, *, visits: str = "INT32") -> Any:
    """A KServe-style request: values in the typed ``contents`` fields, not raw."""
    request = service_pb2.ModelInferRequest(model_name=LABELLER, id="grpc-contents")
    city = request.inputs.add(name="city", datatype="BYTES", shape=[len(frame)])
    city.contents.bytes_contents.extend(c.encode() for c in frame["city"])
    income = request.inputs.add(name="income", datatype="FP64", shape=[len(frame)])
    income.contents.fp64_contents.extend(frame["income"])
    count = request.inputs.add(name="visits", datatype=visits, shape=[len(frame)])
    if visits == "INT32":
        count.contents.int_contents.extend(int(v) for v in frame["visits"])
    else:
        count.contents.int64_contents.extend(int(v) for v in frame["visits"])
    member = request.inputs.add(name="member", datatype="BOOL", shape=[len(frame)])
    member.contents.bool_contents.extend(bool(m) for m in frame["member"])
    return request


def test_inputs_in_the_typed_contents_fields_answer_as_raw_ones(
    served: Served, registered: Registered
) -> None:
    frame = registered.labeller_frame.head(12)
    metadata = list(HEADERS.items())
    with grpc.insecure_channel(served.grpc) as channel:
        stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
        as_int32 = stub.ModelInfer(contents_request(frame), metadata=metadata)
        as_int64 = stub.ModelInfer(contents_request(frame, visits="INT64"), metadata=metadata)

    expected = registered.labeller.predict(None, frame)
    for answer in (as_int32, as_int64):
        assert answer.id == "grpc-contents"
        (raw,) = answer.raw_output_contents
        assert texts(triton.deserialize_bytes_tensor(raw)) == expected


def refusal(call: Any) -> tuple[str, str]:
    """tritonclient's error of ``call``: the gRPC status code's name, and the message."""
    with pytest.raises(InferenceServerException) as refused:
        call()
    return str(refused.value.status()), str(refused.value.message())


def test_errors_are_grpc_status_codes_with_a_message(
    client: triton.InferenceServerClient, registered: Registered
) -> None:
    frame = registered.frame.head(2)
    wrong_type = columns(frame)
    visits = triton.InferInput("visits", [2], "BYTES")
    visits.set_data_from_numpy(np.array([b"3", b"many"], dtype=object))
    wrong_type[2] = visits
    null = columns(frame)
    income = triton.InferInput("income", [2], "FP64")
    income.set_data_from_numpy(np.array([1.5, np.nan]))
    null[1] = income

    typed = refusal(lambda: client.infer(PIPELINE, wrong_type, headers=HEADERS))
    missing = refusal(lambda: client.infer(PIPELINE, null, headers=HEADERS))
    unknown = refusal(lambda: client.infer("nope", columns(frame), headers=HEADERS))
    not_loaded = refusal(lambda: client.infer(PIPELINE, columns(frame), "7", headers=HEADERS))
    unavailable = refusal(lambda: client.infer(NEVER, columns(frame), headers=HEADERS))
    anonymous = refusal(lambda: client.infer(PIPELINE, columns(frame)))

    assert typed[0] == "StatusCode.INVALID_ARGUMENT"
    assert "column 'visits' is long" in typed[1]
    assert missing[0] == "StatusCode.INVALID_ARGUMENT"
    assert "column 'income', row 1: null" in missing[1]
    assert unknown == ("StatusCode.NOT_FOUND", "Model 'nope' is not served here")
    assert not_loaded[0] == "StatusCode.NOT_FOUND"
    assert unavailable == (
        "StatusCode.UNAVAILABLE",
        f"Model '{NEVER}' has no version loaded yet",
    )
    assert anonymous[0] == "StatusCode.UNAUTHENTICATED"
    assert "Authorization: Bearer" in anonymous[1]


async def test_each_grpc_prediction_is_logged_with_its_typed_values_and_a_refused_one_is_not(
    client: triton.InferenceServerClient, registered: Registered, broker: EmbeddedBroker
) -> None:
    frame = registered.frame.head(2)
    refused_inputs = columns(frame)
    visits = triton.InferInput("visits", [2], "BYTES")
    visits.set_data_from_numpy(np.array([b"3", b"many"], dtype=object))
    refused_inputs[2] = visits
    with pytest.raises(InferenceServerException):
        client.infer(PIPELINE, refused_inputs, request_id="grpc-refused", headers=HEADERS)
    client.infer(PIPELINE, columns(frame), request_id="grpc-ok", headers=HEADERS)

    # The good request was sent after the refused one: once its record is there, a
    # record of the refused one would be too.
    records = await read_records(
        broker.bootstrap_servers,
        TOPICS["predictions"].name,
        prediction_of({"grpc-ok", "grpc-refused"}),
        expected=1,
        timeout=30,
    )
    late = await read_records(
        broker.bootstrap_servers,
        TOPICS["predictions"].name,
        prediction_of({"grpc-refused"}),
        expected=1,
        timeout=2,
    )

    assert late == []
    (record,) = records
    logged: serving_events.PredictionLogged = from_record(record.value, list(record.headers)).data
    assert logged.request_id == "grpc-ok"
    assert logged.route == serving_events.ROUTE_CHAMPION
    assert [record_to_dict(r) for r in logged.inputs] == frame.to_dict(orient="records")
    assert [record_to_dict(o)["prediction"] for o in logged.outputs] == (
        registered.pipeline.predict(frame).tolist()
    )


async def move_alias(name: str, version: str) -> None:
    await asyncio.to_thread(MlflowClient().set_registered_model_alias, name, "champion", version)


async def test_a_hot_swap_under_grpc_load_fails_no_request(
    client: triton.InferenceServerClient, served: Served, iris_models: Models
) -> None:
    name = iris_models.name
    row = iris_models.features.head(1).to_numpy()
    failures: list[str] = []
    versions: list[str] = []
    stop = asyncio.Event()

    async def load(aio: Any) -> None:
        while not stop.is_set():
            tensor = triton_aio.InferInput("x", [1, 4], "FP64")
            tensor.set_data_from_numpy(row)
            try:
                answer = await aio.infer(name, [tensor], headers=HEADERS)
            except InferenceServerException as error:
                failures.append(str(error))
                continue
            versions.append(answer.get_response().model_version)

    async def answered_by(version: str, seen: int) -> None:
        deadline = time.monotonic() + 20
        while version not in versions[seen:]:
            assert time.monotonic() < deadline, f"version {version} never answered"
            await asyncio.sleep(0.02)

    aio = triton_aio.InferenceServerClient(url=served.grpc)
    tasks = [asyncio.create_task(load(aio)) for _ in range(4)]
    try:
        for target in ("2", "1", "2"):
            seen = len(versions)
            await move_alias(name, target)
            await answered_by(target, seen)
    finally:
        stop.set()
        await asyncio.gather(*tasks)
        await aio.close()
        await move_alias(name, "1")

    assert failures == []
    assert {"1", "2"} <= set(versions)
    assert len(versions) > 50
