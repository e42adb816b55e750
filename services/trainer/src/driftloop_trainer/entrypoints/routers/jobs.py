"""Jobs (training, and batch scoring submitted with ``POST /jobs``) and trigger decisions:
status, logs, and results reported by a cluster."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, PlainTextResponse

from driftloop_kit.auth import DEPLOYER, JOB, READER, CallerDep
from driftloop_trainer.domain.jobs import ScoreRequest
from driftloop_trainer.entrypoints.deps import StoreDep, TrainingDep

router = APIRouter(tags=["jobs"])

Limit = Annotated[int, Query(ge=1, le=1000)]


@router.get("/jobs", dependencies=[READER])
async def list_jobs(
    store: StoreDep,
    model: str | None = None,
    status: str | None = None,
    limit: Limit = 100,
    job_id: Annotated[
        list[str] | None,
        Query(alias="id", max_length=100, description="Only these jobs (at most 100 ids)."),
    ] = None,
) -> dict[str, Any]:
    """Jobs, latest first; filter by model, status (queued, running, succeeded, failed)
    and ids (`?id=A&id=B`: many jobs in one call, as a page of versions needs)."""
    return {"jobs": await store.list_jobs(model=model, status=status, limit=limit, ids=job_id)}


@router.post("/jobs", status_code=202, dependencies=[DEPLOYER])
async def submit_job(
    body: ScoreRequest, training: TrainingDep, store: StoreDep, caller: CallerDep
) -> JSONResponse:
    """Submit a job of kind `score`: a Parquet or CSV file scored with a registered model
    (`NAME@ALIAS`, default alias champion, or `NAME/VERSION`) by the executor that runs
    training jobs, a chunk at a time, its predictions logged to the predictions topic
    (route batch) unless `log` is false. Input and output must lie under the trainer's
    `score_uris`. 202 with the job; its status, and its `result` (rows scored, records
    logged) once it succeeded, at `GET /jobs/{id}`."""
    job_id = await training.submit_score(body, by=caller.subject)
    job = await store.get_job(job_id)
    job.pop("log_path", None)
    return JSONResponse({"job": job}, status_code=202)


@router.get("/jobs/{job_id}", dependencies=[READER])
async def get_job(job_id: str, store: StoreDep) -> dict[str, Any]:
    """One job: status, trigger, run, version, evaluation, error."""
    job = await store.get_job(job_id)
    job.pop("log_path", None)
    return {"job": job}


@router.get("/jobs/{job_id}/logs", response_class=PlainTextResponse, dependencies=[READER])
async def get_logs(job_id: str, store: StoreDep, tail: Limit | None = None) -> str:
    """The job's output (the last ``tail`` lines when given)."""
    job = await store.get_job(job_id)
    path = Path(job["log_path"]) if job.get("log_path") else None
    if path is None or not path.exists():
        return ""
    text = path.read_text(errors="replace")
    return "\n".join(text.splitlines()[-tail:]) + "\n" if tail else text


@router.post("/jobs/{job_id}/cancel", dependencies=[DEPLOYER])
async def cancel_job(job_id: str, training: TrainingDep, caller: CallerDep) -> dict[str, Any]:
    """Cancel a queued or running job: it fails with error type `Cancelled` and its run
    is stopped by the executor (a local process terminated; a Kubernetes Job deleted
    with its pods, foreground propagation). `stopped` says whether a run was stopped
    (false for a local job another trainer replica runs: it runs to its end there and
    its result is refused). 404 for no such job, 409 for a finished one."""
    job, stopped = await training.cancel(job_id, by=caller.subject)
    job.pop("log_path", None)
    return {"job": job, "stopped": stopped}


@router.post("/jobs/{job_id}/result", dependencies=[JOB])
async def report_result(
    job_id: str, outcome: dict[str, Any], training: TrainingDep
) -> dict[str, Any]:
    """A job run elsewhere (a Kubernetes pod) reports its outcome, as the job process wrote it."""
    job = await training.finish(job_id, outcome)
    job.pop("log_path", None)
    return {"job": job}


@router.get("/decisions", dependencies=[READER])
async def list_decisions(
    store: StoreDep, model: str | None = None, outcome: str | None = None, limit: Limit = 100
) -> dict[str, Any]:
    """Trigger decisions, latest first: which started a job, which were suppressed and why."""
    return {"decisions": await store.list_decisions(model=model, outcome=outcome, limit=limit)}
