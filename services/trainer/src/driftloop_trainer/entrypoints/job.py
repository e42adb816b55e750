"""The job process's main: ``python -m driftloop_trainer.entrypoints.job [context.json]``.

Not part of the service's process: the trainer's executors start it, one process per
job. It loads the job context (a file, or ``DRIFTLOOP_TRAINER_JOB`` in a Kubernetes
pod), calls the spec's entry point ``module:function`` with a
:class:`~driftloop_trainer.domain.jobs.JobContext`, and writes what it returned, or
where and why it failed, as ``result.json`` in the job's folder and as the last line
of its output (``DRIFTLOOP_RESULT {...}``); a job run by a cluster also posts it to
the trainer (``DRIFTLOOP_TRAINER_REPORT_URL``).

A job of kind ``score`` calls the batch scoring entry point instead
(:data:`~driftloop_trainer.domain.jobs.SCORE_ENTRY_POINT`), which returns what it did as
JSON, kept as the job's ``result``.

An entry point returns a :class:`~driftloop_trainer.domain.jobs.TrainingOutput` and
raises :class:`~driftloop_trainer.domain.jobs.StageFailed` to say in which stage it
failed; any other exception counts as a failure of the training stage.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import traceback
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from driftloop_kit.retry import REPORT, GaveUp
from driftloop_trainer.domain.jobs import (
    CONTEXT_ENV,
    PARENT_ENV,
    REPORT_URL_ENV,
    RESULT_FILE,
    RESULT_PREFIX,
    JobContext,
    JobKind,
    Stage,
    StageFailed,
    TrainingOutput,
)

__all__ = [
    "die_with_parent",
    "load_entry_point",
    "main",
    "report",
    "run",
    "wait_for_job",
    "warm_up",
]

#: prctl(2) option: the signal this process gets when its parent dies (Linux).
_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """End with the trainer that started this local job, even when it was killed with
    SIGKILL (Linux ``PR_SET_PDEATHSIG``): its job is failed by the lease rule then, and
    no orphan goes on training and registering a version that no gate judges. Nothing
    happens without :data:`PARENT_ENV` (a Kubernetes pod outlives the trainer) or off Linux.
    """
    parent = os.environ.get(PARENT_ENV, "")
    if not parent.isdigit() or not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL))
    if os.getppid() != int(parent):  # the trainer was gone before the prctl
        os._exit(1)


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
        output: Any = function(context)
        if context.kind == JobKind.SCORE:
            # A scoring entry point returns what it did, as JSON (rows, output ...).
            return {"ok": True, "result": dict(output)}
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
            # A scoring that failed failed on its data (the message names column and row).
            "stage": Stage.DATA.value if context.kind == JobKind.SCORE else Stage.TRAINING.value,
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
    die_with_parent()
    if args and args[0] == "--warm":
        warm_up(args[1:])
        waited = wait_for_job()
        if waited is None:
            return 0
        args = waited
    raw = Path(args[0]).read_text() if args else os.environ[CONTEXT_ENV]
    context = JobContext.from_json(json.loads(raw))
    if context.token:
        # The mlflow client sends it as 'Authorization: Bearer' to tracking and the registry.
        os.environ["MLFLOW_TRACKING_TOKEN"] = context.token
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
        report(report_url, context.job_id, outcome, token=context.token)
    return 0 if outcome["ok"] else 1


class ServerError(Exception):
    """The trainer answered 5xx: worth another try."""


def report(base_url: str, job_id: str, outcome: dict[str, Any], *, token: str = "") -> None:
    """Send the outcome to the trainer (a job run by a cluster).

    Retried on connection errors and 5xx answers by the :data:`~driftloop_kit.retry.REPORT`
    schedule; a 4xx answer is final (the trainer refused it, another try would too).
    """
    import httpx

    url = f"{base_url.rstrip('/')}/jobs/{job_id}/result"

    def post() -> int:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = httpx.post(url, json=outcome, headers=headers, timeout=30)
        if response.status_code >= 500:
            raise ServerError(f"answered {response.status_code}")
        return response.status_code

    def say(error: BaseException, attempt: int) -> None:
        print(f"reporting to {url} failed (attempt {attempt}): {error}", flush=True)

    try:
        status = REPORT.call_sync(post, on_retry=say)
    except GaveUp as gave_up:
        print(f"reporting to {url} {gave_up}", flush=True)
        return
    print(f"reported to {url}: {status}", flush=True)


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # The outcome is written and reported: skip the interpreter's teardown of pandas,
    # scikit-learn and mlflow (one to several seconds on a busy machine), which the
    # trainer would otherwise wait for before it goes on with the loop.
    os._exit(code)
