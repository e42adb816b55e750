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

class PushMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PUSH_MODE_UNSPECIFIED: _ClassVar[PushMode]
    PUSH_MODE_ONLINE: _ClassVar[PushMode]
    PUSH_MODE_OFFLINE: _ClassVar[PushMode]
    PUSH_MODE_ONLINE_AND_OFFLINE: _ClassVar[PushMode]
PUSH_MODE_UNSPECIFIED: PushMode
PUSH_MODE_ONLINE: PushMode
PUSH_MODE_OFFLINE: PushMode
PUSH_MODE_ONLINE_AND_OFFLINE: PushMode

class FeatureRow(_message.Message):
    __slots__ = ("push_source", "entity_columns", "values", "event_time", "create_time", "to")
    class ValuesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _common_pb2.Value
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_common_pb2.Value, _Mapping]] = ...) -> None: ...
    PUSH_SOURCE_FIELD_NUMBER: _ClassVar[int]
    ENTITY_COLUMNS_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    EVENT_TIME_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    TO_FIELD_NUMBER: _ClassVar[int]
    push_source: str
    entity_columns: _containers.RepeatedScalarFieldContainer[str]
    values: _containers.MessageMap[str, _common_pb2.Value]
    event_time: _timestamp_pb2.Timestamp
    create_time: _timestamp_pb2.Timestamp
    to: PushMode
    def __init__(self, push_source: _Optional[str] = ..., entity_columns: _Optional[_Iterable[str]] = ..., values: _Optional[_Mapping[str, _common_pb2.Value]] = ..., event_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., to: _Optional[_Union[PushMode, str]] = ...) -> None: ...

class FeaturesIngested(_message.Message):
    __slots__ = ("push_source", "feature_views", "rows_written", "rows_rejected", "min_event_time", "max_event_time", "online_store_written", "offline_store_written")
    PUSH_SOURCE_FIELD_NUMBER: _ClassVar[int]
    FEATURE_VIEWS_FIELD_NUMBER: _ClassVar[int]
    ROWS_WRITTEN_FIELD_NUMBER: _ClassVar[int]
    ROWS_REJECTED_FIELD_NUMBER: _ClassVar[int]
    MIN_EVENT_TIME_FIELD_NUMBER: _ClassVar[int]
    MAX_EVENT_TIME_FIELD_NUMBER: _ClassVar[int]
    ONLINE_STORE_WRITTEN_FIELD_NUMBER: _ClassVar[int]
    OFFLINE_STORE_WRITTEN_FIELD_NUMBER: _ClassVar[int]
    push_source: str
    feature_views: _containers.RepeatedScalarFieldContainer[str]
    rows_written: int
    rows_rejected: int
    min_event_time: _timestamp_pb2.Timestamp
    max_event_time: _timestamp_pb2.Timestamp
    online_store_written: bool
    offline_store_written: bool
    def __init__(self, push_source: _Optional[str] = ..., feature_views: _Optional[_Iterable[str]] = ..., rows_written: _Optional[int] = ..., rows_rejected: _Optional[int] = ..., min_event_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., max_event_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., online_store_written: _Optional[bool] = ..., offline_store_written: _Optional[bool] = ...) -> None: ...

class FeaturesMaterialized(_message.Message):
    __slots__ = ("feature_view", "start_time", "end_time", "rows", "materialization_id")
    FEATURE_VIEW_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    MATERIALIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    feature_view: str
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    rows: int
    materialization_id: str
    def __init__(self, feature_view: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., rows: _Optional[int] = ..., materialization_id: _Optional[str] = ...) -> None: ...
