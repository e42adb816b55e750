"""The label join: single-row predictions wait for their label, then fill performance windows.

A prediction waits (in a :class:`~driftloop_monitor.service_layer.ports.WaitingPredictionsPort`:
memory for the ``bus`` engine, a faust table for ``faust``) under its request id for
``label_ttl`` seconds; a label with that request id joins every prediction waiting for it
(of its model, when it names one). Joined pairs go into the version's performance window,
which the worker decides once it holds the policy's ``performance_window_rows``.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from prometheus_client import Counter

from driftloop.monitor.v1 import events_pb2 as monitor_events
from driftloop.serving.v1 import events_pb2 as serving_events
from driftloop_events.envelope import CloudEvent
from driftloop_events.values import value_to_python
from driftloop_monitor.domain.performance import PerformanceJob, PerformanceWindow
from driftloop_monitor.domain.windows import VersionKey, window_id
from driftloop_monitor.service_layer.journal import StateJournal
from driftloop_monitor.service_layer.policies import Policies
from driftloop_monitor.service_layer.ports import WaitingPredictionsPort
from driftloop_monitor.service_layer.predictions import MalformedRecord, joinable

__all__ = ["LabelJoin"]

LABELS = Counter(
    "driftloop_monitor_labels_total", "Labels by outcome (joined, unmatched).", ["outcome"]
)


class LabelJoin:
    """Keeps single-row predictions until their label comes; joins them.

    Waiting predictions older than ``label_ttl`` are removed as predictions flow.

    Args:
        waiting: Where predictions wait.
        policies: Each model's performance window size.
        enqueue: Hands a full performance window to the worker.
        label_ttl: Seconds a prediction waits for its label.
        journal: Where waiting and joined predictions are noted for the durable stream
            engine (None: they live in ``waiting`` only).
    """

    def __init__(
        self,
        *,
        waiting: WaitingPredictionsPort,
        policies: Policies,
        enqueue: Callable[[PerformanceJob], Awaitable[None]],
        label_ttl: float = 86_400.0,
        journal: StateJournal | None = None,
    ) -> None:
        self.journal = journal
        self.waiting = waiting
        self.policies = policies
        self.enqueue = enqueue
        self.label_ttl = label_ttl
        self._expiry: collections.deque[tuple[float, bytes]] = collections.deque()
        self._performance: dict[VersionKey, PerformanceWindow] = {}

    def remember(self, event: CloudEvent[serving_events.PredictionLogged]) -> None:
        """Let a single-row prediction wait for its label (batch predictions do not)."""
        entry = joinable(event)
        if entry is None:
            return
        request_id = event.data.request_id
        key = request_id.encode()
        waiting = self.waiting.get(key)
        # A redelivered prediction must not wait twice.
        if not any(_same(w, entry) for w in waiting):
            # Expiry runs on the clock from when the prediction was seen, so replayed
            # predictions with old event times still wait for their labels.
            expires = entry["expires"] = time.time() + self.label_ttl
            entry["id"] = event.id
            self._expiry.append((expires, key))
            if self.journal is not None:
                entry["partition"] = self.journal.partition
                self.journal.changes.pending.append({**entry, "request_id": request_id})
            waiting.append(entry)
            self.waiting.put(key, waiting)
        if self._expiry and self._expiry[0][0] <= time.time():
            self._expire()

    async def on_label(self, event: CloudEvent[monitor_events.LabelRecorded]) -> int:
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
        key = label.request_id.encode()
        joined = 0
        for entry in self.waiting.get(key):
            if label.model_name and entry["model"] != label.model_name:
                continue
            await self._add(entry, truth, label.request_id)
            joined += 1
        LABELS.labels("joined" if joined else "unmatched").inc()
        if joined:
            self.waiting.drop(key)
        return joined

    async def _add(self, entry: dict[str, Any], truth: Any, request_id: str) -> None:
        key = VersionKey(entry["model"], int(entry["version"]))
        at = datetime.fromtimestamp(float(entry["time"]), UTC)
        window = self._performance.get(key)
        if window is None:
            seed = entry.get("id") if self.journal is not None else None
            window = self._performance[key] = PerformanceWindow(
                start=at, run_id=entry["run_id"], id=window_id(key, at, seed) if seed else None
            )
        window.add(truth, entry["prediction"], at)
        if self.journal is not None:
            self.journal.changes.joined.append(
                {
                    "event_id": entry["id"],
                    "request_id": request_id,
                    "partition": entry.get("partition", self.journal.partition),
                    "model_name": key.model,
                    "version": key.version,
                    "run_id": entry["run_id"],
                    "prediction": entry["prediction"],
                    "time": float(entry["time"]),
                    "expires": float(entry["expires"]),
                    "truth": truth,
                    "perf_window": window.id,
                    "decided": False,
                }
            )
        policy = await self.policies.get(key.model)
        if len(window.truth) >= policy.performance_window_rows:
            await self.enqueue(PerformanceJob(key, self._performance.pop(key)))

    async def flush(self) -> None:
        """Hand every performance window to the worker now (tests)."""
        for key in list(self._performance):
            await self.enqueue(PerformanceJob(key, self._performance.pop(key)))

    async def restore(self, stored: list[dict[str, Any]]) -> list[PerformanceJob]:
        """Put back stored predictions (waiting ones with ``perf_window`` None, joined
        ones with their ``truth``): waiting ones wait again, joined ones fill their
        performance window; return the full windows."""
        windows: dict[str, tuple[VersionKey, PerformanceWindow]] = {}
        for found in sorted(stored, key=lambda r: r["time"]):
            key = VersionKey(found["model_name"], int(found["version"]))
            at = datetime.fromtimestamp(float(found["time"]), UTC)
            if found["perf_window"] is None:
                entry = {
                    "model": key.model,
                    "version": key.version,
                    "run_id": found["run_id"],
                    "prediction": found["prediction"],
                    "time": found["time"],
                    "expires": found["expires"],
                    "id": found["event_id"],
                    "partition": found["partition"],
                }
                request = found["request_id"].encode()
                self.waiting.put(request, [*self.waiting.get(request), entry])
                self._expiry.append((found["expires"], request))
                continue
            wid = found["perf_window"]
            if wid not in windows:
                windows[wid] = (key, PerformanceWindow(start=at, run_id=found["run_id"], id=wid))
            windows[wid][1].add(found["truth"], found["prediction"], at)
        full: list[PerformanceJob] = []
        for key, window in windows.values():
            policy = await self.policies.get(key.model)
            if len(window.truth) >= policy.performance_window_rows or key in self._performance:
                full.append(PerformanceJob(key, window))
            else:
                self._performance[key] = window
        return full

    def reset(self) -> None:
        """Forget what waits in memory (its partitions went to another replica)."""
        for _, key in self._expiry:
            self.waiting.drop(key)
        self._expiry.clear()
        self._performance.clear()

    def _expire(self, limit: int = 100) -> None:
        now = time.time()
        for _ in range(limit):
            if not self._expiry or self._expiry[0][0] > now:
                return
            _, key = self._expiry.popleft()
            waiting = self.waiting.get(key)
            if waiting and all(w.get("expires", 0.0) <= now for w in waiting):
                self.waiting.drop(key)


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return all(a[name] == b[name] for name in ("model", "version", "time"))
