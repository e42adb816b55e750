"""MLflow's run endpoints: lifecycle, logging, metric history, inputs."""

from __future__ import annotations

import base64
from typing import Annotated, Any

from fastapi import APIRouter, Response
from pydantic import Field, model_validator

from driftloop_kit.auth import READER, WRITER
from driftloop_kit.errors import InvalidInput
from driftloop_kit.responses import MlflowJSONResponse
from driftloop_tracking.domain.model import (
    DatasetInput,
    LifecycleStage,
    Metric,
    Model,
    ModelInput,
    Param,
    RunStatus,
    Tag,
)
from driftloop_tracking.entrypoints.deps import RunsDep
from driftloop_tracking.entrypoints.responses import json_response

router = APIRouter(
    prefix="/api/2.0/mlflow", tags=["runs"], default_response_class=MlflowJSONResponse
)

MAX_HISTORY_PAGE = 25_000


class RunRef(Model):
    """MLflow accepts ``run_id`` or the older ``run_uuid``."""

    run_id: str = ""
    run_uuid: str = ""

    @model_validator(mode="after")
    def _one_id(self) -> RunRef:
        if not self.run_id:
            self.run_id = self.run_uuid
        if not self.run_id:
            raise ValueError("run_id is required")
        return self


#: Run times are milliseconds since the epoch (MLflow's unit), up to the year 9999.
RunTime = Annotated[int, Field(ge=0, le=253_402_300_799_999)]


class CreateRun(Model):
    experiment_id: str = "0"
    user_id: str = ""
    start_time: RunTime | None = None
    run_name: str | None = None
    tags: list[Tag] = Field(default_factory=list)


class UpdateRun(RunRef):
    status: RunStatus | None = None
    end_time: RunTime | None = None
    run_name: str | None = None


class LogMetric(RunRef, Metric):
    pass


class LogParam(RunRef, Param):
    pass


class SetTag(RunRef, Tag):
    pass


class DeleteTag(RunRef):
    key: str


class LogBatch(RunRef):
    metrics: list[Metric] = Field(default_factory=list)
    params: list[Param] = Field(default_factory=list)
    tags: list[Tag] = Field(default_factory=list)


class LogInputs(RunRef):
    datasets: list[DatasetInput] = Field(default_factory=list)
    models: list[ModelInput] = Field(default_factory=list)


@router.post("/runs/create", dependencies=[WRITER])
async def create_run(body: CreateRun, runs: RunsDep) -> Response:
    """Start a run; publishes ``run.created``."""
    run = await runs.create(
        experiment_id=body.experiment_id,
        user_id=body.user_id,
        start_time=body.start_time,
        run_name=body.run_name,
        tags_=body.tags,
    )
    return json_response({"run": run})


@router.get("/runs/get", dependencies=[READER])
async def get_run(*, runs: RunsDep, run_id: str = "", run_uuid: str = "") -> Response:
    """A run with its latest metrics, params, tags and inputs."""
    if not (run_id or run_uuid):
        raise InvalidInput("Missing value for required parameter 'run_id'.")
    # Read straight into MLflow's JSON form, as a search page is.
    return json_response({"run": await runs.get_json(run_id or run_uuid)})


@router.post("/runs/update", dependencies=[WRITER])
async def update_run(body: UpdateRun, runs: RunsDep) -> Response:
    """Set status, end time or name; ending a run publishes ``run.finished``."""
    info = await runs.update(
        run_id=body.run_id, status=body.status, end_time=body.end_time, run_name=body.run_name
    )
    return json_response({"run_info": info})


@router.post("/runs/delete", dependencies=[WRITER])
async def delete_run(body: RunRef, runs: RunsDep) -> Response:
    """Soft-delete a run."""
    await runs.set_lifecycle(run_id=body.run_id, stage=LifecycleStage.DELETED)
    return json_response()


@router.post("/runs/restore", dependencies=[WRITER])
async def restore_run(body: RunRef, runs: RunsDep) -> Response:
    """Restore a deleted run."""
    await runs.set_lifecycle(run_id=body.run_id, stage=LifecycleStage.ACTIVE)
    return json_response()


@router.post("/runs/log-metric", dependencies=[WRITER])
async def log_metric(body: LogMetric, runs: RunsDep) -> Response:
    """Log one metric value."""
    metric = Metric(key=body.key, value=body.value, timestamp=body.timestamp, step=body.step)
    await runs.log_metric(run_id=body.run_id, metric=metric)
    return json_response()


@router.post("/runs/log-parameter", dependencies=[WRITER])
async def log_param(body: LogParam, runs: RunsDep) -> Response:
    """Log a parameter; logging it again with another value is a 400."""
    await runs.log_batch(run_id=body.run_id, params_=[Param(key=body.key, value=body.value)])
    return json_response()


@router.post("/runs/set-tag", dependencies=[WRITER])
async def set_tag(body: SetTag, runs: RunsDep) -> Response:
    """Set (or overwrite) a run tag."""
    await runs.log_batch(run_id=body.run_id, tags_=[Tag(key=body.key, value=body.value)])
    return json_response()


@router.post("/runs/delete-tag", dependencies=[WRITER])
async def delete_tag(body: DeleteTag, runs: RunsDep) -> Response:
    """Remove a run tag."""
    await runs.delete_tag(run_id=body.run_id, key=body.key)
    return json_response()


@router.post("/runs/log-batch", dependencies=[WRITER])
async def log_batch(body: LogBatch, runs: RunsDep) -> Response:
    """Log up to 1000 metrics, 100 params and 100 tags at once, atomically."""
    await runs.log_batch(
        run_id=body.run_id, metrics_=body.metrics, params_=body.params, tags_=body.tags
    )
    return json_response()


@router.post("/runs/log-inputs", dependencies=[WRITER])
async def log_inputs(body: LogInputs, runs: RunsDep) -> Response:
    """Record the datasets (with digest, source, schema) a run used."""
    await runs.log_inputs(run_id=body.run_id, inputs=body.datasets, models=body.models)
    return json_response()


@router.get("/metrics/get-history", dependencies=[READER])
async def get_metric_history(
    *,
    runs: RunsDep,
    metric_key: str,
    run_id: str = "",
    run_uuid: str = "",
    max_results: int | None = None,
    page_token: str | None = None,
) -> dict[str, Any]:
    """Every value of a metric, by step; paginated when ``max_results`` is given."""
    if not (run_id or run_uuid):
        raise InvalidInput("Missing value for required parameter 'run_id'.")
    if max_results is not None and not 1 <= max_results <= MAX_HISTORY_PAGE:
        raise InvalidInput(f"max_results must be between 1 and {MAX_HISTORY_PAGE}.")
    offset = _offset(page_token)
    page = await runs.metric_history(
        run_id=run_id or run_uuid,
        key=metric_key,
        max_results=None if max_results is None else max_results + 1,
        offset=offset,
    )
    response: dict[str, Any] = {"metrics": page}
    if max_results is not None and len(page) > max_results:
        response["metrics"] = page[:max_results]
        response["next_page_token"] = _token(offset + max_results)
    return response


def _token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode()


def _offset(token: str | None) -> int:
    if not token:
        return 0
    try:
        kind, value = base64.urlsafe_b64decode(token.encode()).decode().split(":", 1)
        if kind != "offset" or int(value) < 0:
            raise ValueError(kind)
        return int(value)
    except ValueError:
        raise InvalidInput(f"Invalid page token: {token!r}") from None
