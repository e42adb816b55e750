"""Serving's V2 gRPC protocol: generated from KServe's proto, current, and at peace with
``tritonclient.grpc`` in one process."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
from google.protobuf import descriptor_pool

from driftloop_events.codegen import SERVING_GRPC, check, generate_into

pytestmark = pytest.mark.unit


def test_the_grpc_protocol_is_generated_with_its_stubs_and_is_current(tmp_path: Path) -> None:
    names = {
        p.relative_to(tmp_path).as_posix() for p in generate_into(tmp_path, target=SERVING_GRPC)
    }
    drift = check(SERVING_GRPC.out_dir, target=SERVING_GRPC)

    assert names == {
        f"driftloop_serving/kserve/grpc_predict_v2_pb2{suffix}"
        for suffix in (".py", ".pyi", "_grpc.py")
    }
    assert drift.clean, drift.describe()


def test_its_messages_live_in_a_pool_of_their_own_beside_tritons() -> None:
    # tritonclient.grpc registers Triton's copy of the same inference.* messages in the
    # default pool; ours would be refused there ("duplicate symbol").
    triton = importlib.import_module("tritonclient.grpc.service_pb2")
    ours = importlib.import_module("driftloop_serving.kserve.grpc_predict_v2_pb2")
    request = ours.ModelInferRequest(model_name="iris", id="r1")
    request.inputs.add(name="x", datatype="FP64", shape=[1]).contents.fp64_contents.append(2.5)

    theirs = triton.ModelInferRequest.FromString(request.SerializeToString())

    assert ours.DESCRIPTOR.package == "inference"
    assert ours.DESCRIPTOR.pool is not descriptor_pool.Default()
    assert theirs.model_name == "iris"
    assert list(theirs.inputs[0].contents.fp64_contents) == [2.5]
