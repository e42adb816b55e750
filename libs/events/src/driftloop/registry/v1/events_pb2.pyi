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

class ModelVersionStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MODEL_VERSION_STATUS_UNSPECIFIED: _ClassVar[ModelVersionStatus]
    MODEL_VERSION_STATUS_PENDING_REGISTRATION: _ClassVar[ModelVersionStatus]
    MODEL_VERSION_STATUS_FAILED_REGISTRATION: _ClassVar[ModelVersionStatus]
    MODEL_VERSION_STATUS_READY: _ClassVar[ModelVersionStatus]

class ModelVersionField(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MODEL_VERSION_FIELD_UNSPECIFIED: _ClassVar[ModelVersionField]
    MODEL_VERSION_FIELD_DESCRIPTION: _ClassVar[ModelVersionField]
    MODEL_VERSION_FIELD_STATUS: _ClassVar[ModelVersionField]
    MODEL_VERSION_FIELD_TAGS: _ClassVar[ModelVersionField]
MODEL_VERSION_STATUS_UNSPECIFIED: ModelVersionStatus
MODEL_VERSION_STATUS_PENDING_REGISTRATION: ModelVersionStatus
MODEL_VERSION_STATUS_FAILED_REGISTRATION: ModelVersionStatus
MODEL_VERSION_STATUS_READY: ModelVersionStatus
MODEL_VERSION_FIELD_UNSPECIFIED: ModelVersionField
MODEL_VERSION_FIELD_DESCRIPTION: ModelVersionField
MODEL_VERSION_FIELD_STATUS: ModelVersionField
MODEL_VERSION_FIELD_TAGS: ModelVersionField

class Lineage(_message.Message):
    __slots__ = ("feature_views", "dataset_digests", "triggering_event", "training_job_id")
    FEATURE_VIEWS_FIELD_NUMBER: _ClassVar[int]
    DATASET_DIGESTS_FIELD_NUMBER: _ClassVar[int]
    TRIGGERING_EVENT_FIELD_NUMBER: _ClassVar[int]
    TRAINING_JOB_ID_FIELD_NUMBER: _ClassVar[int]
    feature_views: _containers.RepeatedScalarFieldContainer[str]
    dataset_digests: _containers.RepeatedScalarFieldContainer[str]
    triggering_event: _common_pb2.EventRef
    training_job_id: str
    def __init__(self, feature_views: _Optional[_Iterable[str]] = ..., dataset_digests: _Optional[_Iterable[str]] = ..., triggering_event: _Optional[_Union[_common_pb2.EventRef, _Mapping]] = ..., training_job_id: _Optional[str] = ...) -> None: ...

class ModelVersionCreated(_message.Message):
    __slots__ = ("name", "version", "source", "run_id", "tags", "description", "status", "create_time", "artifact_checksums", "lineage", "user_id")
    class TagsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class ArtifactChecksumsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    ARTIFACT_CHECKSUMS_FIELD_NUMBER: _ClassVar[int]
    LINEAGE_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: int
    source: str
    run_id: str
    tags: _containers.ScalarMap[str, str]
    description: str
    status: ModelVersionStatus
    create_time: _timestamp_pb2.Timestamp
    artifact_checksums: _containers.ScalarMap[str, str]
    lineage: Lineage
    user_id: str
    def __init__(self, name: _Optional[str] = ..., version: _Optional[int] = ..., source: _Optional[str] = ..., run_id: _Optional[str] = ..., tags: _Optional[_Mapping[str, str]] = ..., description: _Optional[str] = ..., status: _Optional[_Union[ModelVersionStatus, str]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., artifact_checksums: _Optional[_Mapping[str, str]] = ..., lineage: _Optional[_Union[Lineage, _Mapping]] = ..., user_id: _Optional[str] = ...) -> None: ...

class ModelVersionUpdated(_message.Message):
    __slots__ = ("name", "version", "changed_fields", "description", "status", "tags", "update_time", "user_id")
    class TagsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CHANGED_FIELDS_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: int
    changed_fields: _containers.RepeatedScalarFieldContainer[ModelVersionField]
    description: str
    status: ModelVersionStatus
    tags: _containers.ScalarMap[str, str]
    update_time: _timestamp_pb2.Timestamp
    user_id: str
    def __init__(self, name: _Optional[str] = ..., version: _Optional[int] = ..., changed_fields: _Optional[_Iterable[_Union[ModelVersionField, str]]] = ..., description: _Optional[str] = ..., status: _Optional[_Union[ModelVersionStatus, str]] = ..., tags: _Optional[_Mapping[str, str]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., user_id: _Optional[str] = ...) -> None: ...

class AliasSet(_message.Message):
    __slots__ = ("name", "alias", "version", "previous_version", "run_id", "source", "set_time", "cause", "user_id")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ALIAS_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_VERSION_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    SET_TIME_FIELD_NUMBER: _ClassVar[int]
    CAUSE_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    name: str
    alias: str
    version: int
    previous_version: int
    run_id: str
    source: str
    set_time: _timestamp_pb2.Timestamp
    cause: _common_pb2.EventRef
    user_id: str
    def __init__(self, name: _Optional[str] = ..., alias: _Optional[str] = ..., version: _Optional[int] = ..., previous_version: _Optional[int] = ..., run_id: _Optional[str] = ..., source: _Optional[str] = ..., set_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., cause: _Optional[_Union[_common_pb2.EventRef, _Mapping]] = ..., user_id: _Optional[str] = ...) -> None: ...

class AliasDeleted(_message.Message):
    __slots__ = ("name", "alias", "version", "delete_time", "user_id")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ALIAS_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    DELETE_TIME_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    name: str
    alias: str
    version: int
    delete_time: _timestamp_pb2.Timestamp
    user_id: str
    def __init__(self, name: _Optional[str] = ..., alias: _Optional[str] = ..., version: _Optional[int] = ..., delete_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., user_id: _Optional[str] = ...) -> None: ...
