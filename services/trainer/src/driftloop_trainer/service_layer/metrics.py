"""The trainer's Prometheus metrics: finished jobs by outcome, and how long they ran."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from prometheus_client import Counter, Histogram

JOBS_FINISHED = Counter(
    "driftloop_trainer_jobs_finished_total",
    "Training jobs finished, by model and status (completed, failed), and whether promoted.",
    ["model", "status", "promoted"],
)
JOB_SECONDS = Histogram(
    "driftloop_trainer_job_duration_seconds",
    "Seconds from a job's start to its outcome (training, evaluation and promotion).",
    ["model", "status"],
    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200),
)


def record_finished(job: Mapping[str, Any]) -> None:
    """Count one finished job and observe its duration (when it has both times)."""
    model, status = str(job["model_name"]), str(job["status"])
    JOBS_FINISHED.labels(model, status, str(bool(job.get("promoted"))).lower()).inc()
    started, finished = _when(job.get("started_at")), _when(job.get("finished_at"))
    if started is None or finished is None:
        return
    try:
        seconds = (finished - started).total_seconds()
    except TypeError:  # one naive, one aware: no duration rather than a failed job
        return
    JOB_SECONDS.labels(model, status).observe(max(seconds, 0.0))


def _when(value: object) -> datetime | None:
    """A job's time as the store gives it (ISO text, or a datetime), None if absent."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and value:
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    return None
