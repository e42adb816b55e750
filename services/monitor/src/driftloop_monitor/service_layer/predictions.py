"""Predictions into windows: each version's input rows fill tumbling windows.

Rows keep their values' types (strings, booleans, integers, doubles); a row whose value
does not fit the kind of its column in the version's reference data makes the whole
record malformed (it goes to the dead-letter topic, none of its rows into a window).

A closed window goes to the :class:`~driftloop_monitor.service_layer.worker.Worker`
queue; the queue is bounded, so a slow worker slows the stream down.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from prometheus_client import Counter

from driftloop.common.v1.common_pb2 import Record, Value
from driftloop.serving.v1 import events_pb2 as serving_events
from driftloop_events.envelope import CloudEvent
from driftloop_events.values import value_to_python
from driftloop_monitor.domain.columns import ColumnKinds, MistypedRow, check_rows
from driftloop_monitor.domain.policy import MonitorPolicy
from driftloop_monitor.domain.windows import (
    ClosedWindow,
    RowChunk,
    VersionKey,
    Windows,
    utc_now,
)
from driftloop_monitor.service_layer.journal import StateJournal
from driftloop_monitor.service_layer.policies import Policies

__all__ = [
    "PREDICTION_FIELDS",
    "MalformedRecord",
    "PredictionWindows",
    "joinable",
    "prediction_value",
    "request_time",
]

PREDICTIONS = Counter(
    "driftloop_monitor_prediction_rows_total", "Input rows added to windows.", ["model"]
)

#: The output fields read as "the prediction", in order of preference.
PREDICTION_FIELDS = ("prediction", "label", "predicted", "value", "score")

_SCALARS = frozenset({"double_value", "int64_value", "string_value", "bool_value"})


class MalformedRecord(ValueError):
    """A record that can never be handled (it goes to the dead-letter topic)."""


def prediction_value(outputs: Mapping[str, Any]) -> Any:
    """The predicted value of one output row (its Python values, or a Record's fields)."""
    for name in PREDICTION_FIELDS:
        if name in outputs:
            return outputs[name]
    if len(outputs) == 1:
        return next(iter(outputs.values()))
    return None


def row(record: Record) -> dict[str, Any]:
    """A Record as a dict; scalars without a function call each (the hot path)."""
    values: dict[str, Any] = {}
    fields = record.fields
    for name in fields:  # not .items(): a generic Mapping view, slower on protobuf maps
        value = fields[name]
        kind = value.WhichOneof("kind")
        values[name] = getattr(value, kind) if kind in _SCALARS else value_to_python(value)
    return values


def row_value(value: Value) -> Any:
    """One value of a Record as Python (a scalar without a function call)."""
    kind = value.WhichOneof("kind")
    return getattr(value, kind) if kind in _SCALARS else value_to_python(value)


def request_time(event: CloudEvent[serving_events.PredictionLogged]) -> datetime:
    """When the prediction was asked for (the event's time when the producer left it out)."""
    stamp = event.data.request_time
    if not stamp.seconds and not stamp.nanos:
        return event.time
    return datetime.fromtimestamp(stamp.seconds + stamp.nanos / 1e9, UTC)


def joinable(event: CloudEvent[serving_events.PredictionLogged]) -> dict[str, Any] | None:
    """What waits for the label of a single-row prediction (None for batch requests)."""
    p = event.data
    if len(p.outputs) != 1:
        return None
    # The one value read, not the whole output row: this runs for every prediction.
    found = prediction_value(p.outputs[0].fields)
    predicted = None if found is None else row_value(found)
    if predicted is None or isinstance(predicted, bytes | list):
        return None
    return {
        "model": p.model.name,
        "version": p.model.version,
        "run_id": p.model.run_id,
        "prediction": predicted if not isinstance(predicted, datetime) else str(predicted),
        "time": request_time(event).timestamp(),
    }


def _rows(
    event: CloudEvent[serving_events.PredictionLogged],
) -> tuple[VersionKey, list[dict[str, Any]]]:
    """A prediction's version and input rows.

    Raises:
        MalformedRecord: No model, no version or no inputs.
    """
    p = event.data
    if not p.model.name or p.model.version <= 0:
        raise MalformedRecord("prediction without a model name and version")
    if not p.inputs:
        raise MalformedRecord("prediction without inputs")
    return VersionKey(p.model.name, p.model.version), [row(record) for record in p.inputs]


def _check(rows: list[dict[str, Any]], kinds: ColumnKinds | None) -> None:
    """Refuse rows whose values do not fit their column (unchecked without kinds).

    Raises:
        MalformedRecord: Naming the row, the column, its kind and the value.
    """
    if kinds:
        try:
            check_rows(rows, kinds)
        except MistypedRow as error:
            raise MalformedRecord(str(error)) from None


class PredictionWindows:
    """Adds predictions' input rows to their version's window; closes windows.

    Args:
        policies: Each model's window size.
        enqueue: Hands a closed window to the worker (waits while its queue is full).
        window_rows: Default rows per window.
        window_seconds: Default seconds per window.
        clock: Returns now (tests pass a fake one).
        kinds: The kinds of a version's columns (from its reference data), None when
            unknown: rows are then taken as they come.
        journal: Where the rows added are noted for the durable stream engine (None:
            windows live in memory only).
    """

    def __init__(
        self,
        *,
        policies: Policies,
        enqueue: Callable[[ClosedWindow], Awaitable[None]],
        window_rows: int = 1000,
        window_seconds: float = 3600.0,
        clock: Callable[[], datetime] = utc_now,
        kinds: Callable[[VersionKey], Awaitable[ColumnKinds | None]] | None = None,
        journal: StateJournal | None = None,
    ) -> None:
        self.policies = policies
        self.journal = journal
        self.enqueue = enqueue
        self.kinds = kinds
        self.window_rows = window_rows
        self.window_seconds = window_seconds
        self.clock = clock
        self.windows = Windows()
        self._counters: dict[str, Any] = {}

    async def on_prediction(self, event: CloudEvent[serving_events.PredictionLogged]) -> None:
        """Add a prediction's input rows to its version's window.

        Raises:
            MalformedRecord: No model, no version or no inputs, or a value that does not
                fit its column.
        """
        key, rows = _rows(event)
        _check(rows, await self.kinds(key) if self.kinds is not None else None)
        policy = await self.policies.get(key.model)
        closed = self._add(event, key, rows, policy, self.clock())
        self._counter(key.model).inc(len(rows))
        for window in closed:
            await self.enqueue(window)

    async def on_predictions(self, events: list[CloudEvent[Any]]) -> list[int]:
        """Add the input rows of a batch of predictions (one partition's, in order), as
        :meth:`on_prediction` does for each, with each version's column kinds and policy
        looked up once per batch and the clock read once.

        Returns:
            The indices of the events left out: those :meth:`on_prediction` refuses
            (:class:`MalformedRecord`, with why) and events of another type.

        Raises:
            Exception: Only from those lookups (a database away), before any row is added.
        """
        left: list[int] = []
        taken: list[tuple[int, CloudEvent[Any], VersionKey, list[dict[str, Any]]]] = []
        for index, event in enumerate(events):
            if not isinstance(event.data, serving_events.PredictionLogged):
                left.append(index)
                continue
            try:
                taken.append((index, event, *_rows(event)))
            except MalformedRecord:
                left.append(index)
        versions = {key for _, _, key, _ in taken}
        kinds = {key: await self.kinds(key) for key in versions} if self.kinds is not None else {}
        policies = {model: await self.policies.get(model) for model in {k.model for k in versions}}
        now = self.clock()
        counts: dict[str, int] = dict.fromkeys(policies, 0)
        for index, event, key, rows in taken:
            try:
                _check(rows, kinds.get(key))
            except MalformedRecord:
                left.append(index)
                continue
            for window in self._add(event, key, rows, policies[key.model], now):
                await self.enqueue(window)
            counts[key.model] += len(rows)
        for model, count in counts.items():
            self._counter(model).inc(count)
        return sorted(left)

    def _add(
        self,
        event: CloudEvent[serving_events.PredictionLogged],
        key: VersionKey,
        rows: list[dict[str, Any]],
        policy: MonitorPolicy,
        now: datetime,
    ) -> list[ClosedWindow]:
        """Put checked rows into their version's window; return the windows they close."""
        placed: list[tuple[str, int]] | None = [] if self.journal is not None else None
        at = request_time(event)
        closed = self.windows.add(
            key,
            run_id=event.data.model.run_id,
            time=at,
            rows=rows,
            max_rows=policy.rows_limit(self.window_rows),
            max_seconds=policy.seconds_limit(self.window_seconds),
            now=now,
            traceparent=event.traceparent,
            seed=event.id,
            placed=placed,
        )
        if self.journal is not None and placed:
            self._note(
                self.journal,
                key=key,
                event=event,
                stamp=at.timestamp(),
                seen=now.timestamp(),
                placed=placed,
                rows=rows,
            )
        return closed

    def _counter(self, model: str) -> Any:
        counter = self._counters.get(model)
        if counter is None:  # one .labels() per model, not one per event (the hot path)
            counter = self._counters[model] = PREDICTIONS.labels(model)
        return counter

    @staticmethod
    def _note(
        journal: StateJournal,
        *,
        key: VersionKey,
        event: CloudEvent[serving_events.PredictionLogged],
        stamp: float,
        seen: float,
        placed: list[tuple[str, int]],
        rows: list[dict[str, Any]],
    ) -> None:
        """Add the rows to their window's chunk of this batch in the journal."""
        chunks = journal.changes.windows
        run_id, traceparent = event.data.model.run_id, event.traceparent
        for (window, position), values in zip(placed, rows, strict=True):
            chunk = chunks.get(window)
            if chunk is None:
                chunks[window] = RowChunk(
                    window_id=window,
                    position=position,
                    partition=journal.partition,
                    key=key,
                    run_id=run_id,
                    start=stamp,
                    last=stamp,
                    seen=seen,
                    rows=[values],
                    traceparent=traceparent,
                )
                continue
            chunk.rows.append(values)
            chunk.last = stamp
            chunk.traceparent = traceparent
            if run_id:
                chunk.run_id = run_id

    async def tick(self, grace: float = 0.0) -> None:
        """Close the windows whose time is up (called every second)."""
        for window in self.windows.expired(self.clock(), grace):
            await self.enqueue(window)

    async def version_replaced(self, key: VersionKey) -> None:
        """``key`` stopped being served under its alias: its open window closes at once,
        not when ``window_seconds`` runs out (its last rows are decided now)."""
        window = self.windows.close(key)
        if window is not None:
            await self.enqueue(window)

    async def flush(self) -> None:
        """Close every open window now (tests)."""
        for window in self.windows.flush():
            await self.enqueue(window)

    async def restore(self, stored: list[RowChunk]) -> list[ClosedWindow]:
        """Rebuild the windows of stored chunks (``monitor_window_chunks``); return those
        already closed but not decided (full ones, or past their time)."""
        by_window: dict[str, list[RowChunk]] = {}
        for chunk in stored:
            by_window.setdefault(chunk.window_id, []).append(chunk)
        windows = [sorted(chunks, key=lambda c: c.position) for chunks in by_window.values()]
        closed: list[ClosedWindow] = []
        for chunks in sorted(windows, key=lambda chunks: (chunks[0].start, chunks[0].window_id)):
            first, last = chunks[0], chunks[-1]
            policy = await self.policies.get(first.key.model)
            rows = [row for chunk in chunks for row in chunk.rows]
            closed += self.windows.restore(
                first.key,
                window_id=first.window_id,
                run_id=last.run_id,
                start=datetime.fromtimestamp(first.start, UTC),
                last=datetime.fromtimestamp(last.last, UTC),
                rows=rows,
                opened=datetime.fromtimestamp(min(c.seen for c in chunks), UTC),
                seconds=policy.seconds_limit(self.window_seconds),
                full=len(rows) >= policy.rows_limit(self.window_rows),
                traceparent=last.traceparent,
            )
        return closed

    def reset(self) -> None:
        """Forget every open window (its partitions went to another replica)."""
        self.windows = Windows()

    def open_windows(self) -> dict[str, int]:
        """Rows waiting in each version's open window."""
        return {str(key): rows for key, rows in self.windows.open_rows()}
