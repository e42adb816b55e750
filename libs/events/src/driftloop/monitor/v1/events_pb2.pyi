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

class ColumnType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    COLUMN_TYPE_UNSPECIFIED: _ClassVar[ColumnType]
    COLUMN_TYPE_NUMERICAL: _ClassVar[ColumnType]
    COLUMN_TYPE_CATEGORICAL: _ClassVar[ColumnType]
    COLUMN_TYPE_TEXT: _ClassVar[ColumnType]
    COLUMN_TYPE_DATETIME: _ClassVar[ColumnType]
COLUMN_TYPE_UNSPECIFIED: ColumnType
COLUMN_TYPE_NUMERICAL: ColumnType
COLUMN_TYPE_CATEGORICAL: ColumnType
COLUMN_TYPE_TEXT: ColumnType
COLUMN_TYPE_DATETIME: ColumnType

class LabelRecorded(_message.Message):
    __slots__ = ("request_id", "model_name", "ground_truth", "event_time", "entity_keys")
    class EntityKeysEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _common_pb2.Value
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_common_pb2.Value, _Mapping]] = ...) -> None: ...
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    GROUND_TRUTH_FIELD_NUMBER: _ClassVar[int]
    EVENT_TIME_FIELD_NUMBER: _ClassVar[int]
    ENTITY_KEYS_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    model_name: str
    ground_truth: _common_pb2.Value
    event_time: _timestamp_pb2.Timestamp
    entity_keys: _containers.MessageMap[str, _common_pb2.Value]
    def __init__(self, request_id: _Optional[str] = ..., model_name: _Optional[str] = ..., ground_truth: _Optional[_Union[_common_pb2.Value, _Mapping]] = ..., event_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., entity_keys: _Optional[_Mapping[str, _common_pb2.Value]] = ...) -> None: ...

class ColumnDrift(_message.Message):
    __slots__ = ("column", "column_type", "stattest", "score", "threshold", "drifted")
    COLUMN_FIELD_NUMBER: _ClassVar[int]
    COLUMN_TYPE_FIELD_NUMBER: _ClassVar[int]
    STATTEST_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    DRIFTED_FIELD_NUMBER: _ClassVar[int]
    column: str
    column_type: ColumnType
    stattest: str
    score: float
    threshold: float
    drifted: bool
    def __init__(self, column: _Optional[str] = ..., column_type: _Optional[_Union[ColumnType, str]] = ..., stattest: _Optional[str] = ..., score: _Optional[float] = ..., threshold: _Optional[float] = ..., drifted: _Optional[bool] = ...) -> None: ...

class DriftDetected(_message.Message):
    __slots__ = ("model", "window", "columns", "drift_share", "dataset_drift_threshold", "report_id", "report_url", "detect_time", "reference_digest", "episode_id")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    COLUMNS_FIELD_NUMBER: _ClassVar[int]
    DRIFT_SHARE_FIELD_NUMBER: _ClassVar[int]
    DATASET_DRIFT_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    REPORT_ID_FIELD_NUMBER: _ClassVar[int]
    REPORT_URL_FIELD_NUMBER: _ClassVar[int]
    DETECT_TIME_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_DIGEST_FIELD_NUMBER: _ClassVar[int]
    EPISODE_ID_FIELD_NUMBER: _ClassVar[int]
    model: _common_pb2.ModelRef
    window: _common_pb2.Window
    columns: _containers.RepeatedCompositeFieldContainer[ColumnDrift]
    drift_share: float
    dataset_drift_threshold: float
    report_id: str
    report_url: str
    detect_time: _timestamp_pb2.Timestamp
    reference_digest: str
    episode_id: str
    def __init__(self, model: _Optional[_Union[_common_pb2.ModelRef, _Mapping]] = ..., window: _Optional[_Union[_common_pb2.Window, _Mapping]] = ..., columns: _Optional[_Iterable[_Union[ColumnDrift, _Mapping]]] = ..., drift_share: _Optional[float] = ..., dataset_drift_threshold: _Optional[float] = ..., report_id: _Optional[str] = ..., report_url: _Optional[str] = ..., detect_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., reference_digest: _Optional[str] = ..., episode_id: _Optional[str] = ...) -> None: ...

class DriftCleared(_message.Message):
    __slots__ = ("model", "window", "drift_share", "dataset_drift_threshold", "report_id", "report_url", "clear_time", "cleared_event", "episode_id")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    DRIFT_SHARE_FIELD_NUMBER: _ClassVar[int]
    DATASET_DRIFT_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    REPORT_ID_FIELD_NUMBER: _ClassVar[int]
    REPORT_URL_FIELD_NUMBER: _ClassVar[int]
    CLEAR_TIME_FIELD_NUMBER: _ClassVar[int]
    CLEARED_EVENT_FIELD_NUMBER: _ClassVar[int]
    EPISODE_ID_FIELD_NUMBER: _ClassVar[int]
    model: _common_pb2.ModelRef
    window: _common_pb2.Window
    drift_share: float
    dataset_drift_threshold: float
    report_id: str
    report_url: str
    clear_time: _timestamp_pb2.Timestamp
    cleared_event: _common_pb2.EventRef
    episode_id: str
    def __init__(self, model: _Optional[_Union[_common_pb2.ModelRef, _Mapping]] = ..., window: _Optional[_Union[_common_pb2.Window, _Mapping]] = ..., drift_share: _Optional[float] = ..., dataset_drift_threshold: _Optional[float] = ..., report_id: _Optional[str] = ..., report_url: _Optional[str] = ..., clear_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., cleared_event: _Optional[_Union[_common_pb2.EventRef, _Mapping]] = ..., episode_id: _Optional[str] = ...) -> None: ...

class PerformanceDegraded(_message.Message):
    __slots__ = ("model", "metric", "value", "threshold", "higher_is_better", "window", "labelled_rows", "report_id", "report_url", "detect_time", "episode_id")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    METRIC_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    HIGHER_IS_BETTER_FIELD_NUMBER: _ClassVar[int]
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    LABELLED_ROWS_FIELD_NUMBER: _ClassVar[int]
    REPORT_ID_FIELD_NUMBER: _ClassVar[int]
    REPORT_URL_FIELD_NUMBER: _ClassVar[int]
    DETECT_TIME_FIELD_NUMBER: _ClassVar[int]
    EPISODE_ID_FIELD_NUMBER: _ClassVar[int]
    model: _common_pb2.ModelRef
    metric: str
    value: float
    threshold: float
    higher_is_better: bool
    window: _common_pb2.Window
    labelled_rows: int
    report_id: str
    report_url: str
    detect_time: _timestamp_pb2.Timestamp
    episode_id: str
    def __init__(self, model: _Optional[_Union[_common_pb2.ModelRef, _Mapping]] = ..., metric: _Optional[str] = ..., value: _Optional[float] = ..., threshold: _Optional[float] = ..., higher_is_better: _Optional[bool] = ..., window: _Optional[_Union[_common_pb2.Window, _Mapping]] = ..., labelled_rows: _Optional[int] = ..., report_id: _Optional[str] = ..., report_url: _Optional[str] = ..., detect_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., episode_id: _Optional[str] = ...) -> None: ...

class PerformanceRecovered(_message.Message):
    __slots__ = ("model", "metric", "value", "threshold", "higher_is_better", "window", "labelled_rows", "recover_time", "episode_id")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    METRIC_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    HIGHER_IS_BETTER_FIELD_NUMBER: _ClassVar[int]
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    LABELLED_ROWS_FIELD_NUMBER: _ClassVar[int]
    RECOVER_TIME_FIELD_NUMBER: _ClassVar[int]
    EPISODE_ID_FIELD_NUMBER: _ClassVar[int]
    model: _common_pb2.ModelRef
    metric: str
    value: float
    threshold: float
    higher_is_better: bool
    window: _common_pb2.Window
    labelled_rows: int
    recover_time: _timestamp_pb2.Timestamp
    episode_id: str
    def __init__(self, model: _Optional[_Union[_common_pb2.ModelRef, _Mapping]] = ..., metric: _Optional[str] = ..., value: _Optional[float] = ..., threshold: _Optional[float] = ..., higher_is_better: _Optional[bool] = ..., window: _Optional[_Union[_common_pb2.Window, _Mapping]] = ..., labelled_rows: _Optional[int] = ..., recover_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., episode_id: _Optional[str] = ...) -> None: ...
