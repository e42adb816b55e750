"""A dead letter the broker can never take is stored without its value, not retried
forever (the embedded broker takes any size, so Apache Kafka's refusal is played by a
publisher that raises what aiokafka raises then)."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest
from aiokafka.errors import RecordTooLargeError

from driftloop_bus.deadletter import DeadLetters, Delivered
from driftloop_bus.publisher import Publisher
from driftloop_events.envelope import KafkaRecord
from driftloop_kit.retry import Backoff

pytestmark = pytest.mark.unit


class RefusingLargeRecords:
    """Takes records of at most ``limit`` bytes, as a broker's max.message.bytes does."""

    started = True

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.stored: list[KafkaRecord] = []

    async def send_record(self, record: KafkaRecord) -> asyncio.Future[Any]:
        if len(record.value) > self.limit:
            raise RecordTooLargeError("The request included a message larger than the max")
        self.stored.append(record)
        done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


async def test_a_dead_letter_too_large_for_the_broker_is_stored_without_its_value() -> None:
    publisher = RefusingLargeRecords(limit=1000)
    letters = DeadLetters(
        cast(Publisher, publisher), group="g", backoff=Backoff(attempts=3, initial=0.01)
    )
    message = Delivered(
        topic="labels", partition=2, offset=41, key=b"k", value=b"x" * 5000, headers=[]
    )

    await asyncio.wait_for(
        letters.send(message, error=ValueError("undecodable"), attempts=1), timeout=5
    )

    (stored,) = publisher.stored
    headers = dict(stored.headers)
    assert stored.topic == "labels.dlq"
    assert stored.value == b""
    assert b"5000 bytes" in headers["dlq.truncated"]
    assert headers["dlq.original.offset"] == b"41"
    assert b"undecodable" in headers["dlq.error"]
