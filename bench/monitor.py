"""Monitor benchmark: events/s through one monitor process, and one drift decision's time.

Two parts, each printing figures next to its peer's from the same run:

- **stream**: prediction records with 20 features (one row, one output each) of 6 models
  (keyed by model, 3 in partitions 0-2 of ``predictions``, 3 in 3-5) are produced into a
  fresh embedded tansu broker once 1, then 2, ``driftloop run monitor`` processes of the
  default (durable) engine have joined one consumer group over one SQLite database
  (replica 0 on core 0, replica 1 on core 1) and gone idle. Windows of 1000 rows are
  decided against a 5,000-row reference; single-row predictions are stored for their
  labels. Rates are read from the processes' ``/metrics`` from the first record produced:
  until every row is in a stored window, and until every window is decided. The peer: a
  raw aiokafka consumer group reading the same records and doing nothing.
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
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib.metadata import version
from pathlib import Path
from typing import Any

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

#: Models of the stream part: records are keyed by model, so models are what replicas split.
MODELS = 6


def model_names(count: int = MODELS) -> list[str]:
    """``count`` model names, half of them in partitions 0-2 of ``predictions``, half in
    3-5 (the range assignment gives each of two replicas one half)."""
    from aiokafka.partitioner import DefaultPartitioner

    partitions = list(range(6))
    partitioner = DefaultPartitioner()
    low: list[str] = []
    high: list[str] = []
    i = 0
    while len(low) < count // 2 or len(high) < count - count // 2:
        name = f"{MODEL}-{i}"
        side = low if partitioner(name.encode(), partitions, partitions) < 3 else high
        if len(side) < (count // 2 if side is low else count - count // 2):
            side.append(name)
        i += 1
    return low + high


def prediction_events(count: int, models: list[str]) -> list[CloudEvent[serving.PredictionLogged]]:
    """``count`` single-row predictions, 20 features each, spread over ``models``."""
    rows = dataset(min(count, 20_000), seed=3).to_dict("records")
    start = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    refs = [ModelRef(name=m, version=1, run_id="c" * 32) for m in models]
    events = []
    for i in range(count):
        message = serving.PredictionLogged(
            request_id=f"req-{i:010d}",
            model=refs[i % len(refs)],
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


def _metrics(url: str) -> str:
    with urllib.request.urlopen(f"{url}/metrics", timeout=60) as response:
        text: str = response.read().decode()
    return text


def _counter(text: str, name: str, *, labels: bool = True) -> float:
    """The sum of a metric's samples in a ``/metrics`` page."""
    total = 0.0
    pattern = rf"^{name}\{{[^}}]*\}} ([0-9.e+]+)$" if labels else rf"^{name} ([0-9.e+]+)$"
    for match in re.finditer(pattern, text, re.MULTILINE):
        total += float(match.group(1))
    return total


def _prepare_database(home: Path, models: list[str]) -> str:
    """A migrated SQLite database with a 5,000-row reference for each model's version 1."""
    from driftloop_kit.db import Database
    from driftloop_kit.migrations import upgrade
    from driftloop_monitor.adapters.store import MonitorStore
    from driftloop_monitor.domain.drift import make_reference
    from driftloop_monitor.entrypoints.app import MIGRATIONS

    database_url = f"sqlite:///{home / 'monitor.db'}"
    upgrade(database_url, MIGRATIONS)

    async def load_references() -> None:
        database = Database(database_url)
        try:
            reference = make_reference(dataset(5000, seed=1))
            for model in models:
                await MonitorStore(database).put_reference(model, 1, reference)
        finally:
            await database.dispose()

    asyncio.run(load_references())
    return database_url


def _wait_ready(url: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"monitor exited: {log_path.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError("monitor did not become ready in 120 s")


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _wait_idle(pid: int, *, below: float = 0.05, timeout: float = 120.0) -> None:
    """Wait until the process uses less than ``below`` of a core for 3 seconds in a row."""
    deadline = time.monotonic() + timeout
    before = _cpu_seconds(pid)
    quiet = 0
    while time.monotonic() < deadline and quiet < 3:
        time.sleep(1.0)
        now = _cpu_seconds(pid)
        quiet = quiet + 1 if now - before < below else 0
        before = now


@dataclass(frozen=True)
class Replica:
    """One ``driftloop run monitor`` process: where its HTTP API listens, its pid."""

    url: str
    pid: int


@contextmanager
def monitor_processes(
    bootstrap: str, home: Path, engine: str, *, replicas: int, models: list[str]
) -> Iterator[list[Replica]]:
    """``replicas`` ``driftloop run monitor`` processes in one consumer group over one
    SQLite database; replica i on core i (replica 0 alone: core 0, as the rules say)."""
    database_url = _prepare_database(home, models)
    group = f"bench-monitor-{uuid.uuid4().hex[:8]}"
    processes: list[tuple[subprocess.Popen[bytes], Any, Path]] = []
    urls: list[str] = []
    try:
        for replica in range(replicas):
            port = free_port()
            env = {
                **os.environ,
                "DRIFTLOOP_MONITOR_HOME": str(home / f"replica-{replica}"),
                "DRIFTLOOP_MONITOR_DATABASE_URL": database_url,
                "DRIFTLOOP_MONITOR_PORT": str(port),
                "DRIFTLOOP_MONITOR_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
                "DRIFTLOOP_MONITOR_CONSUMER_GROUP": group,
                "DRIFTLOOP_MONITOR_LOG_LEVEL": "WARNING",
                "DRIFTLOOP_MONITOR_STREAM_ENGINE": engine,
            }
            core = SERVER_CORE if replica % 2 == 0 else LOADGEN_CORE
            command = [
                *taskset_prefix(core),
                str(ROOT / ".venv" / "bin" / "driftloop"),
                "run",
                "monitor",
            ]
            log_path = home / f"monitor-{replica}.log"
            log = log_path.open("wb")  # a file, not a pipe: a full pipe would stall it
            process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
            processes.append((process, log, log_path))
            urls.append(f"http://127.0.0.1:{port}")
        for url, (process, _, log_path) in zip(urls, processes, strict=True):
            _wait_ready(url, process, log_path)
        # Idle first: each process imports Evidently in a thread after it is ready (seconds
        # of CPU), and the group settles (every replica has its partitions).
        for process, _, _ in processes:
            _wait_idle(process.pid)
        try:
            yield [Replica(url, p.pid) for url, (p, _, _) in zip(urls, processes, strict=True)]
        except Exception:
            for _, _, log_path in processes:
                print(f"{log_path.name} (last lines):\n{log_path.read_text()[-3000:]}")
            raise
    finally:
        for process, _log, _ in processes:
            process.terminate()
        for process, log, _ in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
            log.close()


@dataclass
class StreamRun:
    """One run's figures: events/s taken and stored, and until every window was decided;
    the monitor processes' CPU time per event (every thread: handling, storing, deciding)
    until then, comparable between a quiet and a loaded machine where rates are not."""

    stored_rate: float
    decided_rate: float
    windows: float
    decision_ms: float
    per_replica: list[float]
    cpu_stored_us: float
    cpu_decided_us: float


def monitor_rate(
    replicas: list[Replica], count: int, started: float, timeout: float = 600.0
) -> StreamRun:
    """Rates from ``started`` (the first record produced; the producer runs beside the
    clock, so these are lower bounds): until all ``count`` rows are in (stored) windows,
    and until the ``count // 1000`` full windows are decided and stored."""
    urls = [r.url for r in replicas]

    def cpu() -> float:
        return sum(_cpu_seconds(r.pid) for r in replicas)

    cpu_start = cpu()
    cpu_stored = 0.0
    rows_metric = "driftloop_monitor_prediction_rows_total"
    windows_metric = "driftloop_monitor_windows_total"
    first_seen = stored_at = decided_at = None
    cpu_decided = 0.0
    start_count = 0.0
    per_replica: list[float] = []
    windows = 0.0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        # One page per replica per look: each look costs the monitor CPU time.
        pages = [_metrics(url) for url in urls]
        seen_each = [_counter(page, rows_metric) for page in pages]
        seen = sum(seen_each)
        now = time.perf_counter()
        if first_seen is None:
            first_seen, start_count = started, 1.0  # the one record produced beforehand
        if seen >= count and stored_at is None:
            stored_at, per_replica, cpu_stored = now, seen_each, cpu()
        windows = sum(_counter(page, windows_metric) for page in pages)
        if windows >= count // 1000:
            decided_at, cpu_decided = time.perf_counter(), cpu()
            break
        time.sleep(0.05)
    if first_seen is None or decided_at is None:
        raise RuntimeError("the monitor did not decide every window in time")
    if stored_at is None:
        # A rebalance moved stored rows between replicas: they are loaded, not counted again.
        print("  (a rebalance during the run: 'stored' is taken when the windows were decided)")
        stored_at, per_replica, cpu_stored = decided_at, seen_each, cpu_decided
    pages = [_metrics(url) for url in urls]
    decisions = sum(
        _counter(p, "driftloop_monitor_drift_decision_seconds_count", labels=False) for p in pages
    )
    seconds = sum(
        _counter(p, "driftloop_monitor_drift_decision_seconds_sum", labels=False) for p in pages
    )
    taken = stored_at - first_seen
    return StreamRun(
        stored_rate=(count - start_count) / taken,
        decided_rate=(count - start_count) / (decided_at - first_seen),
        windows=windows,
        decision_ms=1000 * seconds / decisions if decisions else float("nan"),
        per_replica=[rows / taken for rows in per_replica],
        cpu_stored_us=1e6 * (cpu_stored - cpu_start) / count,
        cpu_decided_us=1e6 * (cpu_decided - cpu_start) / count,
    )


def bench_stream(events: int, rounds: int, engine: str, replica_counts: list[int]) -> None:
    """Alternate the raw consumer and the monitor with 1 and 2 replicas on the same records."""
    models = model_names()
    print(
        f"\n[stream] {events} predictions (1 row x {FEATURES} features, 1 output) per run over "
        f"{len(models)} models (keyed by model: 3 in partitions 0-2, 3 in 3-5); monitor "
        f"({engine} engine, SQLite): 1000-row windows vs a 5,000-row reference, predictions "
        "stored for their labels; peer: a raw aiokafka consumer group doing nothing. "
        "'stored' = every row in a window and stored; 'decided' = every window also decided"
    )
    load = prediction_events(events, models)
    peer: list[float] = []
    runs: dict[int, list[StreamRun]] = {n: [] for n in replica_counts}
    for round_no in range(1, rounds + 1):
        line = f"  round {round_no}:"
        for replicas in replica_counts:
            broker = EmbeddedBroker()  # a fresh one: a new group reads from the earliest
            broker.start()
            try:
                asyncio.run(prefill(broker.bootstrap_servers, load[:1]))  # topics exist
                with (
                    tempfile.TemporaryDirectory() as tmp,
                    monitor_processes(
                        broker.bootstrap_servers,
                        Path(tmp),
                        engine,
                        replicas=replicas,
                        models=models,
                    ) as replicas_running,
                ):
                    # Records arrive once every replica has its partitions; the clock
                    # watches while they are produced.
                    producer = threading.Thread(
                        target=asyncio.run, args=(prefill(broker.bootstrap_servers, load[1:]),)
                    )
                    started = time.perf_counter()
                    producer.start()
                    try:
                        run = monitor_rate(replicas_running, events, started)
                    finally:
                        producer.join()
                if replicas == replica_counts[-1]:
                    peer.append(asyncio.run(raw_consume(broker.bootstrap_servers, events)))
            finally:
                broker.stop()
            runs[replicas].append(run)
            each = "/".join(f"{r:.0f}" for r in run.per_replica)
            line += (
                f" | {replicas} replica(s): stored {run.stored_rate:6.0f} ev/s "
                f"(per replica {each}), decided {run.decided_rate:6.0f} ev/s, "
                f"{run.windows:.0f} windows, {run.decision_ms:.0f} ms/decision, CPU "
                f"{run.cpu_stored_us:.0f} us/event stored, {run.cpu_decided_us:.0f} decided"
            )
        line += f" | raw aiokafka {peer[-1]:6.0f} rec/s | load {os.getloadavg()[0]:.1f}"
        print(line, flush=True)
    for replicas in replica_counts:
        stored = median([r.stored_rate for r in runs[replicas]])
        per = median([min(r.per_replica) for r in runs[replicas]])
        decided = median([r.decided_rate for r in runs[replicas]])
        cpu_stored = median([r.cpu_stored_us for r in runs[replicas]])
        cpu_decided = median([r.cpu_decided_us for r in runs[replicas]])
        print(
            summary_line(
                f"monitor stream ({engine} engine, {replicas} replica(s))",
                ours=(
                    f"{stored:.0f} ev/s stored ({per:.0f} per replica, slowest), "
                    f"{decided:.0f} ev/s decided; CPU {cpu_stored:.0f} us/event until "
                    f"stored, {cpu_decided:.0f} until decided (load {os.getloadavg()[0]:.1f})"
                ),
                peer=f"raw aiokafka consumer {median(peer):.0f} rec/s",
                ratio=stored / median(peer),
                target=f">= {TARGET_RATE} ev/s per replica",
            )
        )
    if 1 in runs and 2 in runs:
        stored_ratio = median([r.stored_rate for r in runs[2]]) / median(
            [r.stored_rate for r in runs[1]]
        )
        decided_ratio = median([r.decided_rate for r in runs[2]]) / median(
            [r.decided_rate for r in runs[1]]
        )
        print(
            f"monitor replicas: 2 vs 1 replica, stored {stored_ratio:.2f}x, decided "
            f"{decided_ratio:.2f}x (target >= 1.7x on 2 cores; load {os.getloadavg()[0]:.1f})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=60_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--part", choices=["stream", "decision", "all"], default="all")
    parser.add_argument("--engine", choices=["faust", "bus"], default="bus")
    parser.add_argument(
        "--replicas", default="1,2", help="replica counts to compare, e.g. 1,2 (default)"
    )
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
        counts = [int(n) for n in args.replicas.split(",")]
        bench_stream(args.events, args.rounds, args.engine, counts)


if __name__ == "__main__":
    main()
