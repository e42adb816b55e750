"""The monitor's use cases, shared by the stream processor and the REST API.

Predictions are added to tumbling windows in memory; closed windows go through one queue
to a single worker, which decides drift with Evidently (in a thread), stores the result,
and publishes ``drift.detected`` / ``drift.cleared`` through the outbox when the version's
drift state changes. Labels joined with their predictions fill performance windows the
same way.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd  # type: ignore[import-untyped]
from prometheus_client import Counter, Histogram

from driftloop.common.v1.common_pb2 import EventRef, ModelRef, Record, Window
from driftloop.monitor.v1 import events_pb2 as monitor_events
from driftloop.registry.v1 import events_pb2 as registry_events
from driftloop.serving.v1 import events_pb2 as serving_events
from driftloop_bus.outbox import Outbox
from driftloop_bus.tasks import cancel_and_wait
from driftloop_events.envelope import CloudEvent
from driftloop_events.values import value_to_python
from driftloop_kit.errors import InvalidInput, NotFound
from driftloop_monitor.adapters.references import ReferenceSource
from driftloop_monitor.adapters.reports import ReportFiles
from driftloop_monitor.adapters.store import MonitorStore, VersionState
from driftloop_monitor.domain import drift
from driftloop_monitor.domain.drift import DriftDecision, ReferenceSet
from driftloop_monitor.domain.performance import PerformanceResult, evaluate
from driftloop_monitor.domain.policy import MonitorPolicy
from driftloop_monitor.domain.windows import ClosedWindow, VersionKey, Windows, window_id

log = logging.getLogger(__name__)

PREDICTIONS = Counter(
    "driftloop_monitor_prediction_rows_total", "Input rows added to windows.", ["model"]
)
WINDOWS = Counter(
    "driftloop_monitor_windows_total",
    "Closed windows by outcome (tested, drift, no_reference, too_small).",
    ["model", "status"],
)
UNREFERENCED = Counter(
    "driftloop_monitor_unreferenced_rows_total",
    "Prediction rows of versions without reference data (counted, not tested).",
    ["model", "version"],
)
LABELS = Counter(
    "driftloop_monitor_labels_total", "Labels by outcome (joined, unmatched).", ["outcome"]
)
DECISION_SECONDS = Histogram(
    "driftloop_monitor_drift_decision_seconds", "Time of one window's drift decision."
)

#: The output fields read as "the prediction", in order of preference.
PREDICTION_FIELDS = ("prediction", "label", "predicted", "value", "score")


class MalformedRecord(ValueError):
    """A record that can never be handled (it goes to the dead-letter topic)."""


@dataclass
class _PerformanceWindow:
    start: datetime
    run_id: str
    truth: list[Any] = field(default_factory=list)
    predicted: list[Any] = field(default_factory=list)
    last: datetime | None = None


@dataclass
class _PerformanceJob:
    key: VersionKey
    window: _PerformanceWindow


def prediction_value(outputs: dict[str, Any]) -> Any:
    """The predicted value of one output row."""
    for name in PREDICTION_FIELDS:
        if name in outputs:
            return outputs[name]
    if len(outputs) == 1:
        return next(iter(outputs.values()))
    return None


_SCALARS = frozenset({"double_value", "int64_value", "string_value", "bool_value"})


def _row(record: Record) -> dict[str, Any]:
    """A Record as a dict; scalars without a function call each (the hot path)."""
    row: dict[str, Any] = {}
    for name, value in record.fields.items():
        kind = value.WhichOneof("kind")
        row[name] = getattr(value, kind) if kind in _SCALARS else value_to_python(value)
    return row


def _request_time(event: CloudEvent[serving_events.PredictionLogged]) -> datetime:
    stamp = event.data.request_time
    if not stamp.seconds and not stamp.nanos:
        return event.time
    return datetime.fromtimestamp(stamp.seconds + stamp.nanos / 1e9, UTC)


def _frame_and_decide(
    rows: list[dict[str, Any]], reference: ReferenceSet, policy: MonitorPolicy
) -> tuple[pd.DataFrame, DriftDecision]:
    """The window as a frame, and its decision (in a worker thread)."""
    current = drift.current_frame(rows, reference)
    started = time.perf_counter()
    decision = drift.decide(reference, current, policy)
    DECISION_SECONDS.observe(time.perf_counter() - started)
    return current, decision


def _now() -> datetime:
    return datetime.now(UTC)


class Monitor:
    """The monitor's state and use cases.

    Args:
        store: The SQL store.
        outbox: Events go out with the change that causes them.
        files: HTML reports and kept windows.
        references: Where reference data comes from on ``alias.set``.
        base_url: Prefix of report links.
        window_rows: Default rows per window.
        window_seconds: Default seconds per window.
        clock: Returns now (tests pass a fake one).
        policy_ttl: Seconds a cached policy is used before it is read again.
    """

    def __init__(
        self,
        *,
        store: MonitorStore,
        outbox: Outbox,
        files: ReportFiles,
        references: ReferenceSource,
        base_url: str,
        window_rows: int = 1000,
        window_seconds: float = 3600.0,
        clock: Callable[[], datetime] = _now,
        policy_ttl: float = 2.0,
        queue_size: int = 32,
    ) -> None:
        self.store = store
        self.outbox = outbox
        self.files = files
        self.references = references
        self.base_url = base_url.rstrip("/")
        self.window_rows = window_rows
        self.window_seconds = window_seconds
        self.clock = clock
        self.policy_ttl = policy_ttl
        self.windows = Windows()
        self._performance: dict[VersionKey, _PerformanceWindow] = {}
        self._policies: dict[str, tuple[float, MonitorPolicy]] = {}
        self._references: dict[VersionKey, ReferenceSet] = {}
        self._queue: asyncio.Queue[ClosedWindow | _PerformanceJob] = asyncio.Queue(queue_size)
        self._worker: asyncio.Task[None] | None = None
        self._warm_up: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        self._busy = 0
        self._counters: dict[str, Any] = {}
        self._states: dict[VersionKey, VersionState] = {}

    # -- lifecycle ---------------------------------------------------------------

    async def start(self) -> None:
        """Start the worker that decides closed windows."""
        if self._worker is None:
            self._worker = asyncio.create_task(self._work(), name="monitor-worker")
            # Importing Evidently takes seconds (tens on a busy machine): start it now,
            # off the loop, without holding the service's start-up back. The first
            # decision waits for the import if it is not done yet.
            self._warm_up = asyncio.create_task(
                asyncio.to_thread(drift.warm_up), name="monitor-warm-up"
            )

    async def stop(self) -> None:
        """Stop the worker; windows still open are lost (see the README of the service)."""
        task, self._worker = self._worker, None
        await cancel_and_wait(task)

    async def drain(self, timeout: float = 60.0) -> None:
        """Wait until every queued window has been decided (tests, shutdown)."""
        async with asyncio.timeout(timeout):
            while self._busy or not self._queue.empty():
                self._idle.clear()
                await self._idle.wait()

    # -- policies ----------------------------------------------------------------

    async def policy(self, model: str) -> MonitorPolicy:
        """The model's policy (cached for ``policy_ttl`` seconds), or the default one."""
        cached = self._policies.get(model)
        now = time.monotonic()
        if cached is not None and now - cached[0] < self.policy_ttl:
            return cached[1]
        policy = await self.store.get_policy(model) or MonitorPolicy()
        self._policies[model] = (now, policy)
        return policy

    def forget_policy(self, model: str) -> None:
        """Drop a cached policy (after a change through the API)."""
        self._policies.pop(model, None)

    # -- predictions -------------------------------------------------------------

    async def on_prediction(self, event: CloudEvent[serving_events.PredictionLogged]) -> None:
        """Add a prediction's input rows to its version's window.

        Raises:
            MalformedRecord: No model, no version or no inputs.
        """
        p = event.data
        if not p.model.name or p.model.version <= 0:
            raise MalformedRecord("prediction without a model name and version")
        if not p.inputs:
            raise MalformedRecord("prediction without inputs")
        rows = [_row(record) for record in p.inputs]
        at = _request_time(event)
        key = VersionKey(p.model.name, p.model.version)
        policy = await self.policy(key.model)
        closed = self.windows.add(
            key,
            run_id=p.model.run_id,
            time=at,
            rows=rows,
            max_rows=policy.rows_limit(self.window_rows),
            max_seconds=policy.seconds_limit(self.window_seconds),
            now=self.clock(),
        )
        counter = self._counters.get(key.model)
        if counter is None:  # .labels() on every event is measurable at 10,000 events/s
            counter = self._counters[key.model] = PREDICTIONS.labels(key.model)
        counter.inc(len(rows))
        for window in closed:
            await self._enqueue(window)

    @staticmethod
    def joinable(event: CloudEvent[serving_events.PredictionLogged]) -> dict[str, Any] | None:
        """What waits for the label of a single-row prediction (None for batch requests)."""
        p = event.data
        if len(p.outputs) != 1:
            return None
        predicted = prediction_value(_row(p.outputs[0]))
        if predicted is None or isinstance(predicted, bytes | list):
            return None
        at = _request_time(event)
        return {
            "model": p.model.name,
            "version": p.model.version,
            "run_id": p.model.run_id,
            "prediction": predicted if not isinstance(predicted, datetime) else str(predicted),
            "time": at.timestamp(),
        }

    async def tick(self, grace: float = 0.0) -> None:
        """Close the windows whose time is up (called every second)."""
        for window in self.windows.expired(self.clock(), grace):
            await self._enqueue(window)

    async def flush(self) -> None:
        """Close every open window now (tests)."""
        for window in self.windows.flush():
            await self._enqueue(window)
        for key in list(self._performance):
            await self._enqueue(_PerformanceJob(key, self._performance.pop(key)))

    async def _enqueue(self, job: ClosedWindow | _PerformanceJob) -> None:
        self._idle.clear()
        await self._queue.put(job)  # bounded: a slow worker slows the stream down

    # -- labels ------------------------------------------------------------------

    async def on_label(
        self, event: CloudEvent[monitor_events.LabelRecorded], pending: list[dict[str, Any]]
    ) -> int:
        """Join a label with the predictions waiting for it; return how many joined.

        Raises:
            MalformedRecord: No request id or no ground truth.
        """
        label = event.data
        if not label.request_id or not label.HasField("ground_truth"):
            raise MalformedRecord("label without a request id or ground truth")
        truth = value_to_python(label.ground_truth)
        if truth is None:
            raise MalformedRecord("label with a null ground truth")
        joined = 0
        for entry in pending:
            if label.model_name and entry["model"] != label.model_name:
                continue
            key = VersionKey(entry["model"], int(entry["version"]))
            at = datetime.fromtimestamp(float(entry["time"]), UTC)
            window = self._performance.get(key)
            if window is None:
                window = self._performance[key] = _PerformanceWindow(
                    start=at, run_id=entry["run_id"]
                )
            window.truth.append(truth)
            window.predicted.append(entry["prediction"])
            window.last = max(window.last or at, at)
            window.start = min(window.start, at)
            joined += 1
            policy = await self.policy(key.model)
            if len(window.truth) >= policy.performance_window_rows:
                await self._enqueue(_PerformanceJob(key, self._performance.pop(key)))
        LABELS.labels("joined" if joined else "unmatched").inc()
        return joined

    # -- alias moves -------------------------------------------------------------

    async def on_alias_set(self, event: CloudEvent[registry_events.AliasSet]) -> None:
        """A version became champion: fetch its reference data unless it has some already.

        Idempotent by nature: a version that has reference data is left alone, so a
        redelivered event has no second effect (and no transaction is held during the fetch).
        """
        moved = event.data
        if moved.alias != "champion" or not moved.name or moved.version <= 0:
            return
        if await self.store.reference_digest(moved.name, moved.version) is not None:
            return
        fetched = await self.references.fetch(
            model=moved.name, version=moved.version, run_id=moved.run_id, source=moved.source
        )
        if fetched is None:
            log.info(
                "no reference data found for the new champion; upload it through the API",
                extra={"model": moved.name, "version": moved.version},
            )
            return
        data, location = fetched
        reference = await asyncio.to_thread(drift.make_reference, data, source=location)
        await self.store.put_reference(moved.name, moved.version, reference)
        log.info(
            "reference data loaded",
            extra={"model": moved.name, "version": moved.version, "source": location},
        )

    # -- reference data ----------------------------------------------------------

    async def put_reference(
        self, model: str, version: int, data: pd.DataFrame, *, source: str = "upload"
    ) -> ReferenceSet:
        """Create or replace a version's reference data (REST upload)."""
        policy = await self.store.get_policy(model) or MonitorPolicy()
        try:
            reference = await asyncio.to_thread(
                drift.make_reference, data, overrides=policy.column_types, source=source
            )
        except ValueError as error:
            raise InvalidInput(str(error)) from None
        if not reference.column_types:
            raise InvalidInput("no column of the reference data can be tested for drift")
        await self.store.put_reference(model, version, reference)
        self._references.pop(VersionKey(model, version), None)
        return reference

    async def reference(self, key: VersionKey) -> ReferenceSet | None:
        """The version's reference data, cached while its digest stays the same."""
        digest = await self.store.reference_digest(key.model, key.version)
        cached = self._references.get(key)
        if digest is None:
            self._references.pop(key, None)
            return None
        if cached is not None and cached.digest == digest:
            return cached
        loaded = await self.store.get_reference(key.model, key.version)
        if loaded is not None:
            self._references[key] = loaded
        return loaded

    # -- the worker --------------------------------------------------------------

    async def _work(self) -> None:
        while True:
            job = await self._queue.get()
            self._busy += 1
            try:
                if isinstance(job, ClosedWindow):
                    await self.decide_window(job)
                else:
                    await self.decide_performance(job.key, job.window)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("window could not be decided; it is dropped")
                self._states.clear()  # read back what was stored
            finally:
                self._busy -= 1
                if self._queue.empty() and not self._busy:
                    self._idle.set()

    async def _state(self, key: VersionKey) -> VersionState:
        # Only the worker writes a version's state, one window at a time: read it once.
        state = self._states.get(key)
        if state is None:
            async with self.store.session() as session:
                state = await self.store.version_state(
                    session, model=key.model, version=key.version
                )
            self._states[key] = state
        return state

    async def decide_window(self, window: ClosedWindow) -> dict[str, Any]:
        """Decide one closed window, store the result, publish a state change."""
        key = window.key
        policy = await self.policy(key.model)
        reference = await self.reference(key)
        decision: DriftDecision | None = None
        current: pd.DataFrame | None = None
        if reference is None:
            status = "no_reference"
            UNREFERENCED.labels(key.model, str(key.version)).inc(len(window.rows))
        elif len(window.rows) < policy.min_window_rows and window.closed_by != "rows":
            status = "too_small"
        else:
            current, decided = await asyncio.to_thread(
                _frame_and_decide, window.rows, reference, policy
            )
            decision = decided
            status = "drift" if decided.dataset_drift else "tested"
        WINDOWS.labels(key.model, status).inc()

        state = await self._state(key)
        state.windows += 1
        state.rows += len(window.rows)
        if status == "no_reference":
            state.unreferenced_rows += len(window.rows)
            state.unreferenced_windows += 1
        event: CloudEvent[Any] | None = None
        if decision is not None:
            event = self._drift_event(window, decision, state, reference)
        # The report of a window that alerts is made before the event goes out, so the
        # link in the event always works. It takes seconds, in a thread.
        report_id = None
        if event is not None and reference is not None and current is not None:
            report_id = event.data.report_id
            body, html = await asyncio.to_thread(drift.full_report, reference, current, policy)
            await self.files.write_html(report_id, html)
        if current is not None and reference is not None:
            self.files.keep_window(str(key), window.id, current)

        result = {
            "model_name": key.model,
            "version": key.version,
            "run_id": window.run_id,
            "window_id": window.id,
            "start_time": window.start,
            "end_time": window.end,
            "rows": len(window.rows),
            "status": status,
            "drift_share": decision.share if decision else 0.0,
            "dataset_drift_threshold": policy.drift_share,
            "dataset_drift": bool(decision and decision.dataset_drift),
            "columns": [c.as_dict() for c in decision.columns] if decision else [],
            "skipped": decision.skipped if decision else {},
            "reference_digest": reference.digest if reference else "",
            "report_id": report_id,
            "event_type": event.type if event else None,
            "event_id": event.id if event else None,
        }
        async with self.store.session() as session:
            await self.store.add_drift_result(session, **result)
            if report_id is not None:
                await self.store.add_report(
                    session,
                    report_id=report_id,
                    kind="drift",
                    model=key.model,
                    version=key.version,
                    window_id=window.id,
                    body=body,
                    has_html=True,
                )
            await self.store.save_state(session, state=state)
            if event is not None:
                await self.outbox.add(session, event)
        return result

    def _drift_event(
        self,
        window: ClosedWindow,
        decision: DriftDecision,
        state: VersionState,
        reference: ReferenceSet | None,
    ) -> CloudEvent[Any] | None:
        """drift.detected when a version starts drifting, drift.cleared when it stops."""
        if decision.dataset_drift == state.drifted:
            return None
        report_id = f"rep-{secrets.token_hex(8)}"
        model = ModelRef(name=window.key.model, version=window.key.version, run_id=window.run_id)
        bounds = Window(id=window.id, rows=len(window.rows))
        bounds.start_time.FromDatetime(window.start)
        bounds.end_time.FromDatetime(window.end)
        now = self.clock()
        if decision.dataset_drift:
            detected = monitor_events.DriftDetected(
                model=model,
                window=bounds,
                columns=[
                    monitor_events.ColumnDrift(
                        column=c.column,
                        column_type=_COLUMN_TYPES[c.column_type],
                        stattest=c.stattest,
                        score=c.score,
                        threshold=c.threshold,
                        drifted=c.drifted,
                    )
                    for c in decision.columns
                ],
                drift_share=decision.share,
                dataset_drift_threshold=decision.drift_share,
                report_id=report_id,
                report_url=f"{self.base_url}/reports/{report_id}",
                reference_digest=reference.digest if reference else "",
            )
            detected.detect_time.FromDatetime(now)
            event: CloudEvent[Any] = CloudEvent.new(detected, time=now)
            state.drifted = True
            state.detected_event_id = event.id
            return event
        cleared = monitor_events.DriftCleared(
            model=model,
            window=bounds,
            drift_share=decision.share,
            dataset_drift_threshold=decision.drift_share,
            report_id=report_id,
            report_url=f"{self.base_url}/reports/{report_id}",
            cleared_event=EventRef(
                id=state.detected_event_id or "",
                type="driftloop.monitor.drift.detected",
                source="/driftloop/monitor",
            ),
        )
        cleared.clear_time.FromDatetime(now)
        state.drifted = False
        state.detected_event_id = None
        return CloudEvent.new(cleared, time=now)

    async def decide_performance(self, key: VersionKey, window: _PerformanceWindow) -> None:
        """Compute a performance window's metric; ``performance.degraded`` when it is worse."""
        policy = await self.policy(key.model)
        result: PerformanceResult | None = None
        if policy.performance_metric is not None and policy.performance_threshold is not None:
            try:
                result = await asyncio.to_thread(
                    evaluate,
                    policy.performance_metric,
                    policy.performance_threshold,
                    window.truth,
                    window.predicted,
                )
            except (TypeError, ValueError) as error:
                log.warning(
                    "performance metric failed", extra={"model": str(key), "error": str(error)}
                )
        last = window.last or window.start
        wid = window_id(key, window.start)
        end = last + timedelta(microseconds=1)
        state = await self._state(key)
        async with self.store.session() as session:
            state.labelled_rows += len(window.truth)
            await self.store.save_state(session, state=state)
            if result is None:
                return
            event = None
            report_id = None
            if result.degraded:
                report_id = f"perf-{secrets.token_hex(8)}"
                bounds = Window(id=wid, rows=result.rows)
                bounds.start_time.FromDatetime(window.start)
                bounds.end_time.FromDatetime(end)
                degraded = monitor_events.PerformanceDegraded(
                    model=ModelRef(name=key.model, version=key.version, run_id=window.run_id),
                    metric=result.metric,
                    value=result.value,
                    threshold=result.threshold,
                    higher_is_better=result.higher_is_better,
                    window=bounds,
                    labelled_rows=result.rows,
                    report_id=report_id,
                    report_url=f"{self.base_url}/reports/{report_id}",
                )
                now = self.clock()
                degraded.detect_time.FromDatetime(now)
                event = CloudEvent.new(degraded, time=now)
                await self.store.add_report(
                    session,
                    report_id=report_id,
                    kind="performance",
                    model=key.model,
                    version=key.version,
                    window_id=wid,
                    body=_performance_body(key, wid, window, result),
                    has_html=False,
                )
            await self.store.add_performance_result(
                session,
                model_name=key.model,
                version=key.version,
                run_id=window.run_id,
                window_id=wid,
                start_time=window.start,
                end_time=end,
                rows=result.rows,
                metric=result.metric,
                value=result.value,
                threshold=result.threshold,
                degraded=result.degraded,
                report_id=report_id,
                event_id=event.id if event else None,
            )
            if event is not None:
                await self.outbox.add(session, event)

    # -- reports on request ------------------------------------------------------

    async def report_for_window(self, window: str) -> str:
        """Make (or find) the full Evidently report of a decided window; return its id.

        Raises:
            NotFound: No such window, or its data is no longer kept.
        """
        result = await self.store.drift_result(window)
        if result is None:
            raise NotFound(f"no window {window!r}")
        if result["report_id"]:
            return str(result["report_id"])
        key = VersionKey(result["model_name"], int(result["version"]))
        reference = await self.reference(key)
        current = self.files.window(window)
        if reference is None or current is None:
            raise NotFound(
                f"the data of window {window!r} is no longer kept (or it had no reference)"
            )
        policy = await self.policy(key.model)
        body, html = await asyncio.to_thread(drift.full_report, reference, current, policy)
        report_id = f"rep-{secrets.token_hex(8)}"
        await self.files.write_html(report_id, html)
        async with self.store.session() as session:
            await self.store.add_report(
                session,
                report_id=report_id,
                kind="drift",
                model=key.model,
                version=key.version,
                window_id=window,
                body=body,
                has_html=True,
            )
            await self.store.attach_report(session, window_id=window, report_id=report_id)
        return report_id

    def open_windows(self) -> dict[str, int]:
        """Rows waiting in each version's open window."""
        return {str(key): rows for key, rows in self.windows.open_rows()}


_COLUMN_TYPES = {
    "num": monitor_events.COLUMN_TYPE_NUMERICAL,
    "cat": monitor_events.COLUMN_TYPE_CATEGORICAL,
    "text": monitor_events.COLUMN_TYPE_TEXT,
}


def _performance_body(
    key: VersionKey, wid: str, window: _PerformanceWindow, result: PerformanceResult
) -> str:
    import json

    return json.dumps(
        {
            "kind": "performance",
            "model_name": key.model,
            "version": key.version,
            "window_id": wid,
            "metric": result.metric,
            "value": result.value,
            "threshold": result.threshold,
            "higher_is_better": result.higher_is_better,
            "degraded": result.degraded,
            "labelled_rows": result.rows,
        }
    )
