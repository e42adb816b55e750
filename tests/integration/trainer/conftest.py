"""The trainer in process (its consumer on the session broker), and helpers to drive it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from driftloop.common.v1.common_pb2 import ModelRef, Window
from driftloop.monitor.v1 import events_pb2 as monitor
from driftloop_bus.embedded import free_port
from driftloop_bus.publisher import Publisher
from driftloop_events.envelope import CloudEvent
from driftloop_events.topics import TOPICS
from driftloop_kit.testing import app_client
from driftloop_trainer.domain.jobs import ModelConfig
from driftloop_trainer.entrypoints.app import create_app
from driftloop_trainer.settings import TrainerSettings
from tests.fakes.common import unique

from ..bus.helpers import eventually

__all__ = [
    "drift_alert",
    "eventually",
    "publisher",
    "running_trainer",
    "wait_for_job",
]


@asynccontextmanager
async def running_trainer(
    *,
    home: Path,
    database_url: str,
    bootstrap_servers: str,
    models: dict[str, ModelConfig],
    **overrides: Any,
) -> AsyncIterator[httpx.AsyncClient]:
    """The trainer app with its lifespan (consumer, relay, jobs), and a client of it."""
    settings = TrainerSettings(
        home=home,
        database_url=database_url,
        kafka_bootstrap_servers=bootstrap_servers,
        port=free_port(),
        consumer_group=unique("trainer-test"),
        models=models,
        log_format="console",
        **overrides,
    )
    app = create_app(settings)
    async with app_client(app) as client:
        client.app = app  # type: ignore[attr-defined]
        yield client


def drift_alert(
    model: str, window: str, *, version: int = 1, episode_id: str = ""
) -> CloudEvent[monitor.DriftDetected]:
    """A drift.detected event for ``model`` about ``window`` (opening ``episode_id``)."""
    start = datetime.now(UTC).replace(microsecond=0)
    return CloudEvent.new(
        monitor.DriftDetected(
            model=ModelRef(name=model, version=version),
            window=Window(id=window, start_time=start, end_time=start + timedelta(minutes=1)),
            columns=[
                monitor.ColumnDrift(
                    column="petal_width", stattest="ks", score=0.001, threshold=0.05, drifted=True
                )
            ],
            drift_share=1.0,
            dataset_drift_threshold=0.5,
            detect_time=start,
            episode_id=episode_id,
        )
    )


@asynccontextmanager
async def publisher(bootstrap_servers: str) -> AsyncIterator[Publisher]:
    """A publisher to the session broker (the topics created when missing)."""
    found = Publisher(
        bootstrap_servers, topics=[TOPICS["monitor.alerts"], TOPICS["features.events"]]
    )
    await found.start()
    try:
        yield found
    finally:
        await found.stop()


async def wait_for_job(
    client: httpx.AsyncClient, job_id: str, *, timeout: float = 60.0
) -> dict[str, Any]:
    """Poll a job until it has finished (bounded); the job."""

    async def finished() -> dict[str, Any] | None:
        job: dict[str, Any] = (await client.get(f"/jobs/{job_id}")).json()["job"]
        return job if job["status"] in ("succeeded", "failed") else None

    found: dict[str, Any] = await eventually(finished, timeout=timeout, interval=0.2)
    return found
