"""The Kubernetes executor against an in-process stand-in of the Kubernetes API.

This is NOT a cluster: no API server can run here. A small FastAPI app, served by
uvicorn on a free port, speaks the parts of the API the executor uses (from the
API's OpenAPI schema): create, watch, list and delete ``batch/v1`` Jobs in a
namespace, list pods by label selector, read a pod's log. Every Job body the
executor sends is validated against the Kubernetes schema of the pinned version
(kubernetes-validate), securityContext included; the test moves the Job's status
itself, as the cluster's Job controller would.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import uvicorn
from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse
from lightkube import AsyncClient, KubeConfig

from driftloop_bus.embedded import free_port
from driftloop_trainer.adapters.executors import KubernetesExecutor
from driftloop_trainer.domain.jobs import JobContext, JobSpec

pytestmark = pytest.mark.integration

K8S_VERSION = "1.30"
NAMESPACE = "ml"


@dataclass
class FakeApi:
    """The cluster's state as the stand-in keeps it."""

    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    created: list[dict[str, Any]] = field(default_factory=list)
    deletes: list[dict[str, str]] = field(default_factory=list)
    logs: dict[str, str] = field(default_factory=dict)
    version: int = 1
    job_created: asyncio.Event = field(default_factory=asyncio.Event)

    def set_condition(self, name: str, kind: str) -> None:
        """What the Job controller does when the Job ends."""
        self.version += 1
        job = self.jobs[name]
        job["metadata"]["resourceVersion"] = str(self.version)
        job["status"] = {"conditions": [{"type": kind, "status": "True"}]}


def _selected(job: dict[str, Any], selector: str | None) -> bool:
    if not selector:
        return True
    pairs = [part.split("=", 1) for part in selector.split(",")]
    labels = job["metadata"].get("labels", {})
    return all(labels.get(key) == value for key, value in pairs)


def api_app(state: FakeApi) -> FastAPI:
    app = FastAPI()
    jobs_path = "/apis/batch/v1/namespaces/{namespace}/jobs"

    @app.post(jobs_path)
    async def create_job(namespace: str, request: Request) -> JSONResponse:
        body = await request.json()
        try:
            kubernetes_validate.validate(body, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            raise HTTPException(422, str(error)) from error
        state.created.append(body)
        state.version += 1
        body["metadata"]["resourceVersion"] = str(state.version)
        body["metadata"]["namespace"] = namespace
        body["status"] = {}
        state.jobs[body["metadata"]["name"]] = body
        state.job_created.set()
        return JSONResponse(body, status_code=201)

    @app.get(jobs_path)
    async def list_or_watch(request: Request) -> Response:
        params = request.query_params
        if params.get("watch") in ("true", "1"):
            name = params.get("fieldSelector", "").removeprefix("metadata.name=")

            async def events() -> AsyncIterator[bytes]:
                job = state.jobs.get(name)
                if job is None:
                    # Gone: as the API sends it when the object is deleted.
                    gone = {"kind": "Job", "apiVersion": "batch/v1", "metadata": {"name": name}}
                    yield json.dumps({"type": "DELETED", "object": gone}).encode() + b"\n"
                    return
                yield json.dumps({"type": "MODIFIED", "object": job}).encode() + b"\n"
                await asyncio.sleep(0.05)  # the server ends the watch; the client reconnects

            return StreamingResponse(events(), media_type="application/json")
        items = [j for j in state.jobs.values() if _selected(j, params.get("labelSelector"))]
        return JSONResponse(
            {"apiVersion": "batch/v1", "kind": "JobList", "metadata": {}, "items": items}
        )

    @app.delete(jobs_path + "/{name}")
    async def delete_job(name: str, request: Request) -> JSONResponse:
        if name not in state.jobs:
            status = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 404}
            return JSONResponse({**status, "message": f"jobs {name!r} not found"}, 404)
        state.deletes.append({"name": name, **request.query_params})
        return JSONResponse(state.jobs.pop(name))

    @app.get("/api/v1/namespaces/{namespace}/pods")
    async def list_pods(namespace: str, labelSelector: str = "") -> JSONResponse:
        name = labelSelector.removeprefix("job-name=")
        items = [
            {"metadata": {"name": f"{name}-x1", "namespace": namespace}}
            for pod in [name]
            if pod in state.jobs
        ]
        return JSONResponse({"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": items})

    @app.get("/api/v1/namespaces/{namespace}/pods/{name}/log")
    async def pod_log(name: str, tailLines: int = 0) -> PlainTextResponse:
        lines = state.logs.get(name.removesuffix("-x1"), "").splitlines(keepends=True)
        return PlainTextResponse("".join(lines[-tailLines:] if tailLines else lines))

    return app


@pytest.fixture
async def api() -> AsyncIterator[tuple[FakeApi, str]]:
    state = FakeApi()
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(api_app(state), host="127.0.0.1", port=port, log_config=None)
    )
    task = asyncio.create_task(server.serve())
    for _ in range(1000):  # a few seconds at most
        if server.started:
            break
        await asyncio.sleep(0.01)
    yield state, f"http://127.0.0.1:{port}"
    server.should_exit = True
    await task


def stand_in_kubeconfig(url: str) -> dict[str, Any]:
    """A kubeconfig whose one cluster is the API stand-in at ``url`` (not a cluster)."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "stand-in", "cluster": {"server": url}}],
        "users": [{"name": "trainer", "user": {"token": "t"}}],
        "contexts": [{"name": "c", "context": {"cluster": "stand-in", "user": "trainer"}}],
        "current-context": "c",
    }


def executor(url: str) -> KubernetesExecutor:
    kubeconfig = stand_in_kubeconfig(url)
    client = AsyncClient(config=KubeConfig.from_dict(kubeconfig), namespace=NAMESPACE)
    return KubernetesExecutor(
        namespace=NAMESPACE, client=client, cpu="500m", memory="1Gi", log_tail_lines=2
    )


def context(tmp_path: Path, *, timeout: float = 30.0) -> JobContext:
    return JobContext(
        job_id="job-7d1c2b9a04ef",
        model_name="iris-classifier",
        parameters={},
        spec=JobSpec(image="ghcr.io/acme/trainer:1.2", timeout_seconds=timeout),
        trigger={"kind": "drift"},
        tracking_url="http://tracking:5000",
        registry_url="http://registry:5001",
        features_url="http://features:6566",
        experiment_name="driftloop-training",
        work_dir=str(tmp_path / "job"),
    )


NAME = "train-job-7d1c2b9a04ef"


async def until_created(state: FakeApi) -> None:
    await asyncio.wait_for(state.job_created.wait(), 10)


async def test_a_job_becomes_a_restricted_valid_job_and_succeeds_with_its_log_tail(
    api: tuple[FakeApi, str], tmp_path: Path
) -> None:
    state, url = api
    state.logs[NAME] = "loading\ntraining\nreported run r-1\n"
    runner = executor(url)
    job = context(tmp_path)
    running = asyncio.create_task(runner.run(job))
    await until_created(state)
    assert not running.done()
    state.set_condition(NAME, "Complete")
    assert await running is None  # the pod reported its own result
    pod = state.created[0]["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    container = pod["containers"][0]
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["resources"]["limits"] == {"cpu": "500m", "memory": "1Gi"}
    assert {"name": "tmp", "emptyDir": {}} in pod["volumes"]
    log = runner.log_path(job).read_text()
    assert log.endswith("training\nreported run r-1\n")
    assert "loading" not in log
    await runner.close()


async def test_a_failed_job_fails_with_its_log_tail(
    api: tuple[FakeApi, str], tmp_path: Path
) -> None:
    state, url = api
    state.logs[NAME] = "Traceback\nValueError: no rows\n"
    runner = executor(url)
    running = asyncio.create_task(runner.run(context(tmp_path)))
    await until_created(state)
    state.set_condition(NAME, "Failed")
    outcome = await running
    assert outcome == {
        "ok": False,
        "stage": "training",
        "error": f"the Job {NAME} failed",
        "error_type": "JobFailed",
    }
    assert "ValueError: no rows" in runner.log_path(context(tmp_path)).read_text()
    await runner.close()


async def test_cancelling_deletes_the_job_with_foreground_propagation(
    api: tuple[FakeApi, str], tmp_path: Path
) -> None:
    state, url = api
    runner = executor(url)
    running = asyncio.create_task(runner.run(context(tmp_path)))
    await until_created(state)
    await runner.cancel("job-7d1c2b9a04ef")
    outcome = await running
    assert outcome is not None
    assert outcome["error_type"] == "JobDeleted"
    assert state.deletes == [{"name": NAME, "propagationPolicy": "Foreground"}]
    await runner.close()


async def test_a_job_silent_past_its_timeout_is_failed_and_deleted(
    api: tuple[FakeApi, str], tmp_path: Path
) -> None:
    state, url = api
    runner = executor(url)
    outcome = await runner.run(context(tmp_path, timeout=1.0))
    assert outcome is not None
    assert outcome["error_type"] == "TimeoutError"
    assert state.deletes == [{"name": NAME, "propagationPolicy": "Foreground"}]
    assert NAME not in state.jobs
    await runner.close()


async def test_a_restarted_trainer_finds_its_running_job_by_label_and_follows_it(
    api: tuple[FakeApi, str], tmp_path: Path
) -> None:
    state, url = api
    first = executor(url)
    running = asyncio.create_task(first.run(context(tmp_path)))
    await until_created(state)
    running.cancel()  # the first trainer stops; its Job keeps running on the cluster
    await asyncio.gather(running, return_exceptions=True)
    await first.close()
    assert state.deletes == []
    second = executor(url)
    assert await second.running() == ["job-7d1c2b9a04ef"]
    following = asyncio.create_task(second.follow(context(tmp_path)))
    await asyncio.sleep(0.2)
    assert not following.done()
    state.set_condition(NAME, "Failed")
    outcome = await following
    assert outcome is not None
    assert outcome["error_type"] == "JobFailed"
    await second.close()
