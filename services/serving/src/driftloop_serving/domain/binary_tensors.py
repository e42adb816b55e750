"""V2's binary tensor data extension (REST): tensors as raw bytes after the JSON.

As Triton defines it ("Binary Tensor Data Extension") and KServe's Python server
implements it (``kserve/protocol/infer_type.py``); ``tritonclient.http`` uses it by
default:

- A request's ``Inference-Header-Content-Length`` header is the length of its JSON;
  the bytes after the JSON are the data of the inputs that have a
  ``parameters.binary_data_size`` (their size in bytes), one after the other in the
  order of ``inputs``. Such an input has no ``data``.
- Binary data is little-endian, row-major, without padding. A ``BOOL`` is one byte,
  0 or 1; a ``BYTES`` element is a 4-byte little-endian unsigned length, then its bytes.
- A requested output whose ``parameters.binary_data`` is true (or any output, when the
  request's ``parameters.binary_data_output`` is true and the output does not say
  otherwise) is answered in binary: ``parameters.binary_data_size`` instead of
  ``data``, its bytes after the response's JSON, whose length the response's
  ``Inference-Header-Content-Length`` header gives.

:func:`split_body` reads a request's JSON and binary parts, :func:`decode_inputs`
puts each binary input's values in its ``data`` (a numpy array, or ``bytes`` per
``BYTES`` element), :func:`binary_outputs` says which outputs go back in binary and
:func:`encode` gives an output's bytes. Everything the caller sends is checked against
the body's real size before any value is read: a size, a length or a shape that does
not add up is a :class:`BadRequest` naming the input.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from typing import Any

import numpy as np

from driftloop_serving.domain.errors import BadRequest

__all__ = [
    "EXTENSION",
    "HEADER",
    "binary_outputs",
    "decode_inputs",
    "encode",
    "split_body",
]

#: The extension's name in the server metadata (as Triton reports it).
EXTENSION = "binary_tensor_data"

#: The HTTP header giving the length of the JSON before the binary data.
HEADER = "Inference-Header-Content-Length"

#: Little-endian numpy types of the V2 datatypes that have a fixed size.
DTYPES: dict[str, np.dtype[Any]] = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype("<u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "INT8": np.dtype("<i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
}

_LENGTH = struct.Struct("<I")

_NONE: frozenset[str] = frozenset()

Array = np.ndarray[Any, Any]


def split_body(body: bytes, header: str) -> tuple[bytes, memoryview]:
    """The JSON and the binary part of a request body.

    Args:
        body: The whole request body.
        header: The request's ``Inference-Header-Content-Length`` value.

    Raises:
        BadRequest: The header is not a length within the body.
    """
    text = header.strip()
    # At most 19 digits (any body's length): int() of a longer string may even refuse.
    if not text.isdigit() or not text.isascii() or len(text) > 19:
        raise BadRequest(f"{HEADER} must be the length of the JSON in bytes, got {header[:40]!r}")
    length = int(text)
    if length > len(body):
        raise BadRequest(f"{HEADER} is {length}, beyond the body's {len(body)} bytes")
    return body[:length], memoryview(body)[length:]


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def decode_inputs(body: Any, binary: memoryview) -> None:
    """Give every binary input of ``body`` its values as ``data``, read from ``binary``.

    A fixed-size datatype's values become a 1-D numpy array; a ``BYTES`` input's a
    list of ``bytes``, one per element. Inputs without ``binary_data_size`` are left
    as they are.

    Raises:
        BadRequest: A ``binary_data_size`` that is not a non-negative integer, that
            goes past the body's end or does not fit the input's shape and datatype;
            an input with both ``data`` and ``binary_data_size``; bytes after the JSON
            that no input claims; a ``BOOL`` byte other than 0 or 1. The message names
            the input.
    """
    inputs = body.get("inputs") if isinstance(body, dict) else None
    offset = 0
    for index, tensor in enumerate(inputs if isinstance(inputs, list) else ()):
        parameters = tensor.get("parameters") if isinstance(tensor, dict) else None
        if not isinstance(parameters, dict) or "binary_data_size" not in parameters:
            continue
        name = f"input {str(tensor.get('name', '')) or index!r}"
        size = parameters["binary_data_size"]
        if not _is_count(size):
            raise BadRequest(f"{name}: binary_data_size must be a non-negative integer")
        if "data" in tensor:
            raise BadRequest(f"{name}: has both 'data' and binary_data_size")
        if size > len(binary) - offset:
            raise BadRequest(
                f"{name}: binary_data_size {size} goes past the end of the body "
                f"({len(binary) - offset} bytes left after the JSON and the inputs before it)"
            )
        tensor["data"] = _values(name, tensor, binary[offset : offset + size])
        offset += size
    if offset != len(binary):
        raise BadRequest(
            f"the body has {len(binary)} bytes after the JSON, and the inputs' "
            f"binary_data_size add up to {offset}"
        )


def _values(name: str, tensor: dict[str, Any], data: memoryview) -> Array | list[bytes]:
    shape, datatype = tensor.get("shape"), tensor.get("datatype")
    if not isinstance(shape, list) or not all(_is_count(d) for d in shape):
        raise BadRequest(f"{name}: 'shape' must be a list of non-negative integers")
    count = math.prod(shape)
    if datatype == "BYTES":
        return _strings(name, count, data)
    dtype = DTYPES.get(datatype) if isinstance(datatype, str) else None
    if dtype is None:
        raise BadRequest(
            f"{name}: datatype {datatype!r} cannot be sent in binary "
            f"(use BYTES or one of {', '.join(DTYPES)})"
        )
    if len(data) != count * dtype.itemsize:
        raise BadRequest(
            f"{name}: shape {shape} of {datatype} takes {count * dtype.itemsize} bytes, "
            f"binary_data_size is {len(data)}"
        )
    if datatype == "BOOL":
        raw = np.frombuffer(data, dtype=np.uint8)
        if (wrong := np.flatnonzero(raw > 1)).size:
            raise BadRequest(
                f"{name}: element {wrong[0]} is the byte {raw[wrong[0]]}: a BOOL is 0 or 1"
            )
    # A copy: the array owns its values (writable, and the body can go).
    return np.frombuffer(data, dtype=dtype).copy()


def _strings(name: str, count: int, data: memoryview) -> list[bytes]:
    # Each element takes at least its 4-byte length: a shape too large for the data
    # is refused before anything is read.
    if count * _LENGTH.size > len(data):
        raise BadRequest(
            f"{name}: {count} BYTES elements take at least {count * _LENGTH.size} bytes, "
            f"binary_data_size is {len(data)}"
        )
    values = []
    offset = 0
    for element in range(count):
        if offset + _LENGTH.size > len(data):
            raise BadRequest(
                f"{name}: BYTES element {element} starts past the end of its binary_data_size"
            )
        (length,) = _LENGTH.unpack_from(data, offset)
        offset += _LENGTH.size
        if length > len(data) - offset:
            raise BadRequest(
                f"{name}: BYTES element {element} is said to be {length} bytes long, "
                f"{len(data) - offset} are left of its binary_data_size"
            )
        values.append(bytes(data[offset : offset + length]))
        offset += length
    if offset != len(data):
        raise BadRequest(
            f"{name}: its {count} BYTES elements take {offset} bytes, "
            f"binary_data_size is {len(data)}"
        )
    return values


def _flag(value: Any, what: str) -> bool:
    if not isinstance(value, bool):
        raise BadRequest(f"{what} must be true or false, got {value!r}")
    return value


def binary_outputs(body: Any, names: Sequence[str]) -> frozenset[str]:
    """Which of the outputs ``names`` (those the request asks for) go back in binary.

    Raises:
        BadRequest: ``parameters.binary_data_output`` or an output's
            ``parameters.binary_data`` is not a boolean.
    """
    if not isinstance(body, dict):
        return _NONE
    parameters = body.get("parameters")
    every = (
        _flag(parameters["binary_data_output"], "parameters.binary_data_output")
        if isinstance(parameters, dict) and "binary_data_output" in parameters
        else False
    )
    asked = body.get("outputs")
    if not isinstance(asked, list):
        return frozenset(names) if every else _NONE
    binary = set()
    for output in asked:
        name = str(output.get("name", "")) if isinstance(output, dict) else ""
        own = output.get("parameters") if isinstance(output, dict) else None
        if isinstance(own, dict) and "binary_data" in own:
            chosen = _flag(own["binary_data"], f"output {name!r}: parameters.binary_data")
        else:
            chosen = every
        if chosen:
            binary.add(name)
    return frozenset(binary)


def encode(values: Array, datatype: str) -> bytes:
    """The binary data of an output tensor of ``datatype`` (row-major, little-endian).

    ``BYTES`` elements are ``bytes`` as they are and anything else as its text in UTF-8.
    """
    if datatype != "BYTES":
        return np.ascontiguousarray(values, dtype=DTYPES[datatype]).tobytes()
    parts: list[bytes] = []
    for value in np.asarray(values, dtype=np.object_).reshape(-1).tolist():
        item = value if isinstance(value, bytes) else str(value).encode()
        parts += (_LENGTH.pack(len(item)), item)
    return b"".join(parts)
