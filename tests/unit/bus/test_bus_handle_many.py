"""The Dispatcher's batch path: one call for a topic's batch, the rest one by one."""

from __future__ import annotations

from typing import Any

import pytest

from driftloop.common.v1.common_pb2 import ModelRef
from driftloop.serving.v1 import events_pb2 as serving
from driftloop_bus.consumer import Dispatcher
from driftloop_bus.deadletter import Delivered
from driftloop_events.envelope import CloudEvent, to_record
from driftloop_kit.errors import InvalidInput
from driftloop_kit.retry import Backoff
from tests.fakes.features import FakeDispatcherDeadLetters

pytestmark = pytest.mark.unit


def _message(offset: int, request_id: str) -> Delivered:
    event = CloudEvent.new(
        serving.PredictionLogged(request_id=request_id, model=ModelRef(name="m", version=1))
    )
    record = to_record(event)
    return Delivered("predictions", 0, offset, record.key, record.value, record.headers)


class Handlers:
    """A one-by-one handler that refuses ``bad`` requests, and a batch handler."""

    def __init__(self, *, batch_fails: bool = False) -> None:
        self.one_by_one: list[str] = []
        self.batches: list[list[str]] = []
        self.batch_fails = batch_fails

    async def handle(self, event: CloudEvent[Any]) -> None:
        if event.data.request_id == "bad":
            raise InvalidInput("a bad prediction")
        self.one_by_one.append(event.data.request_id)

    async def batch(self, events: list[CloudEvent[Any]]) -> list[int]:
        if self.batch_fails:
            raise ConnectionError("the database is away")
        ids = [e.data.request_id for e in events]
        self.batches.append(ids)
        return [i for i, request in enumerate(ids) if request == "bad"]


def _dispatcher(handlers: Handlers) -> tuple[Dispatcher, FakeDispatcherDeadLetters]:
    dead = FakeDispatcherDeadLetters()
    dispatcher = Dispatcher(
        handlers={serving.PredictionLogged: [handlers.handle]},
        dead_letters=dead,
        retry=Backoff(attempts=2, initial=0.0),
    )
    return dispatcher, dead


async def test_a_batch_goes_to_the_batch_handler_and_what_it_leaves_one_by_one() -> None:
    handlers = Handlers()
    dispatcher, dead = _dispatcher(handlers)
    undecodable = Delivered("predictions", 0, 2, b"m", b"\xff", [("ce_type", b"nonsense")])
    messages = [_message(0, "a"), _message(1, "bad"), undecodable, _message(3, "b")]

    await dispatcher.handle_many(messages, handlers.batch)

    assert handlers.batches == [["a", "bad", "b"]]  # decodable ones, in order, at once
    assert handlers.one_by_one == []  # "bad" was left and refused one by one
    assert [offset for offset, _ in dead.sent] == [2, 1]
    assert "a bad prediction" in dead.sent[1][1]


async def test_a_failing_batch_handler_hands_every_event_to_the_one_by_one_path() -> None:
    handlers = Handlers(batch_fails=True)
    dispatcher, dead = _dispatcher(handlers)

    await dispatcher.handle_many(
        [_message(0, "a"), _message(1, "bad"), _message(2, "b")], handlers.batch
    )

    assert handlers.one_by_one == ["a", "b"]
    assert [offset for offset, _ in dead.sent] == [1]
