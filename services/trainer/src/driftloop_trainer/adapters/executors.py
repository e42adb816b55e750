"""Executors: where a job's entry point runs.

- :class:`LocalExecutor` (default): a subprocess of the service's interpreter;
  its output goes to the job's log file and its outcome is read from ``result.json``.
- :class:`KubernetesExecutor`: creates a ``batch/v1`` Job through the Kubernetes
  API and watches it; the pod reports its outcome back with ``POST /jobs/{id}/result``.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import json
import os
from http import HTTPStatus
from pathlib import Path
from typing import Any, cast

from lightkube import ApiError, AsyncClient
from lightkube.resources.batch_v1 import Job
from lightkube.resources.core_v1 import Pod
from lightkube.types import CascadeType

from driftloop_trainer.adapters.kubernetes import (
    JOB_ID_ANNOTATION,
    JOB_SELECTOR,
    job_manifest,
    job_name,
)
from driftloop_trainer.adapters.warm import WarmProcess
from driftloop_trainer.domain.jobs import (
    CONTEXT_FILE,
    JOB_MODULE,
    PARENT_ENV,
    RESULT_FILE,
    JobContext,
    Stage,
)

LOG_FILE = "job.log"


class Executor(abc.ABC):
    """Runs a job's entry point (the base of the use cases' ``ExecutorPort`` adapters)."""

    name: str

    def log_path(self, context: JobContext) -> Path:
        """Where the job's output goes."""
        return Path(context.work_dir) / LOG_FILE

    @abc.abstractmethod
    async def run(self, context: JobContext) -> dict[str, Any] | None:
        """Run the job to its end; its outcome, or None when it reports back later."""

    async def follow(self, context: JobContext) -> dict[str, Any] | None:
        """Follow a job a previous process started; a process's jobs died with it."""
        return _failure(Stage.SETUP, "the trainer stopped while the job was running", "Interrupted")

    async def cancel(self, job_id: str) -> bool:
        """Stop the job's run; whether this executor had it to stop."""
        return False

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
        #: The job processes running now, by job id (what :meth:`cancel` stops).
        self._running: dict[str, asyncio.subprocess.Process] = {}

    def _environment(self) -> dict[str, str]:
        # The job dies with this process, even on SIGKILL (the job's main: die_with_parent).
        parent = {PARENT_ENV: str(os.getpid())}
        return {**os.environ, **self.env, "PYTHONUNBUFFERED": "1", **parent}

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
        self._running[context.job_id] = process
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
        finally:
            self._running.pop(context.job_id, None)
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

    async def cancel(self, job_id: str) -> bool:
        """Terminate the job's process (SIGTERM); False when it does not run here."""
        process = self._running.get(job_id)
        if process is None or process.returncode is not None:
            return False
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
        return True


class KubernetesExecutor(Executor):
    """Runs each job as a ``batch/v1`` Job through the Kubernetes API and follows it.

    The client is lightkube's ``AsyncClient``: maintained, asyncio-native on httpx
    (the services' HTTP client), typed ``batch/v1`` models, in-cluster config or a
    kubeconfig found the usual way (``KubeConfig.from_env``), watches that reconnect.
    kubernetes_asyncio is generated code on aiohttp; kr8s has no typed models.

    The pod reports its result with ``POST /jobs/{id}/result``; this executor
    watches the Job until it ends, so a Job that fails, or stays silent past the
    job's ``timeout_seconds``, fails the job (the latter's Job is deleted), and the
    pod's log tail is appended to the job's log file. :meth:`cancel` deletes the
    Job with foreground propagation (its pods go first). A trainer that stops
    leaves its Jobs running: the next one finds them by label (:meth:`running`)
    and follows them (:meth:`follow`).

    Args:
        namespace: Namespace of the Jobs.
        env: Environment of the pod (service URLs, the report URL).
        client: The API client; default one from the environment's config.
        cpu: CPU request of the pod.
        memory: Memory request and limit of the pod.
        log_tail_lines: Lines of the pod's log kept with the job.
    """

    name = "kubernetes"

    def __init__(
        self,
        *,
        namespace: str,
        env: dict[str, str] | None = None,
        client: AsyncClient | None = None,
        cpu: str = "1",
        memory: str = "2Gi",
        log_tail_lines: int = 100,
    ) -> None:
        self.namespace = namespace
        self.env = env or {}
        self._client = client
        self.cpu = cpu
        self.memory = memory
        self.log_tail_lines = log_tail_lines

    @property
    def client(self) -> AsyncClient:
        """The API client (created on first use)."""
        if self._client is None:
            self._client = AsyncClient(namespace=self.namespace, field_manager="driftloop-trainer")
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()

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
            cpu=self.cpu,
            memory=self.memory,
        )

    async def run(self, context: JobContext) -> dict[str, Any] | None:
        """Create the Job and follow it to its end."""
        await asyncio.to_thread(Path(context.work_dir).mkdir, parents=True, exist_ok=True)
        body = Job.from_dict(self.manifest(context))
        await self.client.create(cast(Job, body))
        await self._log(context, f"Kubernetes Job {job_name(context.job_id)} created\n")
        return await self.follow(context)

    async def follow(self, context: JobContext) -> dict[str, Any] | None:
        """Watch the job's Job to its end: None when it succeeded (its pod reported),
        else the failure; a Job silent past the timeout is deleted."""
        name = job_name(context.job_id)
        try:
            state = await asyncio.wait_for(self._watch(name), context.spec.timeout_seconds)
        except TimeoutError:
            await self._attach_log(context)
            await self.delete(name)
            return _failure(
                Stage.TRAINING,
                f"the Job ran longer than {context.spec.timeout_seconds:g} s and was deleted",
                "TimeoutError",
            )
        await self._attach_log(context)
        if state == "Complete":
            return None
        if state == "Gone":
            return _failure(Stage.SETUP, f"the Job {name} was deleted", "JobDeleted")
        return _failure(Stage.TRAINING, f"the Job {name} failed", "JobFailed")

    async def _watch(self, name: str) -> str:
        watch = self.client.watch(
            Job, namespace=self.namespace, fields={"metadata.name": name}, server_timeout=60
        )
        async for kind, job in watch:
            if kind == "DELETED":
                return "Gone"
            for condition in (job.status.conditions if job.status else None) or []:
                if condition.status == "True" and condition.type in ("Complete", "Failed"):
                    return condition.type
        return "Gone"  # pragma: no cover - the watch reconnects until cancelled

    async def cancel(self, job_id: str) -> bool:
        """Cancel a job: delete its Job and pods (any replica can: the Job is the cluster's)."""
        await self.delete(job_name(job_id))
        return True

    async def delete(self, name: str) -> None:
        """Delete a Job and its pods (foreground propagation); a gone Job is fine."""
        try:
            await self.client.delete(
                Job, name, namespace=self.namespace, cascade=CascadeType.FOREGROUND
            )
        except ApiError as error:
            if error.status.code != HTTPStatus.NOT_FOUND:
                raise

    async def running(self) -> list[str]:
        """The job ids of this namespace's unfinished training Jobs (by label)."""
        found = []
        async for job in self.client.list(Job, namespace=self.namespace, labels=JOB_SELECTOR):
            conditions = (job.status.conditions if job.status else None) or []
            if any(c.status == "True" and c.type in ("Complete", "Failed") for c in conditions):
                continue
            annotations = (job.metadata.annotations if job.metadata else None) or {}
            if JOB_ID_ANNOTATION in annotations:
                found.append(annotations[JOB_ID_ANNOTATION])
        return found

    async def _attach_log(self, context: JobContext) -> None:
        """Append the tail of the Job's pod log to the job's log file."""
        selector: dict[str, Any] = {"job-name": job_name(context.job_id)}
        try:
            lines = []
            async for pod in self.client.list(Pod, namespace=self.namespace, labels=selector):
                if pod.metadata is None or pod.metadata.name is None:
                    continue
                async for line in self.client.log(
                    pod.metadata.name, namespace=self.namespace, tail_lines=self.log_tail_lines
                ):
                    lines.append(line)
        except ApiError as error:
            lines = [f"(the pod log could not be read: {error.status.message})\n"]
        await self._log(context, "".join(lines))

    async def _log(self, context: JobContext, text: str) -> None:
        def append() -> None:
            with self.log_path(context).open("a") as log:
                log.write(text)

        await asyncio.to_thread(append)


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
