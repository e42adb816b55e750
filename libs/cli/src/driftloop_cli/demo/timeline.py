"""The demo's timeline: every event of the loop, read from the real topics as it happens."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from driftloop_events.envelope import CloudEvent, from_record

log = logging.getLogger(__name__)

#: The topics whose events make up the loop (predictions and labels are counted, not listed).
LOOP_TOPICS = ("registry.models", "monitor.alerts", "trainer.jobs")

_PREFIX = "driftloop."


@dataclass(frozen=True)
class Entry:
    """One line of the timeline."""

    time: datetime
    kind: str
    event_id: str
    summary: str
    facts: dict[str, Any] = field(default_factory=dict)

    def line(self, origin: datetime) -> str:
        """The entry as printed: clock time, seconds since the demo started, what happened."""
        offset = (self.time - origin).total_seconds()
        return (
            f"{self.time.strftime('%H:%M:%S.%f')[:-3]}  +{offset:7.2f}s  "
            f"{self.kind:<32} {short_id(self.event_id):<13}  {self.summary}"
        )

    def as_dict(self) -> dict[str, Any]:
        """JSON form (``--timeline-json``)."""
        return {
            "time": self.time.isoformat(),
            "kind": self.kind,
            "event_id": self.event_id,
            "summary": self.summary,
            **self.facts,
        }


def short_id(event_id: str) -> str:
    """An event id as printed: its producer's prefix and its counter (``f8105a6b…00003``)."""
    return f"{event_id[:8]}…{event_id[-5:]}" if len(event_id) > 14 else event_id


def _model(ref: Any) -> str:
    return f"{ref.name} v{ref.version}"


def describe(event: CloudEvent[Any]) -> Entry | None:
    """The timeline entry of a loop event; None for events the timeline leaves out."""
    kind = event.type.removeprefix(_PREFIX)
    data = event.data
    facts: dict[str, Any] = {}
    if kind == "registry.model_version.created":
        summary = f"{data.name} v{data.version} registered from run {data.run_id[:12]}"
        facts = {"model": data.name, "version": data.version, "run_id": data.run_id}
    elif kind == "registry.alias.set":
        was = f" (was v{data.previous_version})" if data.HasField("previous_version") else ""
        summary = f"{data.name}@{data.alias} -> v{data.version}{was}"
        facts = {"model": data.name, "alias": data.alias, "version": data.version}
    elif kind == "registry.alias.deleted":
        summary = f"{data.name}@{data.alias} deleted (was v{data.version})"
        facts = {"model": data.name, "alias": data.alias, "version": data.version}
    elif kind == "monitor.drift.detected":
        drifted = [c.column for c in data.columns if c.drifted]
        summary = (
            f"{_model(data.model)}: {len(drifted)}/{len(data.columns)} columns drifted "
            f"({', '.join(drifted)}; share {data.drift_share:.2f}) report {data.report_url}"
            f" episode {data.episode_id}"
        )
        facts = {
            "model": data.model.name,
            "version": data.model.version,
            "columns": drifted,
            "episode_id": data.episode_id,
        }
    elif kind == "monitor.drift.cleared":
        summary = (
            f"{_model(data.model)}: drift cleared (share {data.drift_share:.2f}), "
            f"episode {data.episode_id} closed"
        )
        facts = {
            "model": data.model.name,
            "version": data.model.version,
            "episode_id": data.episode_id,
        }
    elif kind == "monitor.performance.degraded":
        summary = (
            f"{_model(data.model)}: {data.metric} {data.value:.3f} below {data.threshold:.3f} "
            f"on {data.labelled_rows} labelled rows, episode {data.episode_id}"
        )
        facts = {
            "model": data.model.name,
            "version": data.model.version,
            "episode_id": data.episode_id,
        }
    elif kind == "monitor.performance.recovered":
        summary = (
            f"{_model(data.model)}: {data.metric} {data.value:.3f} meets {data.threshold:.3f} "
            f"again, episode {data.episode_id} closed"
        )
        facts = {
            "model": data.model.name,
            "version": data.model.version,
            "episode_id": data.episode_id,
        }
    elif kind == "trainer.training.requested":
        cause = short_id(data.trigger.event.id) if data.trigger.event.id else "-"
        summary = (
            f"job {data.job_id} for {data.model_name}: "
            f"{data.trigger.reason or 'trigger'} (trigger event {cause})"
        )
        facts = {"model": data.model_name, "job_id": data.job_id, "trigger": data.trigger.event.id}
    elif kind == "trainer.training.started":
        summary = f"job {data.job_id} running (attempt {data.attempt})"
        facts = {"model": data.model_name, "job_id": data.job_id}
    elif kind == "trainer.training.completed":
        result = data.evaluation
        champion = (
            f"champion v{result.champion_version} {result.champion_score:.3f}"
            if result.HasField("champion_version")
            else "no champion yet"
        )
        verdict = "promoted" if data.promoted else "not promoted"
        summary = (
            f"job {data.job_id}: v{data.model_version} {result.metric} "
            f"{result.challenger_score:.3f} vs {champion} on {result.evaluation_rows} rows: "
            f"{verdict}"
        )
        facts = {
            "model": data.model_name,
            "job_id": data.job_id,
            "version": data.model_version,
            "promoted": data.promoted,
        }
    elif kind == "trainer.training.failed":
        summary = f"job {data.job_id} failed in {data.stage}: {data.error[:200]}"
        facts = {"model": data.model_name, "job_id": data.job_id}
    else:
        return None
    return Entry(event.time, kind, event.id, summary, facts)


class Timeline:
    """Reads the loop topics from the beginning and keeps each event as an entry.

    Args:
        bootstrap_servers: The suite's Kafka.
        on_entry: Called with each new entry (the demo prints it).
    """

    def __init__(
        self, bootstrap_servers: str, on_entry: Callable[[Entry], None] = lambda entry: None
    ) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.on_entry = on_entry
        self.entries: list[Entry] = []
        self._task: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()

    async def start(self) -> None:
        """Start reading in the background."""
        from aiokafka import AIOKafkaConsumer

        consumer = AIOKafkaConsumer(
            *LOOP_TOPICS,
            bootstrap_servers=self.bootstrap_servers,
            group_id=None,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        self._task = asyncio.create_task(self._read(consumer))

    async def stop(self) -> None:
        """Stop reading."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _read(self, consumer: Any) -> None:
        try:
            async for record in consumer:
                try:
                    event = from_record(record.value, record.headers)
                except Exception as error:
                    log.debug("skipping an undecodable record: %s", error)
                    continue
                entry = describe(event)
                if entry is None:
                    continue
                self.entries.append(entry)
                self.entries.sort(key=lambda e: e.time)
                self.on_entry(entry)
                self._changed.set()
        finally:
            await consumer.stop()

    def find(self, kind: str, **facts: Any) -> Entry | None:
        """The first entry of this kind whose facts match."""
        for entry in self.entries:
            if entry.kind == kind and all(entry.facts.get(k) == v for k, v in facts.items()):
                return entry
        return None

    async def wait_for(self, kind: str, timeout: float, **facts: Any) -> Entry | None:
        """Wait until an entry of this kind with these facts arrives; None on timeout."""
        deadline = asyncio.get_running_loop().time() + timeout
        while (found := self.find(kind, **facts)) is None:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                return None
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout=min(remaining, 1.0))
        return found


def now() -> datetime:
    """The current time, timezone-aware."""
    return datetime.now(UTC)
