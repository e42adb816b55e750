"""Executors: where a job's entry point runs.

- :class:`LocalExecutor` (default): a subprocess of the service's interpreter;
  its output goes to the job's log file and its outcome is read from ``result.json``.
- :class:`KubernetesExecutor`: writes the ``batch/v1`` Job manifest to the job's
  folder for a cluster to run; the pod reports its outcome back with
  ``POST /jobs/{id}/result``.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import json
import os
from pathlib import Path
from typing import Any

import yaml

from driftloop_trainer.adapters.kubernetes import job_manifest
from driftloop_trainer.adapters.warm import WarmProcess
from driftloop_trainer.domain.jobs import CONTEXT_FILE, JOB_MODULE, RESULT_FILE, JobContext, Stage

LOG_FILE = "job.log"
MANIFEST_FILE = "job.yaml"


class Executor(abc.ABC):
    """Runs a job's entry point (the base of the use cases' ``ExecutorPort`` adapters)."""

    name: str

    def log_path(self, context: JobContext) -> Path:
        """Where the job's output goes."""
        return Path(context.work_dir) / LOG_FILE

    @abc.abstractmethod
    async def run(self, context: JobContext) -> dict[str, Any] | None:
        """Run the job to its end; its outcome, or None when it reports back later."""

    async def start(self) -> None:  # noqa: B027 - optional hook
        """Prepare for jobs (the service is starting)."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release what :meth:`start` prepared."""


def _failure(stage: Stage, error: str, error_type: str) -> dict[str, Any]:
    return {"ok": False, "stage": stage.value, "error": error, "error_type": error_type}


class LocalExecutor(Executor):
    """A subprocess per job, started ahead of time so its imports are done.

    One warm process waits (``python -m driftloop_trainer.entrypoints.job --warm``) with the
    entry points' modules imported; a job takes it and a new one starts warming for
    the next job. Importing mlflow, scikit-learn and pandas is slow, and would
    otherwise count in every retraining.

    Args:
        python: The interpreter.
        entry_points: Modules to import ahead (``module:function`` of the job specs).
        env: Extra environment variables of the job.
        warm: Keep a warm process; False starts each job cold.
    """

    name = "local"

    def __init__(
        self,
        python: str,
        *,
        entry_points: list[str] | None = None,
        env: dict[str, str] | None = None,
        warm: bool = True,
    ) -> None:
        self.python = python
        self.entry_points = sorted(set(entry_points or []))
        self.env = env or {}
        self.spare = WarmProcess(
            [python, "-m", JOB_MODULE, "--warm", *self.entry_points],
            environment=self._environment,
            enabled=warm,
        )

    def _environment(self) -> dict[str, str]:
        return {**os.environ, **self.env, "PYTHONUNBUFFERED": "1"}

    async def start(self) -> None:
        """Warm a process for the first job."""
        await self.spare.start()

    async def close(self) -> None:
        """Stop the warm process."""
        await self.spare.close()

    async def _process(self, folder: Path, log_path: Path) -> asyncio.subprocess.Process:
        spare = await self.spare.take({"context": str(folder / CONTEXT_FILE), "log": str(log_path)})
        if spare is not None:
            return spare
        with log_path.open("ab") as log:
            return await asyncio.create_subprocess_exec(
                self.python,
                "-m",
                JOB_MODULE,
                str(folder / CONTEXT_FILE),
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
                env=self._environment(),
                cwd=folder,
            )

    async def run(self, context: JobContext) -> dict[str, Any]:
        folder = Path(context.work_dir)
        await asyncio.to_thread(_prepare, folder, context)
        process = await self._process(folder, self.log_path(context))
        code: int | None
        try:
            code = await asyncio.wait_for(process.wait(), context.spec.timeout_seconds)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
            code = None
        except asyncio.CancelledError:
            # The service is stopping: kill the job and start no warm process after it.
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            raise
        # The next warm process starts once this job is done, not competing with it.
        await self.spare.start()
        if code is None:
            return _failure(
                Stage.TRAINING,
                f"the job ran longer than {context.spec.timeout_seconds:g} s and was stopped",
                "TimeoutError",
            )
        outcome = await asyncio.to_thread(_read_result, folder)
        if outcome is not None:
            return outcome
        return _failure(
            Stage.SETUP, f"the job exited with status {code} and left no result", "JobCrashed"
        )


class KubernetesExecutor(Executor):
    """Writes the Job manifest a cluster runs; the pod reports its result over HTTP.

    Args:
        namespace: Namespace of the Jobs.
        env: Environment of the pod (service URLs, the report URL).
    """

    name = "kubernetes"

    def __init__(self, *, namespace: str, env: dict[str, str] | None = None) -> None:
        self.namespace = namespace
        self.env = env or {}

    def manifest(self, context: JobContext) -> dict[str, Any]:
        """The ``batch/v1`` Job of ``context``."""
        return job_manifest(
            job_id=context.job_id,
            model_name=context.model_name,
            context={**context.to_json(), "work_dir": ""},
            image=context.spec.image,
            namespace=self.namespace,
            timeout_seconds=context.spec.timeout_seconds,
            env=self.env,
        )

    async def run(self, context: JobContext) -> None:
        await asyncio.to_thread(self.write_manifest, context)

    def write_manifest(self, context: JobContext) -> Path:
        """Write the Job manifest to the job's folder; its path."""
        folder = Path(context.work_dir)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / MANIFEST_FILE
        path.write_text(yaml.safe_dump(self.manifest(context), sort_keys=False))
        with self.log_path(context).open("a") as log:
            log.write(f"Kubernetes Job manifest written to {path}\n")
        return path


def _prepare(folder: Path, context: JobContext) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / CONTEXT_FILE
    path.touch(mode=0o600)  # it holds the job's token
    path.chmod(0o600)
    path.write_text(json.dumps(context.to_json(), indent=2))
    (folder / RESULT_FILE).unlink(missing_ok=True)


def _read_result(folder: Path) -> dict[str, Any] | None:
    path = folder / RESULT_FILE
    if not path.exists():
        return None
    found: dict[str, Any] = json.loads(path.read_text())
    return found
