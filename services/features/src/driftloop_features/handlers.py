"""Use cases of the features service: ingesting a batch of Kafka rows, materializing.

Both entrypoints (the HTTP app and the ingestion agent) call these; they build their
dependencies in :func:`driftloop_features.entrypoints.app.bootstrap`.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import pandas as pd  # type: ignore[import-untyped]
from prometheus_client import Counter, Histogram

from driftloop.features.v1 import events_pb2 as features
from driftloop_bus.consumer import RetryPolicy
from driftloop_bus.deadletter import DeadLetters, Delivered
from driftloop_bus.outbox import Outbox
from driftloop_events.envelope import CloudEvent, EnvelopeError, from_record
from driftloop_features.adapters.feast_store import FeastGateway
from driftloop_features.domain.rows import (
    Batch,
    PushSourceSchema,
    RowRejected,
    ValidRow,
    validate_row,
)
from driftloop_kit.db import Database

__all__ = ["IngestReport", "Ingestion", "Materializations"]

log = logging.getLogger(__name__)

ROW_PUSHED = "driftloop.features.row.pushed"

ROWS_INGESTED = Counter(
    "driftloop_features_rows_ingested_total",
    "Rows from features.ingest written to the stores.",
    ["push_source"],
)
ROWS_REJECTED = Counter(
    "driftloop_features_rows_rejected_total",
    "Rows from features.ingest sent to the dead-letter topic.",
    ["reason"],
)
BATCH_SECONDS = Histogram(
    "driftloop_features_ingest_batch_seconds",
    "Time to validate and write one batch of ingested rows.",
)

#: Rows decoded between two yields to the event loop, which also serves online reads.
_YIELD_EVERY = 250

#: Seconds between two registry refreshes caused by rows naming an unknown push source.
_REFRESH_INTERVAL = 5.0


class Record(Protocol):
    """A Kafka record as aiokafka or faust deliver it (or a :class:`Delivered`)."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...
    @property
    def headers(self) -> Sequence[tuple[str, bytes]]: ...


def _delivered(record: Record) -> Delivered:
    """The record as the dead-letter path takes it (only rejected records pay for this)."""
    if isinstance(record, Delivered):
        return record
    return Delivered(
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        key=record.key,
        value=record.value,
        headers=list(record.headers),
    )


@dataclass
class IngestReport:
    """What one batch did: rows written per push source, and rows dead-lettered."""

    written: dict[str, int] = field(default_factory=dict)
    rejected: int = 0
    failed: int = 0
    events: list[CloudEvent[Any]] = field(default_factory=list)
    #: Records to dead-letter: (record, error, attempts).
    dead: list[tuple[Record, Exception, int]] = field(default_factory=list)


class Ingestion:
    """Validates rows from ``features.ingest``, pushes them, dead-letters the bad ones.

    Args:
        gateway: The Feast store.
        dead_letters: Where rejected rows go, with the reason in their headers.
        database: Holds the outbox the watermark events are written to.
        outbox: The service's outbox.
        retry: Attempts for a push that fails (a store outage) before its rows are
            dead-lettered.
    """

    def __init__(
        self,
        *,
        gateway: FeastGateway,
        dead_letters: DeadLetters,
        database: Database,
        outbox: Outbox,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.gateway = gateway
        self.dead_letters = dead_letters
        self.database = database
        self.outbox = outbox
        self.retry = retry or RetryPolicy(attempts=3, initial_backoff=0.2)
        self._refreshed_at = 0.0

    async def handle_batch(self, messages: Sequence[Record]) -> IngestReport:
        """Write the good rows of ``messages`` to the stores; dead-letter the others.

        A row is rejected on its own (bad envelope, unknown push source, missing entity
        column, wrong type); the rest of the batch is written. A push that keeps failing
        dead-letters the rows of that push only.
        """
        started = time.perf_counter()
        report = IngestReport()
        dead = report.dead
        decoded: list[tuple[Record, features.FeatureRow]] = []
        for index, message in enumerate(messages):
            if index and not index % _YIELD_EVERY:
                await asyncio.sleep(0)  # let online reads in between
            try:
                event = from_record(message.value, message.headers)
            except EnvelopeError as error:
                self._reject(message, error, "envelope", report)
                continue
            if event.type != ROW_PUSHED:
                continue  # another event type on the topic: not ours
            decoded.append((message, event.data))
        valid, rejected_by_source = await self._validate(decoded, report)
        batches = Batch.group(row for _, row in valid)
        messages_of: dict[tuple[str, int], list[Record]] = {}
        for message, row in valid:
            messages_of.setdefault((row.push_source, row.mode), []).append(message)
        written: list[Batch] = []
        for batch in batches:
            failure = await self._push(batch)
            if failure is None:
                written.append(batch)
                continue
            for message in messages_of[(batch.push_source, batch.mode)]:
                report.failed += 1
                dead.append((message, failure, self.retry.attempts))
        # Sent together: the publisher batches them, instead of one round trip per row.
        await asyncio.gather(
            *(self.dead_letters.send(_delivered(m), error=e, attempts=n) for m, e, n in dead)
        )
        report.events = self._watermarks(written, rejected_by_source)
        for batch in written:
            report.written[batch.push_source] = report.written.get(batch.push_source, 0) + len(
                batch.rows
            )
            ROWS_INGESTED.labels(batch.push_source).inc(len(batch.rows))
        if report.events:
            async with self.database.session() as session:
                await self.outbox.add(session, *report.events)
        BATCH_SECONDS.observe(time.perf_counter() - started)
        return report

    async def _validate(
        self, decoded: Sequence[tuple[Record, features.FeatureRow]], report: IngestReport
    ) -> tuple[list[tuple[Record, ValidRow]], dict[str, int]]:
        schemas = self.gateway.push_schemas
        if any(row.push_source not in schemas for _, row in decoded):
            schemas = await self._refreshed_schemas()
        now = datetime.now(UTC)
        valid: list[tuple[Record, ValidRow]] = []
        rejected: dict[str, int] = {}
        for index, (message, row) in enumerate(decoded):
            if index and not index % _YIELD_EVERY:
                await asyncio.sleep(0)
            try:
                valid.append((message, validate_row(row, schemas, now=now)))
            except RowRejected as error:
                if row.push_source in schemas:
                    rejected[row.push_source] = rejected.get(row.push_source, 0) + 1
                self._reject(message, error, "invalid_row", report)
        return valid, rejected

    async def _refreshed_schemas(self) -> Mapping[str, PushSourceSchema]:
        """The push schemas, re-read from the registry at most every few seconds."""
        if time.monotonic() - self._refreshed_at > _REFRESH_INTERVAL:
            self._refreshed_at = time.monotonic()
            await asyncio.to_thread(self.gateway.refresh)
        return self.gateway.push_schemas

    def _reject(self, message: Record, error: Exception, reason: str, report: IngestReport) -> None:
        report.rejected += 1
        ROWS_REJECTED.labels(reason).inc()
        report.dead.append((message, error, 0))

    async def _push(self, batch: Batch) -> Exception | None:
        attempt = 0
        while True:
            attempt += 1
            try:
                await asyncio.to_thread(self._write, batch)
                return None
            except asyncio.CancelledError:
                raise
            except Exception as error:
                if attempt >= self.retry.attempts:
                    log.exception(
                        "push failed; dead-lettering its rows",
                        extra={"push_source": batch.push_source, "rows": len(batch.rows)},
                    )
                    return error
                log.warning(
                    "push failed; retrying",
                    extra={"push_source": batch.push_source, "attempt": attempt},
                    exc_info=True,
                )
                await asyncio.sleep(self.retry.backoff(attempt))

    def _write(self, batch: Batch) -> None:
        """Write ``batch`` to the stores its push mode names (in a worker thread)."""
        if batch.mode in (features.PUSH_MODE_ONLINE, features.PUSH_MODE_ONLINE_AND_OFFLINE):
            self.gateway.write_online_rows(batch.push_source, batch.rows)
        if batch.mode in (features.PUSH_MODE_OFFLINE, features.PUSH_MODE_ONLINE_AND_OFFLINE):
            schema = self.gateway.push_schemas[batch.push_source]
            frame = pd.DataFrame.from_records(batch.rows, columns=schema.frame_columns)
            self.gateway.push(batch.push_source, frame, "offline")

    def _watermarks(
        self, written: Sequence[Batch], rejected: dict[str, int]
    ) -> list[CloudEvent[Any]]:
        """One ``features.ingested`` per push source that had rows written or rejected."""
        by_source: dict[str, list[Batch]] = {}
        for batch in written:
            by_source.setdefault(batch.push_source, []).append(batch)
        events: list[CloudEvent[Any]] = []
        schemas = self.gateway.push_schemas
        for name in sorted({*by_source, *rejected}):
            batches = by_source.get(name, [])
            modes = {batch.mode for batch in batches}
            message = features.FeaturesIngested(
                push_source=name,
                feature_views=list(schemas[name].feature_views) if name in schemas else [],
                rows_written=sum(len(b.rows) for b in batches),
                rows_rejected=rejected.get(name, 0),
                online_store_written=bool(
                    modes & {features.PUSH_MODE_ONLINE, features.PUSH_MODE_ONLINE_AND_OFFLINE}
                ),
                offline_store_written=bool(
                    modes & {features.PUSH_MODE_OFFLINE, features.PUSH_MODE_ONLINE_AND_OFFLINE}
                ),
            )
            lows = [b.min_event_time for b in batches if b.min_event_time is not None]
            highs = [b.max_event_time for b in batches if b.max_event_time is not None]
            if lows:
                message.min_event_time.FromDatetime(min(lows))
            if highs:
                message.max_event_time.FromDatetime(max(highs))
            events.append(CloudEvent.new(message))
        return events


class Materializations:
    """Materializes feature views and records a ``features.materialized`` event per view.

    Args:
        gateway: The Feast store.
        database: Holds the outbox.
        outbox: The service's outbox.
    """

    def __init__(self, *, gateway: FeastGateway, database: Database, outbox: Outbox) -> None:
        self.gateway = gateway
        self.database = database
        self.outbox = outbox
        self._background: set[asyncio.Task[Any]] = set()

    def in_background(self, work: Coroutine[Any, Any, Any]) -> None:
        """Run a materialization after the request that asked for it has been answered."""
        task = asyncio.create_task(work)
        self._background.add(task)

        def done(finished: asyncio.Task[Any]) -> None:
            self._background.discard(finished)
            if not finished.cancelled() and finished.exception() is not None:
                log.error("background materialization failed", exc_info=finished.exception())

        task.add_done_callback(done)

    async def materialize(
        self, start: datetime, end: datetime, feature_views: list[str] | None
    ) -> list[str]:
        """Materialize ``[start, end)``; return the feature views materialized."""
        rows = await asyncio.to_thread(self.gateway.materialize, start, end, feature_views)
        await self._record({name: (start, count) for name, count in rows.items()}, end)
        return list(rows)

    async def materialize_incremental(
        self, end: datetime, feature_views: list[str] | None
    ) -> list[str]:
        """Materialize each view from where it last stopped up to ``end``."""
        done = await asyncio.to_thread(self.gateway.materialize_incremental, end, feature_views)
        await self._record(done, end)
        return list(done)

    async def _record(self, done: Mapping[str, tuple[datetime | None, int]], end: datetime) -> None:
        run_id = f"mat-{end:%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:8]}"
        events: list[CloudEvent[Any]] = []
        for name, (start, rows) in done.items():
            message = features.FeaturesMaterialized(
                feature_view=name, materialization_id=run_id, rows=rows
            )
            if start is not None:
                message.start_time.FromDatetime(start)
            message.end_time.FromDatetime(end)
            events.append(CloudEvent.new(message))
        if events:
            async with self.database.session() as session:
                await self.outbox.add(session, *events)
