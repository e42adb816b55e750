"""V2's binary tensor data extension: decoding, encoding and the ``infer`` route, on fakes.

Requests are encoded and answers decoded by ``tritonclient.http`` itself (its
``generate_request_body`` and ``parse_response_body``, what its ``infer`` does around
the HTTP call), so these tests hold serving to the client's bytes, not to ours.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pydantic_core
import pytest
import tritonclient.http as triton  # type: ignore[import-untyped]
from fastapi import FastAPI

from driftloop_kit.app import create_service_app
from driftloop_kit.testing import app_client
from driftloop_serving.domain import binary_tensors
from driftloop_serving.domain.errors import BadRequest
from driftloop_serving.domain.models import Column, Predictor, ServedModel
from driftloop_serving.domain.protocols import v2_response
from driftloop_serving.domain.signature import Batch
from driftloop_serving.entrypoints.fast_routes import FAST_ROUTES
from driftloop_serving.entrypoints.routers import ROUTERS
from driftloop_serving.service_layer.scoring import Scorer
from driftloop_serving.settings import ServingSettings
from tests.fakes.serving import FakePredictionLog, FakeServedModels

pytestmark = pytest.mark.unit

Array = np.ndarray[Any, Any]

NUMBERS: dict[str, Array] = {
    "BOOL": np.array([[True, False], [False, True]]),
    "INT8": np.array([-128, 0, 127], dtype=np.int8),
    "INT16": np.array([-32768, 7, 32767], dtype=np.int16),
    "INT32": np.array([[-(2**31), 1], [2, 2**31 - 1]], dtype=np.int32),
    "INT64": np.array([-(2**63), 0, 2**63 - 1], dtype=np.int64),
    "UINT8": np.array([0, 255], dtype=np.uint8),
    "UINT16": np.array([0, 65535], dtype=np.uint16),
    "UINT32": np.array([0, 2**32 - 1], dtype=np.uint32),
    "UINT64": np.array([0, 2**64 - 1], dtype=np.uint64),
    "FP16": np.array([0.5, -2.25, 65504], dtype=np.float16),
    "FP32": np.array([[1.5, -0.0], [np.inf, 3.25]], dtype=np.float32),
    "FP64": np.array([0.1, -1e300, np.nan]),
}


def triton_input(name: str, values: Array, datatype: str, *, binary: bool = True) -> Any:
    tensor = triton.InferInput(name, list(values.shape), datatype)
    tensor.set_data_from_numpy(values, binary_data=binary)
    return tensor


def decoded(inputs: list[Any]) -> dict[str, Any]:
    """What serving reads of the body tritonclient sends for ``inputs``."""
    body, length = triton.InferenceServerClient.generate_request_body(inputs)
    header, binary = binary_tensors.split_body(body, str(length))
    document = pydantic_core.from_json(header)
    binary_tensors.decode_inputs(document, binary)
    return {t["name"]: t["data"] for t in document["inputs"]}


@pytest.mark.parametrize("datatype", list(NUMBERS))
def test_every_fixed_size_datatype_is_read_as_tritonclient_encodes_it(datatype: str) -> None:
    values = NUMBERS[datatype]

    data = decoded([triton_input("x", values, datatype)])["x"]

    assert data.dtype == values.dtype
    np.testing.assert_array_equal(data, values.reshape(-1))


def test_bytes_elements_are_read_with_their_4_byte_lengths() -> None:
    values = np.array([["Lyon", ""], ["Zürich", "x" * 300]], dtype=np.object_)
    raw = np.array([b"\x00\xff", b"ok"], dtype=np.object_)

    data = decoded([triton_input("city", values, "BYTES"), triton_input("blob", raw, "BYTES")])

    assert data["city"] == [b"Lyon", b"", "Zürich".encode(), b"x" * 300]
    assert data["blob"] == [b"\x00\xff", b"ok"]


def test_binary_and_json_inputs_mix_in_one_request() -> None:
    data = decoded(
        [
            triton_input("a", np.array([1.0, 2.0]), "FP64"),
            triton_input("b", np.array([3, 4], dtype=np.int64), "INT64", binary=False),
            triton_input("c", np.array(["p", "q"], dtype=np.object_), "BYTES"),
        ]
    )

    assert data["a"].tolist() == [1.0, 2.0]
    assert data["b"] == [3, 4]
    assert data["c"] == [b"p", b"q"]


def request(*inputs: dict[str, Any], tail: bytes = b"") -> tuple[dict[str, Any], memoryview]:
    return {"inputs": list(inputs)}, memoryview(tail)


def tensor(name: str, shape: list[int], datatype: str, size: Any) -> dict[str, Any]:
    return {
        "name": name,
        "shape": shape,
        "datatype": datatype,
        "parameters": {"binary_data_size": size},
    }


def strings(*items: bytes) -> bytes:
    return b"".join(struct.pack("<I", len(item)) + item for item in items)


MALFORMED: list[tuple[str, tuple[dict[str, Any], memoryview], str]] = [
    (
        "size-not-shape",
        request(tensor("x", [2, 2], "FP32", 12), tail=b"\0" * 12),
        "input 'x': shape [2, 2] of FP32 takes 16 bytes, binary_data_size is 12",
    ),
    (
        "past-the-end",
        request(tensor("x", [1, 4], "FP64", 32), tail=b"\0" * 16),
        "input 'x': binary_data_size 32 goes past the end of the body (16 bytes left",
    ),
    (
        "second-past-the-end",
        request(tensor("a", [1], "FP64", 8), tensor("b", [1], "FP64", 8), tail=b"\0" * 12),
        "input 'b': binary_data_size 8 goes past the end of the body (4 bytes left",
    ),
    (
        "negative",
        request(tensor("x", [1], "INT8", -1), tail=b"\0"),
        "input 'x': binary_data_size must be a non-negative integer",
    ),
    (
        "not-a-number",
        request(tensor("x", [1], "INT8", "1"), tail=b"\0"),
        "input 'x': binary_data_size must be a non-negative integer",
    ),
    (
        "boolean",
        request(tensor("x", [1], "INT8", True), tail=b"\0"),
        "input 'x': binary_data_size must be a non-negative integer",
    ),
    (
        "unclaimed-bytes",
        request(tensor("x", [1], "INT8", 1), tail=b"\0\0\0"),
        "3 bytes after the JSON, and the inputs' binary_data_size add up to 1",
    ),
    (
        "data-and-binary",
        request({**tensor("x", [1], "INT8", 1), "data": [1]}, tail=b"\0"),
        "input 'x': has both 'data' and binary_data_size",
    ),
    (
        "unknown-datatype",
        request(tensor("x", [1], "FP8", 1), tail=b"\0"),
        "input 'x': datatype 'FP8' cannot be sent in binary",
    ),
    (
        "negative-shape",
        request(tensor("x", [-1], "INT8", 1), tail=b"\0"),
        "input 'x': 'shape' must be a list of non-negative integers",
    ),
    (
        "huge-shape",
        request(tensor("x", [10**12, 10**12], "FP64", 8), tail=b"\0" * 8),
        "input 'x': shape [1000000000000, 1000000000000] of FP64 takes",
    ),
    (
        "bool-byte",
        request(tensor("flag", [3], "BOOL", 3), tail=b"\x01\x00\x02"),
        "input 'flag': element 2 is the byte 2: a BOOL is 0 or 1",
    ),
    (
        "bytes-too-many",
        request(tensor("city", [10**9], "BYTES", 8), tail=strings(b"abcd")),
        "input 'city': 1000000000 BYTES elements take at least 4000000000 bytes",
    ),
    (
        "bytes-length-past",
        request(tensor("city", [1], "BYTES", 6), tail=struct.pack("<I", 99) + b"ab"),
        "input 'city': BYTES element 0 is said to be 99 bytes long, 2 are left",
    ),
    (
        "bytes-left-over",
        request(tensor("city", [1], "BYTES", 8), tail=strings(b"ab") + b"zz"),
        "input 'city': its 1 BYTES elements take 6 bytes, binary_data_size is 8",
    ),
    (
        "bytes-cut",
        request(tensor("city", [2], "BYTES", 9), tail=strings(b"abc") + b"\0\0"),
        "input 'city': BYTES element 1 starts past the end of its binary_data_size",
    ),
]


@pytest.mark.parametrize(
    ("body", "message"), [c[1:] for c in MALFORMED], ids=[c[0] for c in MALFORMED]
)
def test_binary_data_that_does_not_add_up_is_refused_naming_the_input(
    body: tuple[dict[str, Any], memoryview], message: str
) -> None:
    document, tail = body

    with pytest.raises(BadRequest) as refused:
        binary_tensors.decode_inputs(document, tail)

    assert message in str(refused.value)


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("41", "Inference-Header-Content-Length is 41, beyond the body's 40 bytes"),
        ("-3", "must be the length of the JSON in bytes, got '-3'"),
        ("twelve", "must be the length of the JSON in bytes, got 'twelve'"),
        ("１２", "must be the length of the JSON in bytes"),  # digits, but not ASCII
        ("9" * 5000, "must be the length of the JSON in bytes"),  # past int()'s 4300 digits
    ],
)
def test_a_header_length_that_is_not_within_the_body_is_refused(header: str, message: str) -> None:
    with pytest.raises(BadRequest, match=message):
        binary_tensors.split_body(b"x" * 40, header)


def test_outputs_are_binary_as_the_request_and_each_output_say() -> None:
    outputs = ("predict", "predict_proba")

    def binary(body: dict[str, Any]) -> frozenset[str]:
        return binary_tensors.binary_outputs(body, outputs)

    assert binary({"inputs": []}) == frozenset()
    assert binary({"parameters": {"binary_data_output": True}}) == set(outputs)
    assert binary(
        {
            "parameters": {"binary_data_output": True},
            "outputs": [{"name": "predict"}, {"name": "predict_proba", "parameters": {}}],
        }
    ) == set(outputs)
    # An output's own binary_data wins over the request's.
    assert binary(
        {
            "parameters": {"binary_data_output": True},
            "outputs": [
                {"name": "predict", "parameters": {"binary_data": False}},
                {"name": "predict_proba"},
            ],
        }
    ) == {"predict_proba"}
    assert binary({"outputs": [{"name": "predict", "parameters": {"binary_data": True}}]}) == {
        "predict"
    }
    with pytest.raises(BadRequest, match=r"parameters\.binary_data_output must be true or false"):
        binary({"parameters": {"binary_data_output": "yes"}})
    with pytest.raises(BadRequest, match=r"output 'predict': parameters\.binary_data must be"):
        binary({"outputs": [{"name": "predict", "parameters": {"binary_data": 1}}]})


@pytest.mark.parametrize(
    ("predictions", "datatype"),
    [
        (np.array([1.5, -2.0, np.nan]), "FP64"),
        (np.array([3, -4, 5], dtype=np.int32), "INT64"),
        (np.array([True, False]), "BOOL"),
        (np.array(["buy", "", "Zürich"], dtype=object), "BYTES"),
        (np.array([b"\x00", b"ok"], dtype=object), "BYTES"),
    ],
)
def test_binary_outputs_read_back_with_tritonclient_as_the_json_ones(
    predictions: Array, datatype: str
) -> None:
    probabilities = np.linspace(0, 1, 2 * len(predictions)).reshape(-1, 2)
    answer: dict[str, Any] = {
        "model": "m",
        "version": 1,
        "request_id": "r",
        "predictions": predictions,
        "route": "champion",
        "probabilities": probabilities,
        "outputs": ("predict", "predict_proba"),
    }
    as_json, nothing = v2_response(**answer)
    content, data = v2_response(**answer, binary={"predict"})
    header = pydantic_core.to_json(content)

    parsed = triton.InferenceServerClient.parse_response_body(
        header + data, header_length=len(header)
    )

    assert nothing == b""
    label, proba = content["outputs"]
    assert "data" not in label
    assert label["parameters"]["binary_data_size"] == len(data)
    assert label["datatype"] == as_json["outputs"][0]["datatype"] == datatype
    assert proba == as_json["outputs"][1]  # not asked in binary: JSON as before
    expected = predictions.astype(np.int64) if datatype == "INT64" else predictions
    if datatype == "BYTES":
        expected = np.array([v if isinstance(v, bytes) else v.encode() for v in predictions])
    np.testing.assert_array_equal(parsed.as_numpy("predict").astype(expected.dtype), expected)
    np.testing.assert_allclose(parsed.as_numpy("predict_proba"), probabilities)


def test_bytes_outputs_keep_bytes_that_are_not_text() -> None:
    encoded = binary_tensors.encode(np.array([b"\xff\x00", "é"], dtype=object), "BYTES")

    assert encoded == b"\x02\x00\x00\x00\xff\x00" + b"\x02\x00\x00\x00" + "é".encode()


# -- the infer route ---------------------------------------------------------------------

TYPED = (Column("city", "string"), Column("visits", "long"), Column("member", "boolean"))


def typed_label(batch: Batch) -> Any:
    columns = batch.columns
    return np.array(
        [
            f"{city.upper()}x{visits}{'!' if member else ''}"
            for city, visits, member in zip(
                columns["city"], columns["visits"], columns["member"], strict=True
            )
        ],
        dtype=object,
    )


def served_app(tmp_path: Path, predictor: Predictor) -> tuple[FastAPI, FakePredictionLog]:
    model = ServedModel(name="m", version=3, run_id="r" * 32, alias="champion", predictor=predictor)
    settings = ServingSettings(home=tmp_path, models="m")
    built = create_service_app(
        settings=settings, title="serving", routers=ROUTERS, fast_routes=FAST_ROUTES
    )
    log = FakePredictionLog()
    built.state.scorer = Scorer(settings, FakeServedModels(model), log)
    return built, log


FLOATS = Predictor(
    flavor="sklearn",
    columns=(Column("a", "double"), Column("b", "double")),
    predict=lambda m: m[:, 0] * 10 + m[:, 1],
)
LABELS = Predictor(flavor="python_function", columns=TYPED, predict=typed_label, typed=True)


async def infer(app: FastAPI, inputs: list[Any], outputs: list[Any] | None = None) -> Any:
    """``inputs`` sent as tritonclient's ``infer`` sends them; its result as it reads it."""
    body, length = triton.InferenceServerClient.generate_request_body(inputs, outputs=outputs)
    headers = {} if length is None else {binary_tensors.HEADER: str(length)}
    async with app_client(app) as client:
        response = await client.post("/v2/models/m/infer", content=body, headers=headers)
    assert response.status_code == 200, response.text
    split = response.headers.get(binary_tensors.HEADER)
    return triton.InferenceServerClient.parse_response_body(
        response.content, header_length=None if split is None else int(split)
    )


async def test_a_float_model_answers_binary_tensors_as_it_answers_json(tmp_path: Path) -> None:
    app, log = served_app(tmp_path, FLOATS)
    rows = np.array([[1.0, 2.0], [3.0, 4.0], [0.5, -1.0]])

    binary = await infer(app, [triton_input("x", rows, "FP64")])
    columns = await infer(
        app,
        [
            triton_input("a", rows[:, 0].astype(np.float32), "FP32"),
            triton_input("b", rows[:, 1], "FP64"),
        ],
    )
    as_json = await infer(
        app,
        [triton_input("x", rows, "FP64", binary=False)],
        [triton.InferRequestedOutput("predict", binary_data=False)],
    )

    expected = [12.0, 34.0, 4.0]
    assert binary.as_numpy("predict").tolist() == expected
    assert columns.as_numpy("predict").tolist() == expected
    assert as_json.as_numpy("predict").tolist() == expected
    (output,) = binary.get_response()["outputs"]
    assert output["parameters"] == {"binary_data_size": 24}  # came back in binary
    assert "data" in as_json.get_response()["outputs"][0]  # and this one in JSON
    assert len(log.records) == 3


async def test_a_typed_model_reads_strings_integers_and_booleans_sent_in_binary(
    tmp_path: Path,
) -> None:
    app, log = served_app(tmp_path, LABELS)
    inputs = [
        triton_input("city", np.array(["Lyon", "Zürich"], dtype=object), "BYTES"),
        triton_input("visits", np.array([3, 12], dtype=np.int64), "INT64"),
        triton_input("member", np.array([False, True]), "BOOL"),
    ]

    binary = await infer(app, inputs)
    as_json = await infer(
        app,
        [
            triton_input("city", np.array(["Lyon", "Zürich"], dtype=object), "BYTES", binary=False),
            triton_input("visits", np.array([3, 12], dtype=np.int64), "INT64", binary=False),
            triton_input("member", np.array([False, True]), "BOOL", binary=False),
        ],
        [triton.InferRequestedOutput("predict", binary_data=False)],
    )

    assert binary.as_numpy("predict").tolist() == [b"LYONx3", "ZÜRICHx12!".encode()]
    assert as_json.as_numpy("predict").tolist() == ["LYONx3", "ZÜRICHx12!"]
    assert len(log.records) == 2


async def test_bytes_that_are_not_utf8_in_a_string_column_name_the_column_and_row(
    tmp_path: Path,
) -> None:
    app, log = served_app(tmp_path, LABELS)
    inputs = [
        triton_input("city", np.array([b"Lyon", b"\xff\xfe"], dtype=object), "BYTES"),
        triton_input("visits", np.array([3, 12], dtype=np.int64), "INT64"),
        triton_input("member", np.array([False, True]), "BOOL"),
    ]
    body, length = triton.InferenceServerClient.generate_request_body(inputs)

    async with app_client(app) as client:
        response = await client.post(
            "/v2/models/m/infer", content=body, headers={binary_tensors.HEADER: str(length)}
        )

    assert response.status_code == 400
    assert "column 'city', row 1: b'\\xff\\xfe' is not a string" in response.json()["error"]
    assert log.records == []


def malformed_bodies() -> list[tuple[str, bytes, dict[str, str], str]]:
    good = {"name": "x", "shape": [1, 2], "datatype": "FP64"}

    def body(*inputs: dict[str, Any], tail: bytes, length: int | None = None) -> Any:
        header = json.dumps({"inputs": list(inputs)}).encode()
        split = len(header) if length is None else length
        return header + tail, {binary_tensors.HEADER: str(split)}

    wrong_size = body({**good, "parameters": {"binary_data_size": 8}}, tail=b"\0" * 8)
    beyond = body({**good, "parameters": {"binary_data_size": 16}}, tail=b"\0" * 16, length=999)
    short = body({**good, "parameters": {"binary_data_size": 16}}, tail=b"\0" * 16, length=20)
    no_header = json.dumps({"inputs": [{**good, "parameters": {"binary_data_size": 16}}]})
    return [
        ("wrong-size", *wrong_size, "input 'x': shape [1, 2] of FP64 takes 16 bytes"),
        ("header-beyond-the-body", *beyond, "Inference-Header-Content-Length is 999, beyond"),
        ("header-inside-the-json", *short, "the body is not valid JSON"),
        ("no-header", no_header.encode(), {}, "input 'x': binary_data_size is given, and the"),
    ]


@pytest.mark.parametrize(
    ("content", "headers", "message"),
    [case[1:] for case in malformed_bodies()],
    ids=[case[0] for case in malformed_bodies()],
)
async def test_a_malformed_binary_body_is_a_v2_400_and_nothing_is_logged(
    tmp_path: Path, content: bytes, headers: dict[str, str], message: str
) -> None:
    app, log = served_app(tmp_path, FLOATS)

    async with app_client(app) as client:
        response = await client.post("/v2/models/m/infer", content=content, headers=headers)

    assert response.status_code == 400
    assert message in response.json()["error"]
    assert log.records == []


async def test_the_server_metadata_names_the_binary_tensor_extension(tmp_path: Path) -> None:
    app, _ = served_app(tmp_path, FLOATS)

    async with app_client(app) as client:
        metadata = (await client.get("/v2")).json()

    assert metadata["extensions"] == ["binary_tensor_data"]
