"""The online response JSON is exactly what Feast's feature server renders."""

from __future__ import annotations

import pytest
from feast.feature_server_utils import convert_response_to_dict
from feast.protos.feast.serving.ServingService_pb2 import (
    FieldStatus,
    GetOnlineFeaturesResponse,
    GetOnlineFeaturesResponseMetadata,
)
from feast.protos.feast.types.Value_pb2 import Value

from driftloop_features.adapters.online_json import online_response_dict

pytestmark = pytest.mark.unit


def _response() -> GetOnlineFeaturesResponse:
    response = GetOnlineFeaturesResponse(status=True)
    metadata = GetOnlineFeaturesResponseMetadata()
    metadata.feature_names.val.extend(["flower_id", "sepal_length", "site", "photo"])
    response.metadata.CopyFrom(metadata)
    columns = [
        [Value(int64_val=1), Value(int64_val=2), Value(int64_val=3)],
        [Value(double_val=5.1), Value(double_val=float("nan")), Value()],
        [Value(string_val="north"), Value(string_val=""), Value()],
        [Value(bytes_val=b"\x9f\x86"), Value(), Value()],
    ]
    stamps = [(1_700_000_000, 0), (1_700_000_001, 120_000_000), (1_700_000_002, 123_456_789)]
    for index, values in enumerate(columns):
        vector = response.results.add()
        vector.values.extend(values)
        vector.statuses.extend([FieldStatus.PRESENT, FieldStatus.PRESENT, FieldStatus.NOT_FOUND])
        if index:
            for seconds, nanos in [*stamps[:2], (0, 0)]:
                stamp = vector.event_timestamps.add()
                stamp.seconds, stamp.nanos = seconds, nanos
        else:
            stamp = vector.event_timestamps.add()
            stamp.seconds, stamp.nanos = stamps[2]
    return response


def test_the_online_json_equals_feasts_own_rendering() -> None:
    response = _response()
    assert online_response_dict(response) == convert_response_to_dict(response)
    assert online_response_dict(response)["results"][1]["event_timestamps"] == [
        "2023-11-14T22:13:20Z",
        "2023-11-14T22:13:21.120Z",
        "1970-01-01T00:00:00Z",
    ]
