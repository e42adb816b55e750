"""Monitor benchmark: events/s through one monitor process, and one drift decision's time.

Two parts, each printing figures next to its peer's from the same run:

- **stream**: prediction records with 20 features (one row, one output each) are put on
  ``predictions`` of a fresh embedded tansu broker; then, alternated, a raw aiokafka
  consumer reads them all (the peer: the cost of the records alone, no work) and one
  ``driftloop run monitor`` process (pinned to core 0; the broker and this process on
  core 1) consumes them: windows of 1000 rows decided against a 5,000-row reference,
  single-row predictions kept for their labels. Its rate is read from its ``/metrics``
  (``driftloop_monitor_prediction_rows_total``) from the first to the last record.
- **decision**: one drift decision for a 1000x20 window against a 5,000-row reference
  (driftloop: Evidently's per-column stattests, ``decide()``), next to Evidently's own
  ``DataDriftPreset`` report on the same window (the peer, evidently 0.7.23 installed by
  this script in its own virtual environment), alternated A B A B after a warm-up; the
  per-column verdicts of both are compared.

Usage::

    .venv/bin/python bench/monitor.py [--events N] [--rounds R] [--part stream|decision|all]

It prints figures and a summary line per part; it never fails on a time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pandas as pd
from _common import (
    LOADGEN_CORE,
    SERVER_CORE,
    Pairs,
    environment_line,
    median,
    pin_this_process,
    summary_line,
    taskset_prefix,
)
from aiokafka import AIOKafkaConsumer

from driftloop.common.v1.common_pb2 import ModelRef
from driftloop.serving.v1 import events_pb2 as serving
from driftloop_bus.embedded import EmbeddedBroker, free_port
from driftloop_bus.publisher import Publisher
from driftloop_events.envelope import CloudEvent
from driftloop_events.topics import all_topics
from driftloop_events.values import make_record

ROOT = Path(__file__).resolve().parent.parent
EVIDENTLY = "0.7.23"
PEER_VENV = ROOT / ".tools" / "bench" / f"evidently-{EVIDENTLY}"
MODEL = "bench-model"
FEATURES = 20
SHIFTED = ["f0", "f1", "f2", "c0", "c1"]
TARGET_RATE = 10_000
TARGET_DECISION_MS = 50.0


# --- data -------------------------------------------------------------------------------


def dataset(rows: int, *, seed: int, shifted: tuple[str, ...] = ()) -> pd.DataFrame:
    """16 normal numerical columns and 4 categorical ones; ``shifted`` columns moved."""
    rng = np.random.default_rng(seed)
    data: dict[str, object] = {}
    for i in range(FEATURES - 4):
        name = f"f{i}"
        data[name] = rng.normal(loc=1.0 if name in shifted else 0.0, size=rows)
    for i in range(4):
        name = f"c{i}"
        levels = ["a", "b", "c", "d"]
        p = [0.7, 0.1, 0.1, 0.1] if name in shifted else None
        data[name] = rng.choice(levels, size=rows, p=p)
    return pd.DataFrame(data)


# --- the peer's environment -------------------------------------------------------------

PEER_SCRIPT = r"""
import json, sys, time, warnings
warnings.filterwarnings("ignore")
import pandas as pd
from evidently import Dataset, Report
from evidently.presets import DataDriftPreset
reference = pd.read_parquet(sys.argv[1])
current = pd.read_parquet(sys.argv[2])
print("ready", flush=True)
for line in sys.stdin:
    start = time.perf_counter()
    snapshot = Report([DataDriftPreset()], include_tests=True).run(
        Dataset.from_pandas(current), Dataset.from_pandas(reference)
    )
    seconds = time.perf_counter() - start
    drifted = sorted(
        t["metric_config"]["params"]["column"]
        for t in snapshot.dict()["tests"]
        if t["status"] == "FAIL" and "column" in t["metric_config"]["params"]
    )
    print(json.dumps({"seconds": seconds, "drifted": drifted}), flush=True)
"""


def peer_python() -> tuple[str, str]:
    """The interpreter of the peer's own virtual environment (created on first use)."""
    python = PEER_VENV / "bin" / "python"
    uv = shutil.which("uv") or str(ROOT / ".tools" / "bin" / "uv")
    if not python.exists():
        print(f"installing evidently=={EVIDENTLY} into {PEER_VENV} ...", flush=True)
        try:
            subprocess.run([uv, "venv", "--quiet", "--python", "3.11", str(PEER_VENV)], check=True)
            subprocess.run(
                [
                    uv,
                    "pip",
                    "install",
                    "--quiet",
                    "--python",
                    str(python),
                    f"evidently=={EVIDENTLY}",
                    # evidently 0.7.23 imports a helper that pandas 3 removed.
                    "pandas<3",
                    "pyarrow",
                ],
                check=True,
            )
        except (OSError, subprocess.CalledProcessError) as error:
            shutil.rmtree(PEER_VENV, ignore_errors=True)
            print(f"  could not build the peer's environment ({error}); using driftloop's")
            return sys.executable, "driftloop's .venv (fallback)"
    return str(python), str(PEER_VENV)


class PeerReport:
    """A long-lived peer process: each ``run()`` makes one DataDriftPreset report."""

    def __init__(self, python: str, reference: Path, current: Path) -> None:
        command = [
            *taskset_prefix(SERVER_CORE),
            python,
            "-c",
            PEER_SCRIPT,
            str(reference),
            str(current),
        ]
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if line.strip() != "ready":
            raise RuntimeError(f"the peer did not start: {line!r}")

    def run(self) -> dict[str, object]:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.write("run\n")
        self.process.stdin.flush()
        result: dict[str, object] = json.loads(self.process.stdout.readline())
        return result

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(timeout=30)


def bench_decision(rounds: int) -> None:
    """Time driftloop's decision and Evidently's report on the same 1000x20 window."""
    from driftloop_monitor.domain.drift import decide, make_reference
    from driftloop_monitor.domain.policy import MonitorPolicy

    reference_data = dataset(5000, seed=1)
    current = dataset(1000, seed=2, shifted=tuple(SHIFTED))
    python, where = peer_python()
    print(
        f"\n[decision] 1000x20 window vs 5,000-row reference; peer: evidently {EVIDENTLY} "
        f"DataDriftPreset report in {where}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        ref_path, cur_path = Path(tmp) / "reference.parquet", Path(tmp) / "current.parquet"
        reference_data.to_parquet(ref_path)
        current.to_parquet(cur_path)
        peer = PeerReport(python, ref_path, cur_path)
        try:
            reference = make_reference(reference_data)
            policy = MonitorPolicy()

            def ours() -> tuple[float, list[str]]:
                start = time.perf_counter()
                decision = decide(reference, current, policy)
                seconds = time.perf_counter() - start
                return seconds, sorted(c.column for c in decision.drifted_columns)

            print("warm-up:")
            warm_peer, warm_ours = peer.run(), ours()
            print(
                f"  evidently report {warm_peer['seconds']:.3f} s | driftloop "
                f"{warm_ours[0] * 1000:.1f} ms"
            )
            pairs = Pairs()
            same = True
            for round_no in range(1, rounds + 1):
                theirs = peer.run()
                pairs.peer.append(float(theirs["seconds"]))  # type: ignore[arg-type]
                seconds, drifted = ours()
                pairs.ours.append(seconds)
                same = same and drifted == theirs["drifted"]
                print(
                    f"  round {round_no}: evidently report {pairs.peer[-1]:.3f} s | "
                    f"driftloop decision {seconds * 1000:.1f} ms | speed-up "
                    f"{pairs.peer[-1] / seconds:.0f}x | drifted {drifted}"
                )
        finally:
            peer.close()
    speedups = [p / o for p, o in zip(pairs.peer, pairs.ours, strict=True)]
    print(f"per-column verdicts equal to the report's in every round: {'yes' if same else 'NO'}")
    print(
        summary_line(
            "monitor decision",
            ours=f"{median(pairs.ours) * 1000:.1f} ms per window",
            peer=f"evidently DataDriftPreset report {median(pairs.peer):.2f} s",
            ratio=median(speedups),
            target=f"<= {TARGET_DECISION_MS:.0f} ms per window",
        )
        + " (ratio = how many times faster)"
    )


# --- the stream -------------------------------------------------------------------------


def prediction_events(count: int) -> list[CloudEvent[serving.PredictionLogged]]:
    """``count`` single-row predictions of one model version, 20 features each."""
    rows = dataset(min(count, 20_000), seed=3).to_dict("records")
    start = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    model = ModelRef(name=MODEL, version=1, run_id="c" * 32)
    events = []
    for i in range(count):
        message = serving.PredictionLogged(
            request_id=f"req-{i:010d}",
            model=model,
            alias="champion",
            route=serving.ROUTE_CHAMPION,
            inputs=[make_record(rows[i % len(rows)])],
            outputs=[make_record({"prediction": i % 3})],
            latency_ms=1.0,
        )
        message.request_time.FromDatetime(start + timedelta(milliseconds=i))
        events.append(CloudEvent.new(message))
    return events


async def prefill(bootstrap: str, events: list[CloudEvent[serving.PredictionLogged]]) -> None:
    # The declared partitions (6), as the monitor's faust table expects of its source.
    publisher = Publisher(
        bootstrap, client_id="bench-monitor-load", linger_ms=20, topics=all_topics()
    )
    await publisher.start()
    try:
        futures = [await publisher.publish(event) for event in events]
        await asyncio.gather(*futures)
    finally:
        await publisher.stop()


async def raw_consume(bootstrap: str, count: int) -> float:
    """The peer: a consumer group reading the records and doing nothing with them."""
    consumer = AIOKafkaConsumer(
        "predictions",
        bootstrap_servers=bootstrap,
        group_id=f"bench-raw-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_poll_records=500,
    )
    await consumer.start()
    try:
        seen = 0
        first = None
        while seen < count:
            batches = await consumer.getmany(timeout_ms=1000)
            for records in batches.values():
                if first is None:
                    first = time.perf_counter()
                seen += len(records)
            if batches:
                await consumer.commit()
        assert first is not None
        return count / (time.perf_counter() - first)
    finally:
        await consumer.stop()


def _counter(url: str, name: str, *, labels: bool = True) -> float:
    with urllib.request.urlopen(f"{url}/metrics", timeout=60) as response:
        text = response.read().decode()
    total = 0.0
    pattern = rf"^{name}\{{[^}}]*\}} ([0-9.e+]+)$" if labels else rf"^{name} ([0-9.e+]+)$"
    for match in re.finditer(pattern, text, re.MULTILINE):
        total += float(match.group(1))
    return total


@contextmanager
def monitor_process(bootstrap: str, home: Path, engine: str) -> Iterator[str]:
    """``driftloop run monitor`` on core 0, with a 5,000-row reference for the version."""
    from driftloop_kit.db import Database
    from driftloop_kit.migrations import upgrade
    from driftloop_monitor.adapters.store import MonitorStore
    from driftloop_monitor.domain.drift import make_reference
    from driftloop_monitor.entrypoints.app import MIGRATIONS

    database_url = f"sqlite:///{home / 'monitor.db'}"
    upgrade(database_url, MIGRATIONS)

    async def load_reference() -> None:
        database = Database(database_url)
        try:
            await MonitorStore(database).put_reference(
                MODEL, 1, make_reference(dataset(5000, seed=1))
            )
        finally:
            await database.dispose()

    asyncio.run(load_reference())
    port = free_port()
    env = {
        **os.environ,
        "DRIFTLOOP_MONITOR_HOME": str(home),
        "DRIFTLOOP_MONITOR_DATABASE_URL": database_url,
        "DRIFTLOOP_MONITOR_PORT": str(port),
        "DRIFTLOOP_MONITOR_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "DRIFTLOOP_MONITOR_CONSUMER_GROUP": f"bench-monitor-{uuid.uuid4().hex[:8]}",
        "DRIFTLOOP_MONITOR_LOG_LEVEL": "WARNING",
        "DRIFTLOOP_MONITOR_STREAM_ENGINE": engine,
    }
    command = [
        *taskset_prefix(SERVER_CORE),
        str(ROOT / ".venv" / "bin" / "driftloop"),
        "run",
        "monitor",
    ]
    log_path = home / "monitor.log"
    log = log_path.open("wb")  # a file, not a pipe: a full pipe would stall the monitor
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"monitor exited: {log_path.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{url}/readyz", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            time.sleep(0.2)
        else:
            raise RuntimeError("monitor did not become ready in 120 s")
        try:
            yield url
        except Exception:
            print(f"monitor log (last lines):\n{log_path.read_text()[-3000:]}")
            raise
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def monitor_rate(url: str, count: int, timeout: float = 300.0) -> tuple[float, float, float]:
    """Events/s from the first record counted until every record is in a decided window.

    The clock stops when all ``count`` rows were added to windows and the
    ``count // 1000`` full windows have been decided and stored. Also returns the windows
    closed and the mean time of a decision inside the service (ms).
    """
    rows_metric = "driftloop_monitor_prediction_rows_total"
    windows_metric = "driftloop_monitor_windows_total"
    first_seen = last_seen = None
    start_count = 0.0
    windows = 0.0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        seen = _counter(url, rows_metric)
        now = time.perf_counter()
        if seen > 0 and first_seen is None:
            first_seen, start_count = now, seen
        if seen >= count:
            windows = _counter(url, windows_metric)
            if windows >= count // 1000:
                last_seen = time.perf_counter()
                break
        time.sleep(0.05)
    if first_seen is None or last_seen is None or last_seen == first_seen:
        raise RuntimeError("the monitor did not consume every record in time")
    decisions = _counter(url, "driftloop_monitor_drift_decision_seconds_count", labels=False)
    decision_seconds = _counter(url, "driftloop_monitor_drift_decision_seconds_sum", labels=False)
    mean_ms = 1000 * decision_seconds / decisions if decisions else float("nan")
    return (count - start_count) / (last_seen - first_seen), windows, mean_ms


def bench_stream(events: int, rounds: int, engines: list[str]) -> None:
    """Alternate the raw consumer and each monitor engine on the same pre-filled topic."""
    print(
        f"\n[stream] {events} predictions (1 row x {FEATURES} features, 1 output) per run; "
        "monitor: 1000-row windows vs a 5,000-row reference, predictions kept for labels; "
        f"engines {', '.join(engines)}; peer: a raw aiokafka consumer group doing nothing"
    )
    load = prediction_events(events)
    peer: list[float] = []
    ours: dict[str, list[float]] = {engine: [] for engine in engines}
    for round_no in range(1, rounds + 1):
        broker = EmbeddedBroker()
        broker.start()
        try:
            asyncio.run(prefill(broker.bootstrap_servers, load))
            peer.append(asyncio.run(raw_consume(broker.bootstrap_servers, events)))
            line = f"  round {round_no}: raw aiokafka {peer[-1]:8.0f} rec/s"
            for engine in engines:
                with (
                    tempfile.TemporaryDirectory() as tmp,
                    monitor_process(broker.bootstrap_servers, Path(tmp), engine) as url,
                ):
                    rate, windows, decision_ms = monitor_rate(url, events)
                ours[engine].append(rate)
                line += (
                    f" | monitor ({engine}) {rate:7.0f} ev/s, {windows:.0f} windows, "
                    f"{decision_ms:.0f} ms/decision"
                )
            print(line, flush=True)
        finally:
            broker.stop()
    for engine in engines:
        pairs = Pairs(peer=peer, ours=ours[engine])
        print(
            summary_line(
                f"monitor stream ({engine} engine)",
                ours=f"{pairs.ours_median:.0f} ev/s",
                peer=f"raw aiokafka consumer {pairs.peer_median:.0f} rec/s",
                ratio=pairs.ratio,
                target=f">= {TARGET_RATE} ev/s",
            )
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--part", choices=["stream", "decision", "all"], default="all")
    parser.add_argument("--engine", choices=["faust", "bus", "both"], default="both")
    args = parser.parse_args()
    pinned = pin_this_process(LOADGEN_CORE)
    print(
        "monitor benchmark: events/s through one monitor process; one drift decision vs "
        "Evidently's DataDriftPreset report"
    )
    print(environment_line())
    print(
        f"evidently {version('evidently')}, faust-streaming {version('faust-streaming')}; "
        f"this process: {pinned}; monitor and peer report: core {SERVER_CORE}"
    )
    if args.part in ("decision", "all"):
        bench_decision(args.rounds)
    if args.part in ("stream", "all"):
        engines = ["faust", "bus"] if args.engine == "both" else [args.engine]
        bench_stream(args.events, args.rounds, engines)


if __name__ == "__main__":
    main()
