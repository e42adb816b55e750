"""Dead letters: a message that cannot be handled goes to ``<topic>.dlq``.

The dead-letter record keeps the original key, value and headers, and adds
headers that say what went wrong, so an operator can inspect it and replay it
(``driftloop_bus.deadletter.original_record`` gives back the original).
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from aiokafka.errors import MessageSizeTooLargeError, RecordTooLargeError
from prometheus_client import Counter

from driftloop_bus.publisher import Publisher
from driftloop_events.envelope import KafkaRecord
from driftloop_events.topics import dlq_topic
from driftloop_kit.retry import RECONNECT, Backoff, logged

log = logging.getLogger(__name__)

DEAD_LETTERS = Counter(
    "driftloop_dead_letters_total", "Messages sent to a dead-letter topic.", ["topic", "group"]
)
TRUNCATED = Counter(
    "driftloop_dead_letters_truncated_total",
    "Dead letters stored without their value (too large for the broker).",
    ["topic", "group"],
)

#: Prefix of the headers a dead-letter record adds to the original ones.
DLQ_HEADER_PREFIX = "dlq."
_MAX_ERROR_CHARS = 4_000


@dataclass(frozen=True)
class Delivered:
    """A message as it came off a topic (from aiokafka or faust)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes]]


def dead_letter_record(
    message: Delivered, *, error: BaseException, group: str, attempts: int
) -> KafkaRecord:
    """Build the record that carries ``message`` and ``error`` to the DLQ topic."""
    text = f"{type(error).__name__}: {error}"
    trace = "".join(traceback.format_exception(error))[-_MAX_ERROR_CHARS:]
    added = {
        "error": text[:_MAX_ERROR_CHARS],
        "error.type": f"{type(error).__module__}.{type(error).__qualname__}",
        "error.trace": trace,
        "original.topic": message.topic,
        "original.partition": str(message.partition),
        "original.offset": str(message.offset),
        "consumer.group": group,
        "attempts": str(attempts),
        "time": datetime.now(UTC).isoformat(),
    }
    headers = [(k, v) for k, v in message.headers if not k.startswith(DLQ_HEADER_PREFIX)]
    headers += [(DLQ_HEADER_PREFIX + k, v.encode()) for k, v in added.items()]
    return KafkaRecord(
        topic=dlq_topic(message.topic),
        key=message.key or b"",
        value=message.value or b"",
        headers=headers,
    )


def truncated(record: KafkaRecord) -> KafkaRecord:
    """``record`` without its value, saying so (``dlq.truncated``)."""
    note = (
        f"the original value ({len(record.value)} bytes) was too large for the dead-letter "
        "topic; it is still at dlq.original.topic/partition/offset while that topic keeps it"
    )
    headers = [*record.headers, (DLQ_HEADER_PREFIX + "truncated", note.encode())]
    return KafkaRecord(topic=record.topic, key=record.key, value=b"", headers=headers)


def original_record(dead_letter: Delivered) -> KafkaRecord:
    """The record as it was before it was dead-lettered (for a replay)."""
    headers = dict(dead_letter.headers)
    topic = headers[DLQ_HEADER_PREFIX + "original.topic"].decode()
    return KafkaRecord(
        topic=topic,
        key=dead_letter.key or b"",
        value=dead_letter.value or b"",
        headers=[(k, v) for k, v in dead_letter.headers if not k.startswith(DLQ_HEADER_PREFIX)],
    )


class DeadLetters:
    """Sends failed messages to their DLQ topic, retrying until the broker takes them.

    Moving on past a message is only safe once its dead letter is stored, so a
    failing send is retried (with backoff) rather than dropped: a broker that is away
    comes back. A dead letter the broker can never take (larger than a record may be)
    is not retried forever: it is stored without the original value, with
    ``dlq.truncated`` saying how large it was and where it still is (its topic,
    partition and offset, within that topic's retention), and counted.
    """

    def __init__(self, publisher: Publisher, *, group: str, backoff: Backoff = RECONNECT) -> None:
        self.publisher = publisher
        self.group = group
        self.backoff = backoff

    async def send(self, message: Delivered, *, error: BaseException, attempts: int) -> None:
        """Store ``message`` in ``<topic>.dlq`` with ``error`` in its headers."""
        record = dead_letter_record(message, error=error, group=self.group, attempts=attempts)
        log.warning(
            "dead-lettering message",
            extra={
                "topic": message.topic,
                "partition": message.partition,
                "offset": message.offset,
                "error": f"{type(error).__name__}: {error}",
                "attempts": attempts,
            },
        )

        async def store() -> None:
            nonlocal record
            if not self.publisher.started:
                await self.publisher.start()
            try:
                await (await self.publisher.send_record(record))
            except (MessageSizeTooLargeError, RecordTooLargeError):
                record = truncated(record)
                TRUNCATED.labels(message.topic, self.group).inc()
                log.error(
                    "dead letter too large for the broker; stored without its value",
                    extra={"topic": message.topic, "offset": message.offset},
                )
                await (await self.publisher.send_record(record))

        await self.backoff.call(
            store, on_retry=logged(log, "could not store dead letter; retrying", topic=record.topic)
        )
        DEAD_LETTERS.labels(message.topic, self.group).inc()
