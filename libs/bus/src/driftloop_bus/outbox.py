"""Transactional outbox: events are rows written with the change they describe.

A handler writes its state change and :meth:`Outbox.add` in one transaction, so
either both are stored or neither is. :class:`OutboxRelay` publishes the rows in
order and deletes them once the broker has acknowledged them. A broker outage
only delays events; a crash between publish and delete publishes a row twice,
which consumers absorb with their inbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from prometheus_client import Counter, Gauge
from sqlalchemy import delete, event, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from driftloop_bus.publisher import Publisher
from driftloop_bus.tables import outbox
from driftloop_bus.tasks import cancel_and_wait
from driftloop_events.envelope import PROTOBUF, CloudEvent, KafkaRecord, to_record
from driftloop_kit.db import Database, lock_for_transaction
from driftloop_kit.retry import RECONNECT, Backoff, logged

log = logging.getLogger(__name__)

OUTBOX_PUBLISHED = Counter(
    "driftloop_outbox_published_total", "Outbox rows published and deleted.", ["service"]
)
OUTBOX_PENDING = Gauge(
    "driftloop_outbox_pending", "Outbox rows seen waiting at the last relay pass.", ["service"]
)
OUTBOX_ERRORS = Counter(
    "driftloop_outbox_publish_errors_total", "Relay passes that failed to publish.", ["service"]
)


class Outbox:
    """Adds events to the outbox inside the caller's transaction.

    Args:
        content_type: Wire format of the stored records.
    """

    def __init__(self, *, content_type: str = PROTOBUF) -> None:
        self.content_type = content_type
        self._on_commit: list[Callable[[], None]] = []

    def on_commit(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` after a transaction that added events commits (wakes the relay)."""
        self._on_commit.append(callback)

    async def add(self, session: AsyncSession, *events: CloudEvent[Any]) -> None:
        """Store ``events`` in the outbox as part of ``session``'s transaction."""
        rows = [_row(to_record(e, content_type=self.content_type), e) for e in events]
        if not rows:
            return
        await session.execute(insert(outbox), rows)
        for callback in self._on_commit:
            event.listen(
                session.sync_session, "after_commit", lambda _s, c=callback: c(), once=True
            )


def _row(record: KafkaRecord, ce: CloudEvent[Any]) -> dict[str, Any]:
    return {
        "event_id": ce.id,
        "event_type": ce.type,
        "topic": record.topic,
        "key": record.key,
        "value": record.value,
        "headers": [[k, v.decode()] for k, v in record.headers],
    }


def _record(row: Any) -> KafkaRecord:
    return KafkaRecord(
        topic=row.topic,
        key=row.key,
        value=row.value,
        headers=[(k, v.encode()) for k, v in row.headers],
    )


class OutboxRelay:
    """Publishes outbox rows in order and deletes them once acknowledged.

    Start it as a resource of the service's app. It wakes up when a transaction
    that added events commits in this process, and polls for the rest (other
    replicas, rows left by a crash).

    Args:
        database: The service's database, which holds the outbox table.
        publisher: The producer; the relay connects it when the broker is reachable.
        outbox: The :class:`Outbox` whose commits should wake the relay.
        service: Label for metrics and logs.
        batch_size: Rows published per pass.
        poll_interval: Seconds between passes when nothing wakes the relay.
        backoff: Pauses between failed passes (a pass is retried until it works).
        ack_timeout: Seconds a pass waits for the broker's acknowledgements before it
            gives up and reconnects (a broker restarted mid-send may never answer).
    """

    def __init__(
        self,
        *,
        database: Database,
        publisher: Publisher,
        outbox: Outbox | None = None,
        service: str = "service",
        batch_size: int = 500,
        poll_interval: float = 1.0,
        backoff: Backoff = RECONNECT,
        ack_timeout: float = 10.0,
    ) -> None:
        self.database = database
        self.publisher = publisher
        self.service = service
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.backoff = backoff
        self.ack_timeout = ack_timeout
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        if outbox is not None:
            outbox.on_commit(self.wake)

    def wake(self) -> None:
        """Ask for a pass now."""
        self._wake.set()

    async def start(self) -> None:
        """Start the relay loop in the background (it never waits for the broker here)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"outbox-relay:{self.service}")

    async def stop(self) -> None:
        """Stop the loop; rows not yet published stay in the table for the next start."""
        task, self._task = self._task, None
        await cancel_and_wait(task)

    async def pending(self) -> int:
        """Rows waiting in the outbox."""
        async with self.database.session() as session:
            return int(
                (await session.execute(select(func.count()).select_from(outbox))).scalar_one()
            )

    async def _run(self) -> None:
        on_retry = logged(log, "outbox relay pass failed; retrying", service=self.service)
        while True:
            published = await self.backoff.call(self._pass, on_retry=on_retry)
            if published < self.batch_size:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.poll_interval)
                self._wake.clear()

    async def _pass(self) -> int:
        try:
            if not self.publisher.started:
                await self.publisher.start()
                log.info("outbox relay connected", extra={"service": self.service})
            return await self.relay_once()
        except Exception:
            OUTBOX_ERRORS.labels(self.service).inc()
            # Reconnect from scratch next pass: a restarted broker may have lost the
            # topics (tansu keeps them in memory) and the producer's metadata is stale.
            with contextlib.suppress(Exception):
                await self.publisher.stop()
            raise

    async def relay_once(self) -> int:
        """Publish up to ``batch_size`` rows and delete them; return how many were published."""
        async with self.database.session() as session:
            # One relay per database at a time, so rows of one key are published in order.
            if not await lock_for_transaction(session, "bus.outbox-relay", wait=False):
                return 0  # another replica is relaying; it keeps the order
            rows = (
                await session.execute(
                    select(
                        outbox.c.id, outbox.c.topic, outbox.c.key, outbox.c.value, outbox.c.headers
                    )
                    .order_by(outbox.c.id)
                    .limit(self.batch_size)
                )
            ).all()
            OUTBOX_PENDING.labels(self.service).set(len(rows))
            if not rows:
                return 0
            futures = [await self.publisher.send_record(_record(row)) for row in rows]
            await asyncio.wait_for(asyncio.gather(*futures), self.ack_timeout)
            await session.execute(delete(outbox).where(outbox.c.id.in_([row.id for row in rows])))
        OUTBOX_PUBLISHED.labels(self.service).inc(len(rows))
        return len(rows)
