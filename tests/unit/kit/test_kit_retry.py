"""The one retry primitive: its schedule, its give-up and what it never retries."""

from __future__ import annotations

import asyncio
import sqlite3
from typing import Any

import pytest

from driftloop_kit.retry import HANDLER, RECONNECT, REPORT, Backoff, GaveUp, is_outage

pytestmark = pytest.mark.unit

FAST = Backoff(initial=0.001, maximum=0.004)


class Flaky:
    """Fails ``failures`` times, then answers ``"ok"``."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise ConnectionError(f"down (call {self.calls})")
        return "ok"

    async def async_call(self) -> str:
        return self()


def test_the_schedule_doubles_from_initial_and_stops_growing_at_maximum() -> None:
    schedule = Backoff(initial=0.1, maximum=1.0)
    assert [schedule.delay(n) for n in range(1, 7)] == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0])
    assert [REPORT.delay(n) for n in range(1, 5)] == [2.0, 4.0, 8.0, 16.0]


async def test_a_call_that_works_at_once_is_called_once() -> None:
    flaky = Flaky(0)
    assert await HANDLER.call(flaky.async_call) == "ok"
    assert flaky.calls == 1


async def test_a_failing_call_is_retried_until_it_works_and_each_failure_is_reported() -> None:
    flaky, seen = Flaky(3), []
    result = await FAST.call(flaky.async_call, on_retry=lambda e, n: seen.append((str(e), n)))
    assert result == "ok"
    assert flaky.calls == 4
    assert seen == [("down (call 1)", 1), ("down (call 2)", 2), ("down (call 3)", 3)]


async def test_attempts_run_out_with_gave_up_naming_the_count_and_the_last_error() -> None:
    flaky = Flaky(10)
    with pytest.raises(GaveUp) as failure:
        await FAST.with_(attempts=3).call(flaky.async_call)
    assert flaky.calls == 3
    assert failure.value.attempts == 3
    assert str(failure.value.last) == "down (call 3)"
    assert failure.value.__cause__ is failure.value.last


async def test_one_attempt_means_no_retry() -> None:
    flaky = Flaky(1)
    with pytest.raises(GaveUp) as failure:
        await FAST.with_(attempts=1).call(flaky.async_call)
    assert (flaky.calls, failure.value.attempts) == (1, 1)


async def test_a_cancelled_call_is_never_retried() -> None:
    calls = 0

    async def cancelled() -> None:
        nonlocal calls
        calls += 1
        raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        await RECONNECT.call(cancelled)
    assert calls == 1


def test_the_blocking_variant_keeps_the_same_promises() -> None:
    flaky = Flaky(2)
    assert FAST.call_sync(flaky) == "ok"
    assert flaky.calls == 3
    with pytest.raises(GaveUp) as failure:
        FAST.with_(attempts=2).call_sync(Flaky(5))
    assert failure.value.attempts == 2


@pytest.mark.parametrize(
    "changes",
    [{"initial": -1.0}, {"initial": 2.0, "maximum": 1.0}, {"multiplier": 0.5}, {"attempts": 0}],
)
def test_a_schedule_that_makes_no_sense_is_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"backoff|attempts"):
        Backoff(**changes)


async def test_retry_if_tries_outages_again_and_ends_at_the_first_other_error() -> None:
    errors: list[Exception] = [ConnectionError("away"), ConnectionError("away"), KeyError("bug")]
    calls = 0

    async def work() -> str:
        nonlocal calls
        calls += 1
        raise errors[calls - 1]

    with pytest.raises(GaveUp) as gave_up:
        await FAST.call(work, retry_if=is_outage)

    assert calls == 3
    assert isinstance(gave_up.value.last, KeyError)
    assert gave_up.value.attempts == 3


def test_an_outage_is_a_dependency_away_not_a_bug() -> None:
    from sqlalchemy import exc

    locked = exc.OperationalError("INSERT", {}, sqlite3.OperationalError("database is locked"))
    no_table = exc.OperationalError("SELECT", {}, sqlite3.OperationalError("no such table: x"))

    assert [is_outage(e) for e in (locked, no_table, ConnectionRefusedError(), ValueError())] == [
        True,
        False,
        True,
        False,
    ]
