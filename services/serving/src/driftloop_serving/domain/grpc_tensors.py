"""KServe's V2 gRPC messages, to and from the V2 request and answer REST reads and writes.

A ``ModelInferRequest`` becomes the JSON body REST's ``infer`` reads (and its binary
part), so both protocols score through the same code
(:func:`driftloop_serving.entrypoints.routers.v2.infer_body`): typed inputs by the
model's signature, outputs by name, the same errors naming the column and the row.

- An input's values are in its ``contents`` field of its datatype (``fp64_contents``
  for ``FP64``, ``int_contents`` for ``INT8``/``INT16``/``INT32``, ``bytes_contents``
  for ``BYTES`` ...), or all inputs' values are in ``raw_input_contents``, one entry per
  input, laid out as V2's binary tensors (what ``tritonclient.grpc`` sends): they are
  read by :mod:`~driftloop_serving.domain.binary_tensors`, which checks every size
  against the shape and datatype.
- Parameters (``InferParameter``) are their bool, int64 or string value.
- The answer's outputs are in ``raw_output_contents`` (as Triton answers), their
  ``content_type`` and the request's ``route`` in ``parameters``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, MutableMapping
from typing import Any

import numpy as np

from driftloop_serving.domain import binary_tensors
from driftloop_serving.domain.errors import BadRequest
from driftloop_serving.kserve import grpc_predict_v2_pb2 as pb

__all__ = ["infer_response", "metadata_response", "request_body"]

#: The ``InferTensorContents`` field of each datatype (FP16 and BF16 have none: raw only).
CONTENTS = {
    "BOOL": "bool_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}


def _parameters(parameters: Mapping[str, pb.InferParameter]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, parameter in parameters.items():
        kind = parameter.WhichOneof("parameter_choice")
        found[key] = getattr(parameter, kind) if kind is not None else None
    return found


def _contents(tensor: pb.ModelInferRequest.InferInputTensor) -> Any:
    name, datatype = tensor.name, tensor.datatype
    field = CONTENTS.get(datatype)
    if field is None:
        if datatype in binary_tensors.DTYPES:
            raise BadRequest(
                f"input {name!r}: {datatype} has no contents field; send it in raw_input_contents"
            )
        raise BadRequest(
            f"input {name!r}: datatype {datatype!r} is not supported "
            f"(use one of {', '.join(CONTENTS)})"
        )
    values = getattr(tensor.contents, field)
    if not values:
        sent = [described.name for described, _ in tensor.contents.ListFields()]
        if sent:
            raise BadRequest(
                f"input {name!r}: {datatype} values go in contents.{field}, got {', '.join(sent)}"
            )
    if datatype == "BYTES":
        return list(values)
    return np.asarray(values, dtype=binary_tensors.DTYPES[datatype])


def request_body(request: pb.ModelInferRequest) -> tuple[dict[str, Any], memoryview | None]:
    """The V2 JSON body of ``request``, and the binary part its raw contents make.

    Raises:
        BadRequest: Raw contents that are not one per input, an input with both
            contents and raw contents, or values outside the field of their datatype.
    """
    raw = request.raw_input_contents
    if raw and len(raw) != len(request.inputs):
        raise BadRequest(
            f"raw_input_contents has {len(raw)} entries for {len(request.inputs)} inputs: "
            "one per input, in their order"
        )
    inputs = []
    for index, tensor in enumerate(request.inputs):
        described: dict[str, Any] = {
            "name": tensor.name,
            "datatype": tensor.datatype,
            "shape": list(tensor.shape),
        }
        parameters = _parameters(tensor.parameters)
        if raw:
            if tensor.HasField("contents"):
                raise BadRequest(
                    f"input {tensor.name!r}: has contents, and the request has "
                    "raw_input_contents (one or the other)"
                )
            parameters["binary_data_size"] = len(raw[index])
        else:
            described["data"] = _contents(tensor)
        if parameters:
            described["parameters"] = parameters
        inputs.append(described)
    body: dict[str, Any] = {"inputs": inputs}
    if request.id:
        body["id"] = request.id
    if request.parameters:
        body["parameters"] = _parameters(request.parameters)
    if request.outputs:
        # Output parameters (REST's binary_data) mean nothing here: answers are raw.
        body["outputs"] = [{"name": output.name} for output in request.outputs]
    return body, memoryview(b"".join(raw)) if raw else None


def _set(parameters: MutableMapping[str, pb.InferParameter], values: Mapping[str, Any]) -> None:
    for key, value in values.items():
        parameter = parameters[key]
        if isinstance(value, bool):
            parameter.bool_param = value
        elif isinstance(value, int):
            parameter.int64_param = value
        elif isinstance(value, str):
            parameter.string_param = value
        else:  # a list or a mapping (the classes of predict_proba): as JSON
            parameter.string_param = json.dumps(value)


def infer_response(content: Mapping[str, Any], data: bytes) -> pb.ModelInferResponse:
    """The ``ModelInferResponse`` of a V2 answer whose every output is binary.

    Args:
        content: The answer's JSON (``v2_response`` with every output in ``binary``).
        data: Its outputs' bytes, one after the other.
    """
    response = pb.ModelInferResponse(
        model_name=content["model_name"],
        model_version=content["model_version"],
        id=content["id"],
    )
    _set(response.parameters, content["parameters"])
    view = memoryview(data)
    offset = 0
    for output in content["outputs"]:
        parameters = dict(output.get("parameters") or {})
        size = int(parameters.pop("binary_data_size"))
        tensor = response.outputs.add(
            name=output["name"], datatype=output["datatype"], shape=output["shape"]
        )
        _set(tensor.parameters, parameters)
        response.raw_output_contents.append(bytes(view[offset : offset + size]))
        offset += size
    return response


def _tensor(described: Mapping[str, Any]) -> pb.ModelMetadataResponse.TensorMetadata:
    return pb.ModelMetadataResponse.TensorMetadata(
        name=described["name"], datatype=described["datatype"], shape=described["shape"]
    )


def metadata_response(metadata: Mapping[str, Any]) -> pb.ModelMetadataResponse:
    """The ``ModelMetadataResponse`` of V2's model metadata (REST's JSON)."""
    return pb.ModelMetadataResponse(
        name=metadata["name"],
        versions=metadata["versions"],
        platform=metadata["platform"],
        inputs=[_tensor(t) for t in metadata["inputs"]],
        outputs=[_tensor(t) for t in metadata["outputs"]],
    )
