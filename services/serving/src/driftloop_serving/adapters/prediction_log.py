"""The prediction log: every answer to the ``predictions`` topic, never in a request's way.

A request appends its encoded record to an in-memory queue and one line to the
journal, a file in the spill folder (one ``write`` to the page cache: no flush, no
await), before it is answered. A background task takes the queue with its journal
segment, sends the records in batches, waits for the broker's acknowledgement and
deletes the segment. So a process killed outright (``kill -9``, the OOM killer) loses
no answered request's record: its next start finds the segments it held and sends
them as spill files. While the broker is slow or absent, the segment of records
beyond the memory buffer, and of every generation that could not be sent, becomes a
spill file; when the broker is back, the files are sent oldest first and deleted.
Delivery is at least once (a batch that timed out may have arrived, a segment sent
in part is sent whole again): consumers deduplicate on the event id. Only a record
that can be neither sent nor written to disk is dropped, and counted.

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
import fcntl
import json
import logging
import os
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


#: A journal segment taken for sending: its descriptor (holding the lock), path, records.
_Segment = tuple[int, Path, int]


class _Journal:
    """The records a process has queued and not yet sent, one line each on disk.

    The open segment is ``<name>.open`` in the spill folder, locked (``flock``) by the
    process that writes it, so a segment found unlocked belongs to a process that is
    gone. :meth:`take` hands the current segment to the sender and starts a new one;
    :meth:`seal` turns a segment into a spill file (``<name>.jsonl``), :meth:`drop`
    deletes a sent one.
    """

    def __init__(self, folder: Path, name: Callable[[], str]) -> None:
        self.folder = folder
        self._name = name
        self._fd: int | None = None
        self._path: Path | None = None
        self._lines = 0
        #: The last error met writing, reported once until a write succeeds again.
        self._broken: OSError | None = None

    def write(self, line: bytes) -> bool:
        """Append one record's line; ``False`` (logged once) when the disk refuses it."""
        try:
            if self._fd is None:
                self._open()
            assert self._fd is not None
            os.write(self._fd, line)
        except OSError as error:
            if self._broken is None:
                log.error("prediction log: journal not written (%s); records wait in memory", error)
            self._broken = error
            return False
        self._broken = None
        self._lines += 1
        return True

    def take(self) -> _Segment | None:
        """The current segment (its descriptor, path and record count), closed to writes."""
        if self._fd is None or self._path is None:
            return None
        taken = (self._fd, self._path, self._lines)
        self._fd, self._path, self._lines = None, None, 0
        return taken

    def seal(self, segment: _Segment) -> int:
        """Make a taken segment a spill file; the records it holds."""
        fd, path, lines = segment
        path.rename(path.with_suffix(".jsonl"))
        os.close(fd)
        return lines

    @staticmethod
    def drop(segment: _Segment) -> None:
        """Delete a taken segment whose records were all acknowledged."""
        fd, path, _ = segment
        path.unlink(missing_ok=True)
        os.close(fd)

    def adopt_orphans(self) -> int:
        """Seal the segments of processes that are gone (unlocked); how many."""
        adopted = 0
        for path in sorted(self.folder.glob("*.open")):
            if path == self._path:
                continue
            try:
                fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)  # a live process writes it
                continue
            path.rename(path.with_suffix(".jsonl"))
            os.close(fd)
            adopted += 1
        return adopted

    def close(self) -> None:
        """Close the open segment: deleted if empty, else left for the next start to send."""
        if self._fd is not None and self._path is not None:
            if self._lines == 0:
                self._path.unlink(missing_ok=True)
            os.close(self._fd)
        self._fd, self._path, self._lines = None, None, 0

    def _open(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{self._name()}.open"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self._fd, self._path, self._lines = fd, path, 0


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
        self._journal = _Journal(spill_dir, self._file_name)

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
        self._journal.write(_dump([record]).encode())
        self._queue.append(record)
        if len(self._queue) >= self.batch_size:
            self._wake.set()

    # -- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        """Start sending in the background (a missing broker is waited for, not raised)."""
        self.spill_dir.mkdir(parents=True, exist_ok=True)
        adopted = self._journal.adopt_orphans()
        if adopted:
            log.warning(
                "prediction log: %d journal segment(s) of a process that stopped without "
                "sending them; they are sent as spill files",
                adopted,
            )
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
        self._spill_queue()
        await self._disconnect()
        self._journal.close()

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
            # The queue and its journal segment are taken together (no await between):
            # what requests append meanwhile goes to the next generation.
            records = list(self._queue)
            self._queue.clear()
            segment = self._journal.take()
            try:
                for start in range(0, len(records), self.batch_size):
                    await self._send(records[start : start + self.batch_size])
            except BaseException:
                self._spill_generation(records, segment)
                raise
            if segment is not None:
                _Journal.drop(segment)

    def _spill_queue(self) -> None:
        if self._queue:
            records = list(self._queue)
            self._queue.clear()
            self._spill_generation(records, self._journal.take())

    def _spill_generation(self, records: list[KafkaRecord], segment: _Segment | None) -> None:
        """Keep unsent records on disk: their journal segment when it holds them all."""
        if segment is not None and segment[2] == len(records):
            with contextlib.suppress(OSError):
                _SPILLED.inc(self._journal.seal(segment))
                SPILLED_FILES.inc()
                return
        self._spill(records)  # some were not journaled (the disk refused): write them now
        if segment is not None:
            with contextlib.suppress(OSError):
                _Journal.drop(segment)

    # -- spill files -------------------------------------------------------------------

    def _spill_files(self) -> list[Path]:
        return sorted(self.spill_dir.glob("*.jsonl"))

    def _file_name(self) -> str:
        """A new spill or journal file's name: files sort in the order they were made."""
        self._spill_seq += 1
        return f"{time.time_ns():020d}-{self._spill_seq:06d}"

    def _spill(self, records: list[KafkaRecord]) -> None:
        name = self._file_name()
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
