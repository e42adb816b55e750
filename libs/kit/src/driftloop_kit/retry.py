"""The one retry primitive: exponential backoff, built on tenacity.

Every loop in the suite that waits and tries again (a consumer reconnecting, a handler
retried before its message is dead-lettered, the outbox relay, the dead-letter sender,
feature pushes, the monitor's stream, a training job reporting its result) uses a
:class:`Backoff` from this module, so the schedule is written once and the defaults are
in one place (:data:`HANDLER`, :data:`RECONNECT`, :data:`REPORT`).

A call that succeeds the first time costs one ``try``: tenacity is entered only after a
failure, so the hot path (a handler that works) pays nothing for the retry machinery.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import tenacity

__all__ = ["HANDLER", "RECONNECT", "REPORT", "Backoff", "GaveUp", "is_outage", "logged"]

T = TypeVar("T")

log = logging.getLogger(__name__)

#: Called before each pause with the error and the number of the attempt that failed.
OnRetry = Callable[[BaseException, int], Any]


class GaveUp(Exception):
    """Every attempt failed; ``__cause__`` is the last error."""

    def __init__(self, attempts: int, last: BaseException) -> None:
        super().__init__(f"gave up after {attempts} attempts: {type(last).__name__}: {last}")
        self.attempts = attempts
        self.last = last


@dataclass(frozen=True)
class Backoff:
    """An exponential backoff schedule: ``initial * multiplier ** (n - 1)``, at most ``maximum``.

    Args:
        initial: Seconds to wait after the first failure.
        maximum: Longest wait between attempts.
        multiplier: Growth of the wait per failed attempt.
        attempts: Attempts in all before giving up; ``None`` retries for ever (until
            cancelled), for loops that must outlive an outage.
    """

    initial: float = 0.1
    maximum: float = 5.0
    multiplier: float = 2.0
    attempts: int | None = None

    def __post_init__(self) -> None:
        if self.initial < 0 or self.maximum < self.initial or self.multiplier < 1:
            raise ValueError(f"not a backoff schedule: {self}")
        if self.attempts is not None and self.attempts < 1:
            raise ValueError("attempts must be at least 1 (or None for ever)")

    def with_(self, **changes: Any) -> Backoff:
        """A copy with some fields changed (``HANDLER.with_(attempts=5)``)."""
        return replace(self, **changes)

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        return min(self.initial * self.multiplier ** (attempt - 1), self.maximum)

    def _tenacity(
        self,
        on_retry: OnRetry | None,
        first: int,
        retry_if: Callable[[BaseException], bool] | None = None,
    ) -> dict[str, Any]:
        def before_sleep(state: tenacity.RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            if on_retry is not None and error is not None:
                on_retry(error, state.attempt_number + first)

        def wait(state: tenacity.RetryCallState) -> float:
            return self.delay(state.attempt_number + first)

        stop: Any = tenacity.stop_never
        if self.attempts is not None:
            stop = tenacity.stop_after_attempt(max(self.attempts - first, 1))
        return {
            "stop": stop,
            "wait": wait,
            # CancelledError and KeyboardInterrupt are BaseExceptions: never retried.
            "retry": tenacity.retry_if_exception(
                lambda e: isinstance(e, Exception) and (retry_if is None or retry_if(e))
            ),
            "before_sleep": before_sleep,
            "reraise": False,
        }

    async def call(
        self,
        fn: Callable[[], Awaitable[T]],
        *,
        on_retry: OnRetry | None = None,
        retry_if: Callable[[BaseException], bool] | None = None,
    ) -> T:
        """Await ``fn()`` until it succeeds, pausing by this schedule between failures.

        Args:
            fn: What is tried.
            on_retry: Called before each pause.
            retry_if: Which errors are tried again (all by default); another one ends
                the calls at once.

        Raises:
            GaveUp: ``attempts`` calls failed, or one failed with an error ``retry_if``
                refuses; the last error is its ``__cause__``.
        """
        try:
            return await fn()
        except Exception as error:
            if self.attempts == 1 or (retry_if is not None and not retry_if(error)):
                raise GaveUp(1, error) from error
            if on_retry is not None:
                on_retry(error, 1)
            first_error = error
        await asyncio.sleep(self.delay(1))
        retrying = tenacity.AsyncRetrying(**self._tenacity(on_retry, 1, retry_if))
        try:
            async for attempt in retrying:
                with attempt:
                    return await fn()
        except tenacity.RetryError as error:
            last = error.last_attempt.exception() or first_error
            raise GaveUp(error.last_attempt.attempt_number + 1, last) from last
        except Exception as error:  # one that retry_if refused
            raise GaveUp(retrying.statistics.get("attempt_number", 1) + 1, error) from error
        raise AssertionError("unreachable: tenacity returns or raises")  # pragma: no cover

    def call_sync(self, fn: Callable[[], T], *, on_retry: OnRetry | None = None) -> T:
        """:meth:`call` for blocking code (a training job's process)."""
        try:
            for attempt in tenacity.Retrying(**self._tenacity(on_retry, 0)):
                with attempt:
                    return fn()
        except tenacity.RetryError as error:
            last = error.last_attempt.exception()
            assert last is not None
            raise GaveUp(error.last_attempt.attempt_number, last) from last
        raise AssertionError("unreachable: tenacity returns or raises")  # pragma: no cover


#: What SQLite says when its file is away or held by another writer.
_SQLITE_AWAY = ("locked", "busy", "unable to open", "disk I/O")


def is_outage(error: BaseException) -> bool:
    """Whether ``error`` says something the work needs is away (a database restarting or
    locked, a service or a broker not answering), rather than that the work is wrong:
    such work waits for it instead of being given up on (dead-lettered)."""
    import httpx
    from sqlalchemy import exc

    if isinstance(error, exc.DBAPIError) and error.connection_invalidated:
        return True
    if isinstance(error, exc.OperationalError):
        if isinstance(error.orig, sqlite3.Error):
            # SQLite says OperationalError of a missing table or bad SQL too: a bug, not
            # an outage. What passes is a lock held too long or a file not there.
            return any(word in str(error.orig) for word in _SQLITE_AWAY)
        return True  # PostgreSQL: connection refused, lost, the server shutting down
    return isinstance(
        error,
        (
            exc.InterfaceError,
            exc.TimeoutError,  # no pooled connection in time
            ConnectionError,
            TimeoutError,
            httpx.TransportError,
        ),
    )


def logged(logger: logging.Logger, message: str, **extra: Any) -> OnRetry:
    """An ``on_retry`` that logs a warning with the error and the attempt number."""

    def on_retry(error: BaseException, attempt: int) -> None:
        logger.warning(
            message,
            extra={**extra, "attempt": attempt, "error": f"{type(error).__name__}: {error}"},
        )

    return on_retry


#: A handler that raises: tried three times, then its message is dead-lettered.
HANDLER = Backoff(initial=0.1, maximum=5.0, attempts=3)
#: A connection (broker, relay, dead-letter sender): tried until it works or is cancelled.
RECONNECT = Backoff(initial=0.1, maximum=5.0, attempts=None)
#: A training job reporting its outcome to the trainer: a few tries over about a minute.
REPORT = Backoff(initial=2.0, maximum=30.0, attempts=5)
