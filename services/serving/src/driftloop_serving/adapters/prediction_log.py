"""The prediction log: every answer to the ``predictions`` topic, never in a request's way.

A request only appends an encoded record to an in-memory queue (no I/O, no
await). A background task sends the queue in batches and waits for the broker's
acknowledgement. While the broker is slow or absent, records beyond the memory
buffer, and every batch that could not be sent, go to files in the spill folder;
when the broker is back, the files are sent oldest first and deleted. Delivery
is at least once (a batch that timed out may have arrived): consumers
deduplicate on the event id. Only a record that can be neither sent nor written
to disk is dropped, and counted.

Nothing a request sends can wedge the sender: a record larger than a topic record may
be (``max_record_bytes``) is refused at once and counted (``refused``); the memory
buffer never holds more than ``max_buffer`` records (beyond it they are spilled at
once); and a spill file that can never be sent (a record too large for the broker, a
file that does not parse) is moved to ``quarantine/`` beside the spill files and
counted, so the files after it still go out.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

from aiokafka.errors import MessageSizeTooLargeError, RecordTooLargeError
from prometheus_client import Counter, Gauge

from driftloop_bus.publisher import Publisher
from driftloop_events.envelope import KafkaRecord

log = logging.getLogger(__name__)

RECORDS = Counter(
    "driftloop_prediction_records_total",
    "Prediction records by outcome: sent, spilled (to disk, sent later), dropped (lost), "
    "refused (larger than a record may be), quarantined (in a spill file that cannot be sent).",
    ["outcome"],
)
SPILLED_FILES = Gauge("driftloop_prediction_spill_files", "Spill files waiting to be sent.")

# Records handed to the producer between two turns of the event loop while sending.
_YIELD_EVERY = 50

_SENT, _SPILLED, _DROPPED, _REFUSED, _QUARANTINED = (
    RECORDS.labels(o) for o in ("sent", "spilled", "dropped", "refused", "quarantined")
)

#: Errors a send of the same records will meet again: the file is quarantined.
_UNSENDABLE = (MessageSizeTooLargeError, RecordTooLargeError, ValueError, KeyError)


def _dump(records: list[KafkaRecord]) -> str:
    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    return "".join(
        json.dumps(
            {
                "t": r.topic,
                "k": b64(r.key),
                "v": b64(r.value),
                "h": [[name, b64(value)] for name, value in r.headers],
            },
            separators=(",", ":"),
        )
        + "\n"
        for r in records
    )


def _load(text: str) -> list[KafkaRecord]:
    records = []
    for line in text.splitlines():
        if not line.strip():
            continue
        item = json.loads(line)
        records.append(
            KafkaRecord(
                topic=item["t"],
                key=base64.b64decode(item["k"]),
                value=base64.b64decode(item["v"]),
                headers=[(name, base64.b64decode(value)) for name, value in item["h"]],
            )
        )
    return records


class PredictionLog:
    """Buffers, batches, sends and spills prediction records.

    The service's :class:`~driftloop_serving.service_layer.ports.PredictionLogPort`.

    Args:
        make_publisher: Builds a fresh publisher (one per connection attempt).
        spill_dir: Where records wait while the broker is away.
        max_buffer: Records held in memory before they are spilled.
        batch_size: Records per send.
        ack_timeout: Seconds to wait for a batch's acknowledgement.
        retry_interval: Seconds between reconnection attempts.
        max_record_bytes: Largest record (key, value and headers) sent; larger ones are
            refused (Kafka's default ``max.message.bytes`` is 1 MiB).
    """

    def __init__(
        self,
        make_publisher: Callable[[], Publisher],
        spill_dir: Path,
        *,
        max_buffer: int = 100_000,
        batch_size: int = 1000,
        ack_timeout: float = 10.0,
        retry_interval: float = 1.0,
        max_record_bytes: int = 1_000_000,
    ) -> None:
        self.make_publisher = make_publisher
        self.spill_dir = spill_dir
        self.max_buffer = max_buffer
        self.batch_size = batch_size
        self.ack_timeout = ack_timeout
        self.retry_interval = retry_interval
        self.max_record_bytes = max_record_bytes
        self._queue: deque[KafkaRecord] = deque()
        self._wake = asyncio.Event()
        self._publisher: Publisher | None = None
        self._task: asyncio.Task[None] | None = None
        self._spill_seq = 0

    # -- the request path ------------------------------------------------------------

    def record(self, record: KafkaRecord) -> None:
        """Queue one record; never blocks, never raises for a broker problem."""
        size = len(record.key) + len(record.value) + sum(len(k) + len(v) for k, v in record.headers)
        if size > self.max_record_bytes:
            _REFUSED.inc()
            log.warning(
                "prediction log: a %d-byte record is larger than %d; not logged",
                size,
                self.max_record_bytes,
            )
            return
        if len(self._queue) >= self.max_buffer:
            self._spill_queue()  # the bound holds whatever the sender is doing
        self._queue.append(record)
        if len(self._queue) >= self.batch_size:
            self._wake.set()

    # -- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        """Start sending in the background (a missing broker is waited for, not raised)."""
        self.spill_dir.mkdir(parents=True, exist_ok=True)
        SPILLED_FILES.set(len(self._spill_files()))
        if self._task is None:
            self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        """Send what is queued if the broker is there, spill the rest, disconnect."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._queue and self._publisher is not None:
            with contextlib.suppress(Exception):
                await self._send_queue()
        if self._queue:
            self._spill(list(self._queue))
            self._queue.clear()
        await self._disconnect()

    @property
    def pending(self) -> int:
        """Records in memory, not yet acknowledged."""
        return len(self._queue)

    def spilled(self) -> int:
        """Spill files waiting to be sent."""
        return len(self._spill_files())

    # -- the background task -----------------------------------------------------------

    async def _run(self) -> None:
        while True:
            if self._publisher is None and not await self._connect():
                self._spill_queue()
                await self._sleep(self.retry_interval)
                continue
            try:
                await self._replay_spilled()
                await self._send_queue()
            except Exception as error:  # broker gone mid-send
                log.warning("prediction log: broker unavailable (%s); spilling", error)
                await self._disconnect()
                continue
            if not self._queue:
                await self._sleep(0.05)

    async def _sleep(self, seconds: float) -> None:
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)

    async def _connect(self) -> bool:
        publisher = self.make_publisher()
        try:
            await asyncio.wait_for(publisher.start(), self.ack_timeout)
        except Exception:
            with contextlib.suppress(Exception):
                await publisher.stop()
            return False
        self._publisher = publisher
        return True

    async def _disconnect(self) -> None:
        publisher, self._publisher = self._publisher, None
        if publisher is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(publisher.stop(), self.ack_timeout)

    async def _send(self, records: list[KafkaRecord]) -> None:
        """Send a batch and wait for every acknowledgement; raises if any fails."""
        publisher = self._publisher
        assert publisher is not None
        futures = []
        for index, record in enumerate(records, 1):
            futures.append(await publisher.send_record(record))
            if index % _YIELD_EVERY == 0:
                await asyncio.sleep(0)  # let requests in between the records of a batch
        await publisher.flush()
        await asyncio.wait_for(asyncio.gather(*futures), self.ack_timeout)
        _SENT.inc(len(records))

    async def _send_queue(self) -> None:
        while self._queue:
            batch = [self._queue.popleft() for _ in range(min(self.batch_size, len(self._queue)))]
            try:
                await self._send(batch)
            except BaseException:
                self._spill(batch)
                raise

    def _spill_queue(self) -> None:
        if self._queue:
            batch = list(self._queue)
            self._queue.clear()
            self._spill(batch)

    # -- spill files -------------------------------------------------------------------

    def _spill_files(self) -> list[Path]:
        return sorted(self.spill_dir.glob("*.jsonl"))

    def _spill(self, records: list[KafkaRecord]) -> None:
        self._spill_seq += 1
        name = f"{time.time_ns():020d}-{self._spill_seq:06d}"
        temp = self.spill_dir / f".{name}.tmp"
        try:
            temp.write_text(_dump(records))
            temp.rename(self.spill_dir / f"{name}.jsonl")
        except OSError as error:
            _DROPPED.inc(len(records))
            log.error("prediction log: %d records lost, spill failed: %s", len(records), error)
            return
        _SPILLED.inc(len(records))
        SPILLED_FILES.inc()

    async def _replay_spilled(self) -> None:
        for path in self._spill_files():
            try:
                records = _load(path.read_text())
                if records:
                    await self._send(records)
            except _UNSENDABLE as error:
                self._quarantine(path, error)
                continue
            path.unlink()
            SPILLED_FILES.dec()

    def _quarantine(self, path: Path, error: BaseException) -> None:
        """Set aside a spill file no retry can send; the files after it go on."""
        folder = self.spill_dir / "quarantine"
        folder.mkdir(exist_ok=True)
        path.rename(folder / path.name)
        SPILLED_FILES.dec()
        _QUARANTINED.inc()
        log.error(
            "prediction log: spill file %s cannot be sent (%s: %s); moved to %s",
            path.name,
            type(error).__name__,
            error,
            folder,
        )
