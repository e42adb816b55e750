"""Ingestion of ``features.ingest``: rows collected per batch, validated, pushed, watermarked.

An ingestion engine (``entrypoints/ingest.py``, faust or the bus's batch consumer)
decodes every record with the bus ``Dispatcher`` (which dead-letters one that does not
decode) and runs its handler, ``on_feature_row`` (``entrypoints/consumers.py``); that
adds the row to the :class:`RowBatch`. Once per batch the engine calls
:meth:`Ingestion.ingest` with the rows collected, and commits the records' offsets only
after it returned: delivery is at least once, and writing a row twice writes the same
value again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

import pandas as pd  # type: ignore[import-untyped]
from prometheus_client import Counter, Histogram

from driftloop.features.v1 import events_pb2 as features
from driftloop_bus.deadletter import Delivered
from driftloop_events.envelope import CloudEvent
from driftloop_features.domain.events import OFFLINE_MODES, ONLINE_MODES, ingested_events
from driftloop_features.domain.rows import (
    Batch,
    PushSourceSchema,
    RowRejected,
    ValidRow,
    validate_row,
)
from driftloop_features.service_layer.ports import (
    DeadLetterPort,
    FeatureStorePort,
    OutboxPort,
    SessionsPort,
)
from driftloop_kit.retry import HANDLER, Backoff, GaveUp, logged

__all__ = ["PUSH_RETRY", "IngestReport", "Ingestion", "Received", "RowBatch"]

log = logging.getLogger(__name__)

#: Attempts for a push that fails (a store outage) before its rows are dead-lettered.
PUSH_RETRY = HANDLER.with_(initial=0.2)

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

#: Rows validated between two yields to the event loop, which also serves online reads.
YIELD_EVERY = 250

#: Seconds between two registry refreshes caused by rows naming an unknown push source.
_REFRESH_INTERVAL = 5.0


class Received(NamedTuple):
    """A decoded row and the record it arrived in (dead-lettered as it arrived)."""

    record: Delivered
    row: features.FeatureRow


class RowBatch:
    """The rows read since the last :meth:`Ingestion.ingest`, each with its record.

    The engine names the record it is dispatching (:meth:`arrived`); the handler run
    for a ``FeatureRow`` in it calls :meth:`add`.
    """

    def __init__(self) -> None:
        self._rows: list[Received] = []
        self._record: Delivered | None = None

    def __len__(self) -> int:
        return len(self._rows)

    def arrived(self, record: Delivered | None) -> None:
        """Rows added from now on arrived in ``record`` (None: outside any record)."""
        self._record = record

    def add(self, event: CloudEvent[features.FeatureRow]) -> None:
        """Keep the row of ``event`` for the batch being read."""
        if self._record is None:
            raise RuntimeError("a row was added outside a record (RowBatch.arrived)")
        self._rows.append(Received(self._record, event.data))

    def add_row(self, record: Delivered, row: features.FeatureRow) -> None:
        """Keep ``row``, decoded from ``record`` without its envelope (the batch's fast path)."""
        self._rows.append(Received(record, row))

    def take(self) -> list[Received]:
        """The rows read so far; the batch starts empty again."""
        rows, self._rows = self._rows, []
        self._record = None
        return rows


@dataclass
class IngestReport:
    """What one batch did: rows written per push source, and rows dead-lettered."""

    written: dict[str, int] = field(default_factory=dict)
    rejected: int = 0
    failed: int = 0
    events: list[CloudEvent[Any]] = field(default_factory=list)
    #: Records to dead-letter: (record, error, attempts).
    dead: list[tuple[Delivered, BaseException, int]] = field(default_factory=list)


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
        gateway: FeatureStorePort,
        dead_letters: DeadLetterPort,
        database: SessionsPort,
        outbox: OutboxPort,
        retry: Backoff = PUSH_RETRY,
    ) -> None:
        self.gateway = gateway
        self.dead_letters = dead_letters
        self.database = database
        self.outbox = outbox
        self.retry = retry
        self._refreshed_at = 0.0

    async def ingest(self, received: Sequence[Received]) -> IngestReport:
        """Write the good rows of ``received`` to the stores; dead-letter the others.

        A row is rejected on its own (unknown push source, missing entity column,
        wrong type); the rest of the batch is written. A push that keeps failing
        dead-letters the rows of that push only.
        """
        started = time.perf_counter()
        report = IngestReport()
        dead = report.dead
        valid, rejected_by_source = await self._validate(received, report)
        batches = Batch.group(row for _, row in valid)
        records_of: dict[tuple[str, int], list[Delivered]] = {}
        for record, row in valid:
            records_of.setdefault((row.push_source, row.mode), []).append(record)
        written: list[Batch] = []
        for batch in batches:
            failure = await self._push(batch)
            if failure is None:
                written.append(batch)
                continue
            for record in records_of[(batch.push_source, batch.mode)]:
                report.failed += 1
                dead.append((record, failure.last, failure.attempts))
        # Sent together: the publisher batches them, instead of one round trip per row.
        await asyncio.gather(*(self.dead_letters.send(m, error=e, attempts=n) for m, e, n in dead))
        report.events = ingested_events(written, rejected_by_source, self.gateway.push_schemas)
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
        self, received: Sequence[Received], report: IngestReport
    ) -> tuple[list[tuple[Delivered, ValidRow]], dict[str, int]]:
        schemas = self.gateway.push_schemas
        if any(item.row.push_source not in schemas for item in received):
            schemas = await self._refreshed_schemas()
        now = datetime.now(UTC)
        valid: list[tuple[Delivered, ValidRow]] = []
        rejected: dict[str, int] = {}
        for index, (record, row) in enumerate((item.record, item.row) for item in received):
            if index and not index % YIELD_EVERY:
                await asyncio.sleep(0)  # let online reads in between
            try:
                valid.append((record, validate_row(row, schemas, now=now)))
            except RowRejected as error:
                if row.push_source in schemas:
                    rejected[row.push_source] = rejected.get(row.push_source, 0) + 1
                report.rejected += 1
                ROWS_REJECTED.labels("invalid_row").inc()
                report.dead.append((record, error, 0))
        return valid, rejected

    async def _refreshed_schemas(self) -> Mapping[str, PushSourceSchema]:
        """The push schemas, re-read from the registry at most every few seconds."""
        if time.monotonic() - self._refreshed_at > _REFRESH_INTERVAL:
            self._refreshed_at = time.monotonic()
            await asyncio.to_thread(self.gateway.refresh)
        return self.gateway.push_schemas

    async def _push(self, batch: Batch) -> GaveUp | None:
        """Write ``batch``, retried by :attr:`retry`; the failure when it gave up."""
        try:
            await self.retry.call(
                lambda: asyncio.to_thread(self._write, batch),
                on_retry=logged(log, "push failed; retrying", push_source=batch.push_source),
            )
        except GaveUp as failure:
            log.error(
                "push failed; dead-lettering its rows",
                extra={"push_source": batch.push_source, "rows": len(batch.rows)},
                exc_info=failure.last,
            )
            return failure
        return None

    def _write(self, batch: Batch) -> None:
        """Write ``batch`` to the stores its push mode names (in a worker thread)."""
        if batch.mode in ONLINE_MODES:
            self.gateway.write_online_rows(batch.push_source, batch.rows)
        if batch.mode in OFFLINE_MODES:
            schema = self.gateway.push_schemas[batch.push_source]
            frame = pd.DataFrame.from_records(batch.rows, columns=schema.frame_columns)
            self.gateway.push(batch.push_source, frame, "offline")
