"""``tritonclient.http``, as a user runs it, against serving in front of the real registry.

Its ``infer`` sends tensors in binary after the JSON and asks for binary outputs by
default (V2's binary tensor data extension). Registered with the mlflow client and
aliased: a float scikit-learn model (the fast path), a scikit-learn Pipeline over a
string, a float and an integer column, and a custom ``PythonModel`` that also takes a
boolean and answers strings (through ``mlflow.pyfunc``). Each answers tritonclient's
default ``infer`` as it answers in process and in JSON mode; a malformed binary body is
a 400 naming the input, and is not logged as a prediction.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np
import pandas as pd  # type: ignore[import-untyped]
import pytest
import tritonclient.http as triton  # type: ignore[import-untyped]
from mlflow import MlflowClient
from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]
from sklearn.pipeline import Pipeline  # type: ignore[import-untyped]
from tritonclient.utils import InferenceServerException  # type: ignore[import-untyped]

from driftloop.serving.v1 import events_pb2 as serving_events
from driftloop_bus.embedded import EmbeddedBroker
from driftloop_events.envelope import from_record
from driftloop_events.topics import TOPICS
from driftloop_kit.testing import ServedApp, auth_headers

from ..features.conftest import read_records
from ..stack import Stack
from .conftest import iris_frame, register_sklearn, serving_settings, start_serving
from .test_serving_typed_models import (
    Labeller,
    city_pipeline,
    customers,
    prediction_of,
    register_labeller,
)

pytestmark = pytest.mark.integration

FLOATS, PIPELINE, LABELLER = "binary-iris", "binary-pipeline", "binary-labeller"


@dataclass
class Registered:
    """The module's registered models, and the frames they answer in process."""

    iris: pd.DataFrame
    floats: LogisticRegression
    frame: pd.DataFrame
    pipeline: Pipeline
    labeller_frame: pd.DataFrame
    labeller: Labeller


@pytest.fixture(scope="module")
def registered(serving_stack: Stack) -> Registered:
    iris, species = iris_frame()
    floats = LogisticRegression(max_iter=500).fit(iris, species)
    register_sklearn(FLOATS, floats, iris)

    frame = customers(300, seed=3)
    labels = np.where((frame["city"] == "Oslo") | (frame["visits"] > 12), "buy", "skip")
    pipeline = city_pipeline(frame, labels)
    register_sklearn(PIPELINE, pipeline, frame)

    labeller_frame, labeller = register_labeller(LABELLER, frame)
    client = MlflowClient()
    for name in (FLOATS, PIPELINE, LABELLER):
        client.set_registered_model_alias(name, "champion", "1")
    return Registered(iris, floats, frame, pipeline, labeller_frame, labeller)


@pytest.fixture(scope="module")
def served(
    serving_stack: Stack,
    registered: Registered,
    tmp_path_factory: pytest.TempPathFactory,
    broker: EmbeddedBroker,
) -> Iterator[ServedApp]:
    settings = serving_settings(
        serving_stack,
        tmp_path_factory.mktemp("serving"),
        broker.bootstrap_servers,
        models=f"{FLOATS},{PIPELINE},{LABELLER}",
        unpickle_models=[LABELLER],  # mlflow.pyfunc runs the model's code: an opt-in
    )
    server = start_serving(settings)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def client(served: ServedApp) -> Iterator[triton.InferenceServerClient]:
    """tritonclient's HTTP client, once every model is ready (bounded wait)."""
    triton_client = triton.InferenceServerClient(url=served.url.removeprefix("http://"))
    deadline = time.monotonic() + 90
    while not triton_client.is_server_ready(headers=auth_headers()):
        assert time.monotonic() < deadline, "serving did not load its models in 90 s"
        time.sleep(0.2)
    try:
        yield triton_client
    finally:
        triton_client.close()


#: tritonclient's datatype of each pandas column type.
DATATYPES = {"object": "BYTES", "float64": "FP64", "int64": "INT64", "bool": "BOOL"}


def columns(frame: pd.DataFrame, *, binary: bool = True) -> list[Any]:
    """One tritonclient input per column of ``frame``, as a user builds them."""
    inputs = []
    for name in frame.columns:
        datatype = DATATYPES[str(frame[name].dtype)]
        values = frame[name].to_numpy(dtype=object if datatype == "BYTES" else None)
        tensor = triton.InferInput(name, [len(frame)], datatype)
        tensor.set_data_from_numpy(values, binary_data=binary)
        inputs.append(tensor)
    return inputs


def json_outputs(*names: str) -> list[Any]:
    return [triton.InferRequestedOutput(name, binary_data=False) for name in names]


def texts(values: Any) -> list[str]:
    """tritonclient's BYTES output (bytes, or str from JSON) as strings."""
    return [v.decode() if isinstance(v, bytes) else str(v) for v in values.reshape(-1)]


def test_the_default_infer_of_a_float_model_answers_as_in_process_and_as_json(
    client: triton.InferenceServerClient, registered: Registered
) -> None:
    rows = registered.iris.head(30).to_numpy()
    expected = registered.floats.predict(registered.iris.head(30)).tolist()
    binary = triton.InferInput("x", list(rows.shape), "FP64")
    binary.set_data_from_numpy(rows)
    in_json = triton.InferInput("x", list(rows.shape), "FP64")
    in_json.set_data_from_numpy(rows, binary_data=False)

    answer = client.infer(FLOATS, [binary], headers=auth_headers())
    as_json = client.infer(
        FLOATS, [in_json], outputs=json_outputs("predict"), headers=auth_headers()
    )

    assert answer.as_numpy("predict").tolist() == expected
    assert as_json.as_numpy("predict").tolist() == expected
    (output,) = answer.get_response()["outputs"]
    assert "data" not in output  # it came back in binary
    assert output["parameters"]["binary_data_size"] == 8 * len(expected)
    assert as_json.get_response()["outputs"][0]["data"] == expected


def test_the_default_infer_of_typed_models_reads_strings_integers_and_booleans(
    client: triton.InferenceServerClient, registered: Registered
) -> None:
    frame = registered.frame.head(40)
    labeller_frame = registered.labeller_frame.head(25)
    expected = registered.pipeline.predict(frame).tolist()
    labels = registered.labeller.predict(None, labeller_frame)
    assert set(expected) == {"buy", "skip"}

    pipeline = client.infer(PIPELINE, columns(frame), headers=auth_headers())
    pipeline_json = client.infer(
        PIPELINE,
        columns(frame, binary=False),
        outputs=json_outputs("predict"),
        headers=auth_headers(),
    )
    labeller = client.infer(LABELLER, columns(labeller_frame), headers=auth_headers())
    labeller_json = client.infer(
        LABELLER,
        columns(labeller_frame, binary=False),
        outputs=json_outputs("predict"),
        headers=auth_headers(),
    )

    assert texts(pipeline.as_numpy("predict")) == expected
    assert texts(pipeline_json.as_numpy("predict")) == expected
    assert texts(labeller.as_numpy("predict")) == labels
    assert texts(labeller_json.as_numpy("predict")) == labels
    (output,) = pipeline.get_response()["outputs"]
    assert (output["datatype"], "data" in output) == ("BYTES", False)


def test_outputs_asked_with_binary_data_false_come_back_as_json(
    client: triton.InferenceServerClient, registered: Registered
) -> None:
    frame = registered.frame.head(10)

    answer = client.infer(
        PIPELINE,
        columns(frame),
        outputs=[
            triton.InferRequestedOutput("predict", binary_data=False),
            triton.InferRequestedOutput("predict_proba", binary_data=True),
        ],
        headers=auth_headers(),
    )

    label, proba = answer.get_response()["outputs"]
    assert label["data"] == registered.pipeline.predict(frame).tolist()
    assert "data" not in proba
    assert proba["parameters"]["binary_data_size"] == 8 * 10 * 2
    np.testing.assert_allclose(
        answer.as_numpy("predict_proba"), registered.pipeline.predict_proba(frame)
    )


def test_a_value_that_does_not_fit_reaches_tritonclient_as_its_error(
    client: triton.InferenceServerClient, registered: Registered
) -> None:
    inputs = columns(registered.frame.head(2))
    visits = triton.InferInput("visits", [2], "BYTES")
    visits.set_data_from_numpy(np.array([b"3", b"many"], dtype=object))
    inputs[2] = visits

    with pytest.raises(InferenceServerException) as refused:
        client.infer(PIPELINE, inputs, headers=auth_headers())

    assert refused.value.status() == "400"
    assert "column 'visits' is long" in refused.value.message()


def corrupted(frame: pd.DataFrame, request_id: str, change: str) -> tuple[bytes, dict[str, str]]:
    """tritonclient's binary body for ``frame``, then spoiled as ``change`` says."""
    body, length = triton.InferenceServerClient.generate_request_body(
        columns(frame), request_id=request_id
    )
    header, tail = json.loads(body[:length]), body[length:]
    if change == "size":  # visits (INT64 x 2 = 16 bytes) said to take 12
        header["inputs"][2]["parameters"]["binary_data_size"] = 12
    elif change == "length":  # the first city string said to be 4,000 bytes long
        tail = (4000).to_bytes(4, "little") + tail[4:]
    encoded = json.dumps(header).encode()
    split = len(encoded) if change != "header" else len(encoded) + len(tail) + 1
    return encoded + tail, {"Inference-Header-Content-Length": str(split), **auth_headers()}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("size", "input 'visits': shape [2] of INT64 takes 16 bytes, binary_data_size is 12"),
        ("length", "input 'city': BYTES element 0 is said to be 4000 bytes long"),
        ("header", "Inference-Header-Content-Length is"),
    ],
)
@pytest.mark.usefixtures("client")  # every model loaded
async def test_a_malformed_binary_body_is_a_400_naming_the_input_and_is_not_logged(
    served: ServedApp,
    registered: Registered,
    broker: EmbeddedBroker,
    change: str,
    message: str,
) -> None:
    frame = registered.frame.head(2)
    refused_id, good_id = f"binary-refused-{change}", f"binary-ok-{change}"
    body, headers = corrupted(frame, refused_id, change)
    good, length = triton.InferenceServerClient.generate_request_body(
        columns(frame), request_id=good_id
    )
    async with httpx.AsyncClient(base_url=served.url, timeout=30) as http:
        bad = await http.post(f"/v2/models/{PIPELINE}/infer", content=body, headers=headers)
        ok = await http.post(
            f"/v2/models/{PIPELINE}/infer",
            content=good,
            headers={"Inference-Header-Content-Length": str(length), **auth_headers()},
        )

    assert bad.status_code == 400
    assert message in bad.json()["error"]
    assert ok.status_code == 200, ok.text
    # The good request was sent after the refused one: once its record is there, a
    # record of the refused one would be too.
    records = await read_records(
        broker.bootstrap_servers,
        TOPICS["predictions"].name,
        prediction_of({refused_id, good_id}),
        expected=1,
        timeout=30,
    )
    late = await read_records(
        broker.bootstrap_servers,
        TOPICS["predictions"].name,
        prediction_of({refused_id}),
        expected=1,
        timeout=2,
    )
    assert late == []
    (record,) = records
    logged: serving_events.PredictionLogged = from_record(record.value, list(record.headers)).data
    assert logged.request_id == good_id
