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

class TriggerKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TRIGGER_KIND_UNSPECIFIED: _ClassVar[TriggerKind]
    TRIGGER_KIND_DRIFT: _ClassVar[TriggerKind]
    TRIGGER_KIND_PERFORMANCE: _ClassVar[TriggerKind]
    TRIGGER_KIND_NEW_DATA: _ClassVar[TriggerKind]
    TRIGGER_KIND_SCHEDULE: _ClassVar[TriggerKind]
    TRIGGER_KIND_MANUAL: _ClassVar[TriggerKind]

class TrainingStage(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TRAINING_STAGE_UNSPECIFIED: _ClassVar[TrainingStage]
    TRAINING_STAGE_SETUP: _ClassVar[TrainingStage]
    TRAINING_STAGE_DATA: _ClassVar[TrainingStage]
    TRAINING_STAGE_TRAINING: _ClassVar[TrainingStage]
    TRAINING_STAGE_REGISTRATION: _ClassVar[TrainingStage]
    TRAINING_STAGE_EVALUATION: _ClassVar[TrainingStage]
    TRAINING_STAGE_PROMOTION: _ClassVar[TrainingStage]
TRIGGER_KIND_UNSPECIFIED: TriggerKind
TRIGGER_KIND_DRIFT: TriggerKind
TRIGGER_KIND_PERFORMANCE: TriggerKind
TRIGGER_KIND_NEW_DATA: TriggerKind
TRIGGER_KIND_SCHEDULE: TriggerKind
TRIGGER_KIND_MANUAL: TriggerKind
TRAINING_STAGE_UNSPECIFIED: TrainingStage
TRAINING_STAGE_SETUP: TrainingStage
TRAINING_STAGE_DATA: TrainingStage
TRAINING_STAGE_TRAINING: TrainingStage
TRAINING_STAGE_REGISTRATION: TrainingStage
TRAINING_STAGE_EVALUATION: TrainingStage
TRAINING_STAGE_PROMOTION: TrainingStage

class Trigger(_message.Message):
    __slots__ = ("kind", "event", "reason", "episode_id")
    KIND_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    EPISODE_ID_FIELD_NUMBER: _ClassVar[int]
    kind: TriggerKind
    event: _common_pb2.EventRef
    reason: str
    episode_id: str
    def __init__(self, kind: _Optional[_Union[TriggerKind, str]] = ..., event: _Optional[_Union[_common_pb2.EventRef, _Mapping]] = ..., reason: _Optional[str] = ..., episode_id: _Optional[str] = ...) -> None: ...

class Guardrail(_message.Message):
    __slots__ = ("name", "metric", "value", "threshold", "passed")
    NAME_FIELD_NUMBER: _ClassVar[int]
    METRIC_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    PASSED_FIELD_NUMBER: _ClassVar[int]
    name: str
    metric: str
    value: float
    threshold: float
    passed: bool
    def __init__(self, name: _Optional[str] = ..., metric: _Optional[str] = ..., value: _Optional[float] = ..., threshold: _Optional[float] = ..., passed: _Optional[bool] = ...) -> None: ...

class EvaluationResult(_message.Message):
    __slots__ = ("passed", "metric", "challenger_score", "champion_score", "higher_is_better", "guardrails", "champion_version", "evaluation_rows", "scored_by", "holdout_start", "holdout_end", "reason", "reported_metrics")
    class ReportedMetricsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    PASSED_FIELD_NUMBER: _ClassVar[int]
    METRIC_FIELD_NUMBER: _ClassVar[int]
    CHALLENGER_SCORE_FIELD_NUMBER: _ClassVar[int]
    CHAMPION_SCORE_FIELD_NUMBER: _ClassVar[int]
    HIGHER_IS_BETTER_FIELD_NUMBER: _ClassVar[int]
    GUARDRAILS_FIELD_NUMBER: _ClassVar[int]
    CHAMPION_VERSION_FIELD_NUMBER: _ClassVar[int]
    EVALUATION_ROWS_FIELD_NUMBER: _ClassVar[int]
    SCORED_BY_FIELD_NUMBER: _ClassVar[int]
    HOLDOUT_START_FIELD_NUMBER: _ClassVar[int]
    HOLDOUT_END_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    REPORTED_METRICS_FIELD_NUMBER: _ClassVar[int]
    passed: bool
    metric: str
    challenger_score: float
    champion_score: float
    higher_is_better: bool
    guardrails: _containers.RepeatedCompositeFieldContainer[Guardrail]
    champion_version: int
    evaluation_rows: int
    scored_by: str
    holdout_start: str
    holdout_end: str
    reason: str
    reported_metrics: _containers.ScalarMap[str, float]
    def __init__(self, passed: _Optional[bool] = ..., metric: _Optional[str] = ..., challenger_score: _Optional[float] = ..., champion_score: _Optional[float] = ..., higher_is_better: _Optional[bool] = ..., guardrails: _Optional[_Iterable[_Union[Guardrail, _Mapping]]] = ..., champion_version: _Optional[int] = ..., evaluation_rows: _Optional[int] = ..., scored_by: _Optional[str] = ..., holdout_start: _Optional[str] = ..., holdout_end: _Optional[str] = ..., reason: _Optional[str] = ..., reported_metrics: _Optional[_Mapping[str, float]] = ...) -> None: ...

class TrainingRequested(_message.Message):
    __slots__ = ("job_id", "model_name", "trigger", "parameters", "requested_by")
    class ParametersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    TRIGGER_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_BY_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    model_name: str
    trigger: Trigger
    parameters: _containers.ScalarMap[str, str]
    requested_by: str
    def __init__(self, job_id: _Optional[str] = ..., model_name: _Optional[str] = ..., trigger: _Optional[_Union[Trigger, _Mapping]] = ..., parameters: _Optional[_Mapping[str, str]] = ..., requested_by: _Optional[str] = ...) -> None: ...

class TrainingStarted(_message.Message):
    __slots__ = ("job_id", "model_name", "run_id", "attempt", "start_time")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    model_name: str
    run_id: str
    attempt: int
    start_time: _timestamp_pb2.Timestamp
    def __init__(self, job_id: _Optional[str] = ..., model_name: _Optional[str] = ..., run_id: _Optional[str] = ..., attempt: _Optional[int] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class TrainingCompleted(_message.Message):
    __slots__ = ("job_id", "model_name", "run_id", "model_version", "evaluation", "promoted", "alias", "start_time", "end_time")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    EVALUATION_FIELD_NUMBER: _ClassVar[int]
    PROMOTED_FIELD_NUMBER: _ClassVar[int]
    ALIAS_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    model_name: str
    run_id: str
    model_version: int
    evaluation: EvaluationResult
    promoted: bool
    alias: str
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    def __init__(self, job_id: _Optional[str] = ..., model_name: _Optional[str] = ..., run_id: _Optional[str] = ..., model_version: _Optional[int] = ..., evaluation: _Optional[_Union[EvaluationResult, _Mapping]] = ..., promoted: _Optional[bool] = ..., alias: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class TrainingFailed(_message.Message):
    __slots__ = ("job_id", "model_name", "run_id", "stage", "error", "error_type", "attempt", "will_retry", "fail_time")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    STAGE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    ERROR_TYPE_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    WILL_RETRY_FIELD_NUMBER: _ClassVar[int]
    FAIL_TIME_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    model_name: str
    run_id: str
    stage: TrainingStage
    error: str
    error_type: str
    attempt: int
    will_retry: bool
    fail_time: _timestamp_pb2.Timestamp
    def __init__(self, job_id: _Optional[str] = ..., model_name: _Optional[str] = ..., run_id: _Optional[str] = ..., stage: _Optional[_Union[TrainingStage, str]] = ..., error: _Optional[str] = ..., error_type: _Optional[str] = ..., attempt: _Optional[int] = ..., will_retry: _Optional[bool] = ..., fail_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class TrainingEscalated(_message.Message):
    __slots__ = ("model_name", "episode_id", "reason", "rule", "job_ids", "evidence", "escalate_time")
    class EvidenceEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    EPISODE_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    JOB_IDS_FIELD_NUMBER: _ClassVar[int]
    EVIDENCE_FIELD_NUMBER: _ClassVar[int]
    ESCALATE_TIME_FIELD_NUMBER: _ClassVar[int]
    model_name: str
    episode_id: str
    reason: str
    rule: str
    job_ids: _containers.RepeatedScalarFieldContainer[str]
    evidence: _containers.ScalarMap[str, str]
    escalate_time: _timestamp_pb2.Timestamp
    def __init__(self, model_name: _Optional[str] = ..., episode_id: _Optional[str] = ..., reason: _Optional[str] = ..., rule: _Optional[str] = ..., job_ids: _Optional[_Iterable[str]] = ..., evidence: _Optional[_Mapping[str, str]] = ..., escalate_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ModelDeclared(_message.Message):
    __slots__ = ("model_name", "revision", "document_json", "digest", "applied_by", "apply_time")
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_JSON_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    APPLIED_BY_FIELD_NUMBER: _ClassVar[int]
    APPLY_TIME_FIELD_NUMBER: _ClassVar[int]
    model_name: str
    revision: int
    document_json: str
    digest: str
    applied_by: str
    apply_time: _timestamp_pb2.Timestamp
    def __init__(self, model_name: _Optional[str] = ..., revision: _Optional[int] = ..., document_json: _Optional[str] = ..., digest: _Optional[str] = ..., applied_by: _Optional[str] = ..., apply_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
