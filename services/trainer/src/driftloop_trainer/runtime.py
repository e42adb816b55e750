"""The job side: ``python -m driftloop_trainer.runtime [context.json]``.

Loads the job context (a file, or ``DRIFTLOOP_TRAINER_JOB`` in a Kubernetes pod),
calls the spec's entry point ``module:function`` with a :class:`JobContext`, and
writes what it returned, or where and why it failed, as ``result.json`` in the
job's folder and as the last line of its output (``DRIFTLOOP_RESULT {...}``).

An entry point returns a :class:`TrainingOutput` and raises :class:`StageFailed`
to say in which stage it failed; any other exception counts as a failure of the
training stage.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import traceback
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from driftloop_trainer.domain.jobs import JobSpec, Stage

RESULT_FILE = "result.json"
CONTEXT_FILE = "context.json"
RESULT_PREFIX = "DRIFTLOOP_RESULT "
CONTEXT_ENV = "DRIFTLOOP_TRAINER_JOB"
REPORT_URL_ENV = "DRIFTLOOP_TRAINER_REPORT_URL"


class StageFailed(Exception):
    """A job failed in ``stage``."""

    def __init__(self, stage: Stage, message: str, *, error_type: str = "") -> None:
        super().__init__(message)
        self.stage = stage
        self.error_type = error_type or type(self).__name__


@dataclass(frozen=True)
class JobContext:
    """What an entry point gets: the job, its spec, where the services are.

    Attributes:
        job_id: The trainer's job id.
        model_name: Registered model to train.
        parameters: Training parameters (the spec's, overridden by the trigger's).
        spec: The model's job spec.
        trigger: ``kind``, ``reason``, ``event_id``, ``event_type``, ``event_source``.
        tracking_url: Tracking service (MLflow tracking URI).
        registry_url: Registry service (MLflow registry URI).
        features_url: Features service.
        experiment_name: Tracking experiment of the run.
        work_dir: The job's folder (context, logs, result, scratch files).
    """

    job_id: str
    model_name: str
    parameters: Mapping[str, str]
    spec: JobSpec
    trigger: Mapping[str, str]
    tracking_url: str
    registry_url: str
    features_url: str
    experiment_name: str
    work_dir: str

    def to_json(self) -> dict[str, Any]:
        """The context as JSON (a file or an environment variable)."""
        found = asdict(self)
        found["spec"] = self.spec.model_dump(mode="json")
        found["parameters"] = dict(self.parameters)
        found["trigger"] = dict(self.trigger)
        return found

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> JobContext:
        """Read a context back."""
        values = dict(data)
        values["spec"] = JobSpec.model_validate(values["spec"])
        return cls(**values)


@dataclass
class TrainingOutput:
    """What an entry point returns.

    Attributes:
        run_id: The tracking run it logged to.
        model_version: The version it registered (the challenger).
        metrics: The challenger's scores on the evaluation data.
        champion_metrics: The champion's scores on the same data (None without champion).
        champion_version: The champion it was compared with.
        evaluation_rows: Labelled rows scored.
    """

    run_id: str
    model_version: int
    metrics: dict[str, float]
    champion_metrics: dict[str, float] | None = None
    champion_version: int | None = None
    evaluation_rows: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def load_entry_point(text: str) -> Callable[[JobContext], TrainingOutput]:
    """Import ``module:function``."""
    module_name, _, attribute = text.partition(":")
    module = importlib.import_module(module_name)
    found: Callable[[JobContext], TrainingOutput] = getattr(module, attribute)
    return found


def run(context: JobContext) -> dict[str, Any]:
    """Call the entry point; the outcome as ``{"ok": ..., ...}``."""
    try:
        try:
            function = load_entry_point(context.spec.entry_point)
        except (ImportError, AttributeError) as error:
            raise StageFailed(
                Stage.SETUP,
                f"entry point {context.spec.entry_point!r} cannot be loaded: {error}",
                error_type=type(error).__name__,
            ) from error
        output = function(context)
        return {"ok": True, **asdict(output)}
    except StageFailed as failed:
        traceback.print_exc()
        return {
            "ok": False,
            "stage": failed.stage.value,
            "error": str(failed),
            "error_type": failed.error_type,
        }
    except Exception as error:
        traceback.print_exc()
        return {
            "ok": False,
            "stage": Stage.TRAINING.value,
            "error": f"{error}",
            "error_type": type(error).__name__,
        }


def warm_up(entry_points: list[str]) -> None:
    """Import the entry points' modules and what they list in ``WARM_UP`` (best effort)."""
    for text in entry_points:
        try:
            module = importlib.import_module(text.partition(":")[0])
            for name in getattr(module, "WARM_UP", ()):
                importlib.import_module(name)
        except Exception as error:
            print(f"warm-up of {text!r} failed: {error}", file=sys.stderr, flush=True)


def wait_for_job() -> list[str] | None:
    """A warm process: wait for ``{"context": path, "log": path}`` on stdin, then become the job.

    Returns:
        The arguments of :func:`main`, or None when stdin closed (the service stopped).
    """
    line = sys.stdin.readline()
    if not line.strip():
        return None
    order = json.loads(line)
    sys.stdout.flush()
    sys.stderr.flush()
    log = os.open(order["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    os.chdir(Path(order["context"]).parent)
    return [order["context"]]


def main(argv: list[str] | None = None) -> int:
    """Run one job; exit status 0 when it succeeded.

    ``--warm ENTRY_POINT...`` imports first, then waits for its job on stdin.
    """
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] == "--warm":
        warm_up(args[1:])
        waited = wait_for_job()
        if waited is None:
            return 0
        args = waited
    raw = Path(args[0]).read_text() if args else os.environ[CONTEXT_ENV]
    context = JobContext.from_json(json.loads(raw))
    outcome = run(context)
    text = json.dumps(outcome)
    if context.work_dir:
        folder = Path(context.work_dir)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / RESULT_FILE).write_text(text)
    sys.stdout.flush()
    print(RESULT_PREFIX + text, flush=True)
    report_url = os.environ.get(REPORT_URL_ENV)
    if report_url:
        report(report_url, context.job_id, outcome)
    return 0 if outcome["ok"] else 1


def report(base_url: str, job_id: str, outcome: dict[str, Any], *, attempts: int = 5) -> None:
    """Send the outcome to the trainer (a job run by a cluster), retrying a few times."""
    import time

    import httpx

    url = f"{base_url.rstrip('/')}/jobs/{job_id}/result"
    for attempt in range(1, attempts + 1):
        try:
            response = httpx.post(url, json=outcome, timeout=30)
        except httpx.HTTPError as error:
            print(f"reporting to {url} failed: {error}", flush=True)
        else:
            if response.status_code < 500:
                print(f"reported to {url}: {response.status_code}", flush=True)
                return
            print(f"reporting to {url} answered {response.status_code}", flush=True)
        time.sleep(min(2**attempt, 30))


if __name__ == "__main__":
    sys.exit(main())
