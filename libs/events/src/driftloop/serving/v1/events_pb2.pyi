import datetime

from driftloop.common.v1 import common_pb2 as _common_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Route(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ROUTE_UNSPECIFIED: _ClassVar[Route]
    ROUTE_CHAMPION: _ClassVar[Route]
    ROUTE_CANARY: _ClassVar[Route]
    ROUTE_SHADOW: _ClassVar[Route]
    ROUTE_BATCH: _ClassVar[Route]
ROUTE_UNSPECIFIED: Route
ROUTE_CHAMPION: Route
ROUTE_CANARY: Route
ROUTE_SHADOW: Route
ROUTE_BATCH: Route

class PredictionLogged(_message.Message):
    __slots__ = ("request_id", "model", "alias", "route", "inputs", "outputs", "latency_ms", "request_time", "feature_times")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    ALIAS_FIELD_NUMBER: _ClassVar[int]
    ROUTE_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_TIME_FIELD_NUMBER: _ClassVar[int]
    FEATURE_TIMES_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    model: _common_pb2.ModelRef
    alias: str
    route: Route
    inputs: _containers.RepeatedCompositeFieldContainer[_common_pb2.Record]
    outputs: _containers.RepeatedCompositeFieldContainer[_common_pb2.Record]
    latency_ms: float
    request_time: _timestamp_pb2.Timestamp
    feature_times: _containers.RepeatedCompositeFieldContainer[_common_pb2.Record]
    def __init__(self, request_id: _Optional[str] = ..., model: _Optional[_Union[_common_pb2.ModelRef, _Mapping]] = ..., alias: _Optional[str] = ..., route: _Optional[_Union[Route, str]] = ..., inputs: _Optional[_Iterable[_Union[_common_pb2.Record, _Mapping]]] = ..., outputs: _Optional[_Iterable[_Union[_common_pb2.Record, _Mapping]]] = ..., latency_ms: _Optional[float] = ..., request_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., feature_times: _Optional[_Iterable[_Union[_common_pb2.Record, _Mapping]]] = ...) -> None: ...
