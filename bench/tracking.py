"""Tracking benchmark: the official mlflow client against ``mlflow server`` and driftloop.

Both servers run in the same benchmark, on SQLite, one worker each, pinned to core 0;
this process (the mlflow client, ``mlflow-skinny`` from the workspace) runs on core 1.

- the peer: ``mlflow server`` 3.17.2 (``--workers 1``, SQLite backend, proxied artifacts),
  installed from PyPI into its own virtual environment, ``.driftloop/bench/mlflow-venv``
  (created on the first run, reused afterwards);
- driftloop: ``driftloop run tracking`` with ``DRIFTLOOP_HOME`` in a fresh temporary
  folder and an embedded tansu broker (also on core 0) for its outbox relay.

Part 1, per call: create_run, log_batch (1000 metrics + 50 params + 20 tags), log_metric,
get_run and search_runs (metric + param filter over a 100-run experiment). Each has a
warm-up, then mlflow and driftloop alternate ``--rounds`` times; it prints p50/p99 per
operation and the ratio mlflow p50 / driftloop p50 (target >= 5x).

Part 2, search over ``--runs`` (100,000) runs of 5 metrics, 5 params and 1 tag each,
bulk-inserted with SQL straight into both databases (the same run ids and values), then
``client.search_runs(max_results=100)`` with a metric + param filter, a tag + metric
filter, and an order by a metric (top 100); target: driftloop p50 <= 100 ms.

Usage::

    .venv/bin/python bench/tracking.py [--rounds 3] [--runs 100000] [--metric-keys 100]
                                       [--slow-seconds 30] [--slow-calls 3] [--skip-ops]
                                       [--profile auto|always|never] [--keep] [--no-pin]

It prints figures and summary lines and never fails on a time. When driftloop misses a
target it also profiles the driftloop server (cProfile) on the operations concerned.
A full run takes about an hour: mlflow needs ~10 minutes per call to order 100k runs
by a metric (``--slow-calls 1`` or ``--runs 20000`` for a shorter run).
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import io
import math
import os
import pstats
import random
import re
import shutil
import signal
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

from _common import (
    LOADGEN_CORE,
    SERVER_CORE,
    Pairs,
    ServerProcess,
    admin_token,
    alternate,
    ensure_venv,
    environment_line,
    free_port,
    median,
    percentile,
    pin_this_process,
    taskset_prefix,
)

from driftloop_kit.auth import Role, TokenSigner
from driftloop_kit.settings import home_secret_key
from driftloop_tracking.adapters.tables import searched_row

REPO = Path(__file__).resolve().parent.parent
MLFLOW_VERSION = "3.17.2"
MLFLOW_VENV = REPO / ".driftloop" / "bench" / "mlflow-venv"
TARGET_SPEEDUP = 5.0  # mlflow p50 / driftloop p50, per call
TARGET_SEARCH_P50_MS = 100.0  # driftloop, search over the seeded runs
SMALL_EXPERIMENT_RUNS = 100
SEARCH_EXPERIMENT = "bench-search-seeded"

# The client's defaults would hide what we measure: a 120 s read timeout (MLflow's slow
# searches) and up to 7 silent retries of a failed request.
CLIENT_ENV = {
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "3600",
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
}


# --- the servers under test ---------------------------------------------------------


@dataclass
class Side:
    """One server under test, its mlflow client, and what the benchmark created on it."""

    name: str
    url: str
    db_path: Path
    server: ServerProcess
    client: Any = None  # mlflow.MlflowClient; imported once CLIENT_ENV is set
    state: dict[str, str] = field(default_factory=dict)

    def connect(self) -> None:
        """Create the mlflow client for :attr:`url`."""
        from mlflow import MlflowClient

        self.client = MlflowClient(tracking_uri=self.url)

    def experiment(self, name: str) -> str:
        """The id of experiment ``name``, created through the API on first use."""
        key = f"experiment:{name}"
        if key not in self.state:
            self.state[key] = str(self.client.create_experiment(name))
        return self.state[key]


#: Builds, for a side, the zero-argument calls to time (the setup they need is done).
CallBuilder = Callable[[Side], list[Callable[[], object]]]


def mlflow_side(bin_dir: Path, workdir: Path, *, core: int | None) -> Side:
    """``mlflow server`` on SQLite, one worker, artifacts proxied to a local folder."""
    port = free_port()
    folder = workdir / "mlflow"
    folder.mkdir(parents=True)
    db_path = folder / "mlflow.db"
    command = [
        str(bin_dir / "mlflow"),
        "server",
        "--backend-store-uri",
        f"sqlite:///{db_path}",
        "--artifacts-destination",
        str(folder / "artifacts"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    url = f"http://127.0.0.1:{port}"
    server = ServerProcess(
        name="mlflow",
        command=command,
        ready_url=f"{url}/health",
        env=_server_env(),
        cwd=folder,
        log_path=folder / "server.log",
        core=core,
    )
    return Side(name="mlflow", url=url, db_path=db_path, server=server)


def driftloop_side(workdir: Path, bootstrap: str, *, core: int | None, auth: bool = True) -> Side:
    """``driftloop run tracking`` with a fresh home (SQLite) and the embedded broker;
    authentication on (the default), or off to measure what it costs."""
    port = free_port()
    name = "driftloop" if auth else "auth-off"
    home = workdir / name
    home.mkdir(parents=True, exist_ok=True)
    env = {
        **_server_env(),
        "DRIFTLOOP_HOME": str(home),
        "DRIFTLOOP_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        # Both sign with the key generated in the first one's home.
        "DRIFTLOOP_SECRET_KEY": home_secret_key(workdir / "driftloop"),
    }
    if not auth:
        env["DRIFTLOOP_TRACKING_AUTH_MODE"] = "off"
    url = f"http://127.0.0.1:{port}"
    server = ServerProcess(
        name="driftloop",
        command=[
            str(Path(sys.executable).parent / "driftloop"),
            "run",
            "tracking",
            "--port",
            str(port),
        ],
        ready_url=f"{url}/readyz",
        env=env,
        cwd=REPO,
        log_path=workdir / f"{name}-server.log",
        core=core,
    )
    return Side(name=name, url=url, db_path=home / "tracking" / "tracking.db", server=server)


def _server_env() -> dict[str, str]:
    # Nothing of this process's own settings leaks into a server's: no tracking
    # variables, no bench pinning markers.
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DRIFTLOOP_", "MLFLOW_")) and k != "VIRTUAL_ENV"
    }


# --- timing -------------------------------------------------------------------------


@dataclass
class Samples:
    """Latencies (ms) and client CPU (ms) of the calls of one side, over all rounds."""

    wall_ms: list[float] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)
    round_p50: list[float] = field(default_factory=list)
    server_cpu_ms: list[float] = field(default_factory=list)  # per call, one per round
    server_cpu_total_ms: float = 0.0  # over every timed call, for the mean below
    server_cpu_calls: int = 0
    errors: int = 0
    first_error: str = ""

    @property
    def p50(self) -> float:
        """Median latency over every call."""
        return percentile(self.wall_ms, 50)

    @property
    def p99(self) -> float:
        """99th percentile over every call."""
        return percentile(self.wall_ms, 99)

    @property
    def server_cpu(self) -> float:
        """The server's CPU time per call (ms) over all rounds.

        ``/proc`` counts in 10 ms ticks: over every call of every round the error is
        a tick per round, not a tick per round's median.
        """
        if not self.server_cpu_calls:
            return float("nan")
        return self.server_cpu_total_ms / self.server_cpu_calls


def time_calls(
    calls: Sequence[Callable[[], object]], samples: Samples, server: ServerProcess | None = None
) -> float:
    """Run ``calls`` one after the other, recording each; return this batch's p50 (ms).

    A call that raises counts as an error, not as a latency. With ``server``, its CPU
    time over the batch, per call, is recorded too.
    """
    batch: list[float] = []
    server_cpu = server.cpu_seconds() if server is not None else math.nan
    for call in calls:
        cpu0, wall0 = time.process_time(), time.perf_counter()
        try:
            call()
        except Exception as exc:  # the mlflow client raises MlflowException and others
            samples.errors += 1
            samples.first_error = samples.first_error or f"{type(exc).__name__}: {exc}"[:300]
            continue
        wall = (time.perf_counter() - wall0) * 1000
        samples.cpu_ms.append((time.process_time() - cpu0) * 1000)
        samples.wall_ms.append(wall)
        batch.append(wall)
    if server is not None and calls:
        used = server.cpu_seconds() - server_cpu
        if not math.isnan(used):
            samples.server_cpu_ms.append(used * 1000 / len(calls))
            samples.server_cpu_total_ms += used * 1000
            samples.server_cpu_calls += len(calls)
    p50 = percentile(batch, 50)
    samples.round_p50.append(p50)
    return p50


@dataclass
class Comparison:
    """Both sides' samples for one operation, and the per-round pairs."""

    name: str
    peer: Samples
    ours: Samples
    pairs: Pairs | None
    note: str = ""

    @property
    def ratio(self) -> float:
        """mlflow p50 / driftloop p50: how many times faster driftloop is."""
        if not self.ours.wall_ms or not self.peer.wall_ms:
            return float("nan")
        return self.peer.p50 / self.ours.p50

    @property
    def server_cpu_ratio(self) -> float:
        """mlflow's server CPU per call / driftloop's: the gain on the server side alone."""
        ours = self.ours.server_cpu
        return self.peer.server_cpu / ours if ours and not math.isnan(ours) else float("nan")

    @property
    def ceiling(self) -> float:
        """mlflow p50 / the client's CPU per call: the ratio of a server answering in no time.

        The official client's own work is part of every latency (driftloop's calls
        measured here), so through it no server can beat mlflow by more than this.
        """
        floor = percentile(self.ours.cpu_ms, 50)
        return self.peer.p50 / floor if floor and self.peer.wall_ms else float("nan")


def _ms(value: float) -> str:
    if math.isnan(value):
        return "n/a"
    if value >= 10_000:
        return f"{value / 1000:.1f} s"
    return f"{value:.0f} ms" if value >= 100 else f"{value:.1f} ms"


def _ratio(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.1f}x"


# --- part 1: per-call operations ----------------------------------------------------


@dataclass(frozen=True)
class Operation:
    """An operation: ``prepare(side, n)`` builds ``n`` calls (untimed) that the bench times."""

    name: str
    calls: int
    warmup: int
    prepare: Callable[[Side, int], list[Callable[[], object]]]


@dataclass(frozen=True)
class BatchShape:
    """What one log_batch sends: ``metrics`` values over ``metric_keys`` keys, params, tags."""

    metrics: int = 1000
    metric_keys: int = 100
    params: int = 50
    tags: int = 20

    def payload(self, rng: random.Random) -> tuple[list[Any], list[Any], list[Any]]:
        """mlflow Metric, Param and RunTag lists (keys cycle; steps grow per key)."""
        from mlflow.entities import Metric, Param, RunTag

        now = int(time.time() * 1000)
        metrics = [
            Metric(f"metric_{i % self.metric_keys:04d}", rng.random(), now, i // self.metric_keys)
            for i in range(self.metrics)
        ]
        params = [
            Param(f"param_{i:03d}", f"value-{i}-{rng.randrange(1000)}") for i in range(self.params)
        ]
        tags = [RunTag(f"tag_{i:03d}", f"tag-value-{i}") for i in range(self.tags)]
        return metrics, params, tags


def operations(shape: BatchShape, calls_scale: float) -> list[Operation]:
    """The per-call operations, in the order they run."""
    rng = random.Random(7)

    def n(calls: int) -> int:
        return max(3, round(calls * calls_scale))

    def create_run(side: Side, count: int) -> list[Callable[[], object]]:
        experiment = side.experiment("bench-ops")
        return [lambda: side.client.create_run(experiment) for _ in range(count)]

    def log_batch(side: Side, count: int) -> list[Callable[[], object]]:
        # A fresh run per call: params are write-once, and every call does the same work.
        experiment = side.experiment("bench-log-batch")
        calls: list[Callable[[], object]] = []
        for _ in range(count):
            run_id = side.client.create_run(experiment).info.run_id
            metrics, params, tags = shape.payload(rng)
            calls.append(
                lambda r=run_id, m=metrics, p=params, t=tags: side.client.log_batch(  # type: ignore[misc]
                    r, metrics=m, params=p, tags=t
                )
            )
        return calls

    def log_metric(side: Side, count: int) -> list[Callable[[], object]]:
        run_id = _run_with_batch(side, shape)
        start = int(side.state.get("log_metric_step", "0"))
        side.state["log_metric_step"] = str(start + count)
        return [
            lambda s=step: side.client.log_metric(run_id, "loss", 1.0 / (s + 1), step=s)  # type: ignore[misc]
            for step in range(start, start + count)
        ]

    def get_run(side: Side, count: int) -> list[Callable[[], object]]:
        run_id = _run_with_batch(side, shape)
        return [lambda: side.client.get_run(run_id) for _ in range(count)]

    def search_runs(side: Side, count: int) -> list[Callable[[], object]]:
        experiment = _small_experiment(side)
        return [
            lambda: side.client.search_runs(
                [experiment], filter_string=SMALL_FILTER, max_results=100
            )
            for _ in range(count)
        ]

    return [
        Operation("create_run", n(40), 5, create_run),
        Operation("log_batch", n(15), 3, log_batch),
        Operation("log_metric", n(60), 5, log_metric),
        Operation("get_run", n(40), 5, get_run),
        Operation("search_runs", n(30), 5, search_runs),
    ]


SMALL_FILTER = "metrics.m0 > 0.5 AND params.p0 = 'v1'"


def _run_with_batch(side: Side, shape: BatchShape) -> str:
    """A run holding one full log_batch (what get_run reads and log_metric appends to)."""
    if "batch_run" not in side.state:
        run_id = side.client.create_run(side.experiment("bench-ops")).info.run_id
        metrics, params, tags = shape.payload(random.Random(11))
        side.client.log_batch(run_id, metrics=metrics, params=params, tags=tags)
        side.state["batch_run"] = run_id
    return side.state["batch_run"]


def _small_experiment(side: Side) -> str:
    """An experiment of 100 finished runs (5 metrics, 5 params, 1 tag), logged through the API."""
    if "small_experiment" not in side.state:
        from mlflow.entities import Metric, Param, RunTag

        experiment = side.experiment("bench-search-small")
        rng = random.Random(3)
        now = int(time.time() * 1000)
        for i in range(SMALL_EXPERIMENT_RUNS):
            run_id = side.client.create_run(experiment, run_name=f"small-{i:03d}").info.run_id
            side.client.log_batch(
                run_id,
                metrics=[Metric(f"m{k}", rng.random(), now, 0) for k in range(5)],
                params=[Param(f"p{k}", f"v{rng.randrange(3)}") for k in range(5)],
                tags=[RunTag("team", f"team-{rng.randrange(3)}")],
            )
            side.client.set_terminated(run_id)
        side.state["small_experiment"] = experiment
    return side.state["small_experiment"]


def compare_operation(op: Operation, peer: Side, ours: Side, rounds: int) -> Comparison:
    """Warm up both sides, then alternate mlflow and driftloop ``rounds`` times."""
    samples = {peer.name: Samples(), ours.name: Samples()}
    available: dict[str, str] = {}
    for side in (peer, ours):
        try:
            for call in op.prepare(side, op.warmup):
                call()
        except Exception as exc:  # an endpoint the server lacks: report, measure the other
            available[side.name] = f"{type(exc).__name__}: {exc}"[:200]

    def run(side: Side) -> Callable[[int], float]:
        def one_round(_round: int) -> float:
            p50 = time_calls(op.prepare(side, op.calls), samples[side.name], side.server)
            print(f"    {op.name:<12} round {_round} {side.name:<9} p50 {_ms(p50)}", flush=True)
            return 1000 / p50 if p50 else float("nan")  # calls/s at the median

        return one_round

    note = "; ".join(f"{name} unavailable ({why})" for name, why in available.items())
    pairs: Pairs | None = None
    if not available:
        pairs = alternate(rounds, peer=run(peer), ours=run(ours))
    else:
        for side in (peer, ours):
            if side.name not in available:
                for r in range(1, rounds + 1):
                    run(side)(r)
    return Comparison(op.name, samples[peer.name], samples[ours.name], pairs, note)


# --- part 2: search over seeded runs ------------------------------------------------


@dataclass(frozen=True)
class SeedData:
    """Rows of the seeded runs, the same for both databases (ids and values included)."""

    runs: list[tuple[str, str, int]]  # run id, name, start time (ms)
    metrics: list[tuple[str, str, float]]  # run id, key, value
    params: list[tuple[str, str, str]]
    tags: list[tuple[str, str, str]]

    @classmethod
    def generate(cls, count: int, seed: int = 42) -> SeedData:
        """``count`` runs: m0..m4 uniform in [0, 1), p0..p4 in v0..v9, tag team-0..team-9.

        The server-written tag ``mlflow.runName`` is seeded too, as ``create_run`` does.
        """
        rng = random.Random(seed)
        base = 1_760_000_000_000
        runs: list[tuple[str, str, int]] = []
        metrics: list[tuple[str, str, float]] = []
        params: list[tuple[str, str, str]] = []
        tags: list[tuple[str, str, str]] = []
        for i in range(count):
            run_id = f"{rng.getrandbits(128):032x}"
            name = f"seeded-{i:06d}"
            runs.append((run_id, name, base + i * 1000))
            metrics.extend((run_id, f"m{k}", rng.random()) for k in range(5))
            params.extend((run_id, f"p{k}", f"v{rng.randrange(10)}") for k in range(5))
            tags.append((run_id, "team", f"team-{rng.randrange(10)}"))
            tags.append((run_id, "mlflow.runName", name))
        return cls(runs, metrics, params, tags)


#: (label, filter, order_by): the searches over the seeded experiment.
SEARCHES: list[tuple[str, str, list[str]]] = [
    ("metric+param", "metrics.m0 > 0.9 AND params.p0 = 'v3'", []),
    ("tag+metric", "tags.team = 'team-7' AND metrics.m1 < 0.1", []),
    ("order by metric", "", ["metrics.m2 DESC"]),
]


def _insert(db: sqlite3.Connection, table: str, rows: Sequence[dict[str, Any]]) -> None:
    """Bulk-insert ``rows`` (dicts with the same keys), refusing a schema we do not fill."""
    info = db.execute(f'PRAGMA table_info("{table}")').fetchall()
    columns = {r[1] for r in info}
    given = list(rows[0])
    unknown = set(given) - columns
    # NOT NULL, no default, not an INTEGER PRIMARY KEY (rowid alias, filled by SQLite).
    required = {
        r[1] for r in info if r[3] and r[4] is None and not (r[5] and r[2].upper() == "INTEGER")
    }
    if unknown or required - set(given):
        raise RuntimeError(
            f"schema of {table!r} changed: unknown columns {sorted(unknown)}, "
            f"required but not seeded {sorted(required - set(given))}"
        )
    quoted = ", ".join(f'"{c}"' for c in given)
    marks = ", ".join("?" for _ in given)
    db.executemany(
        f'INSERT INTO "{table}" ({quoted}) VALUES ({marks})', [tuple(r.values()) for r in rows]
    )


def _key_value_row(side: Side, run_id: str, key: str, value: str) -> dict[str, Any]:
    """A params/tags row; driftloop's also holds the indexed head of the value."""
    if side.name == "mlflow":
        return {"run_uuid": run_id, "key": key, "value": value}
    return searched_row("run_uuid", run_id, key, value)


def seed(side: Side, data: SeedData, experiment_id: str) -> float:
    """Bulk-insert ``data`` into the side's database; return the seconds it took.

    The experiment was created through the API, so its id and artifact location are
    the server's own; run artifact URIs follow both servers' rule, ``<location>/<run>/artifacts``.
    """
    location = side.client.get_experiment(experiment_id).artifact_location.rstrip("/")
    started = time.perf_counter()
    db = sqlite3.connect(side.db_path, timeout=60)
    try:
        db.execute("PRAGMA synchronous=OFF")
        with db:  # one transaction
            run_rows: list[dict[str, Any]] = []
            for run_id, name, start in data.runs:
                row: dict[str, Any] = {
                    "run_uuid": run_id,
                    "name": name,
                    "experiment_id": int(experiment_id),
                    "user_id": "bench",
                    "status": "FINISHED",
                    "start_time": start,
                    "end_time": start + 500,
                    "lifecycle_stage": "active",
                    "artifact_uri": f"{location}/{run_id}/artifacts",
                }
                if side.name == "mlflow":  # what mlflow's create_run writes in its extra columns
                    row.update(
                        source_type="UNKNOWN",
                        source_name="",
                        entry_point_name="",
                        source_version="",
                    )
                run_rows.append(row)
            _insert(db, "runs", run_rows)
            starts = {run_id: start for run_id, _name, start in data.runs}
            metric_rows = [
                {
                    "run_uuid": run_id,
                    "key": key,
                    "value": value,
                    "timestamp": starts[run_id] + 100,
                    "step": 0,
                    "is_nan": 0,
                }
                for run_id, key, value in data.metrics
            ]
            _insert(db, "metrics", metric_rows)
            _insert(db, "latest_metrics", metric_rows)
            for table, rows in (("params", data.params), ("tags", data.tags)):
                _insert(db, table, [_key_value_row(side, r, k, v) for r, k, v in rows])
        if db.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
            # Fold the seeded pages into the database file, as the server's own
            # checkpoints would have over time: a 200 MB WAL slows every read.
            busy, _log, _done = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            if busy:
                print(f"  {side.name}: WAL checkpoint was blocked by a reader")
    finally:
        db.close()
    return time.perf_counter() - started


@dataclass
class SearchResult:
    """One search over the seeded runs, both sides."""

    label: str
    comparison: Comparison
    capped: bool
    same_runs: bool | None


def compare_search(
    label: str,
    filter_string: str,
    order_by: list[str],
    sides: dict[str, tuple[Side, str]],
    *,
    calls: int,
    rounds: int,
    slow_seconds: float,
    slow_calls: int,
) -> SearchResult:
    """Warm up, then alternate; mlflow makes ``slow_calls`` calls if its first is too slow.

    Too slow: more than ``slow_seconds``.
    """
    (peer, peer_exp), (ours, ours_exp) = sides["mlflow"], sides["driftloop"]
    samples = {peer.name: Samples(), ours.name: Samples()}

    def search(side: Side, experiment: str) -> list[str]:
        found = side.client.search_runs(
            [experiment], filter_string=filter_string, order_by=order_by, max_results=100
        )
        return [r.info.run_id for r in found]

    results: dict[str, list[str]] = {}
    unavailable: dict[str, str] = {}
    first: dict[str, Samples] = {}
    for side, experiment in ((peer, peer_exp), (ours, ours_exp)):
        probe = Samples()

        def keep(side: Side = side, experiment: str = experiment) -> None:
            results[side.name] = search(side, experiment)

        time_calls([keep], probe, side.server)
        if probe.errors:
            unavailable[side.name] = probe.first_error[:200]
            continue
        first[side.name] = probe
        if probe.p50 < slow_seconds * 1000:  # a second warm-up call for the fast ones
            time_calls([keep], Samples())
    print(
        f"  {label}: first call "
        + ", ".join(f"{name} {_ms(probe.p50)}" for name, probe in first.items())
        + "".join(f", {name} unavailable ({why})" for name, why in unavailable.items()),
        flush=True,
    )
    ours_per_round = max(1, math.ceil(calls / rounds))
    capped = peer.name in first and first[peer.name].p50 > slow_seconds * 1000
    if capped:
        # The first call counts as one of the slow_calls: at this length a warm-up
        # changes nothing (the seeded database is already in the page cache). The
        # others go to the last rounds.
        samples[peer.name] = first[peer.name]
        rest = max(0, slow_calls - 1)
        per_round_peer = [
            rest // rounds + (1 if r >= rounds - rest % rounds else 0) for r in range(rounds)
        ]
    else:
        per_round_peer = [ours_per_round] * rounds

    def run(side: Side, experiment: str) -> Callable[[int], float]:
        def one_round(round_no: int) -> float:
            count = per_round_peer[round_no - 1] if side is peer else ours_per_round
            if count == 0:
                return float("nan")
            p50 = time_calls(
                [lambda: search(side, experiment)] * count, samples[side.name], side.server
            )
            print(
                f"    {label:<16} round {round_no} {side.name:<9} {count:>2} call"
                f"{'s' if count > 1 else ' '}, p50 {_ms(p50)}",
                flush=True,
            )
            return 1000 / p50 if p50 else float("nan")

        return one_round

    pairs: Pairs | None = None
    if not unavailable:
        pairs = alternate(rounds, peer=run(peer, peer_exp), ours=run(ours, ours_exp))
    else:
        for side, experiment in ((peer, peer_exp), (ours, ours_exp)):
            if side.name not in unavailable:
                for r in range(1, rounds + 1):
                    run(side, experiment)(r)
    same = None
    if peer.name in results and ours.name in results:
        same = results[peer.name] == results[ours.name]
    note = "; ".join(f"{name} unavailable ({why})" for name, why in unavailable.items())
    comparison = Comparison(label, samples[peer.name], samples[ours.name], pairs, note)
    return SearchResult(label, comparison, capped, same)


# --- profiling ----------------------------------------------------------------------

# The driftloop server, as `driftloop run tracking` builds it, under cProfile from the
# moment it serves until SIGTERM; then the stats go to argv[2].
_PROFILED_SERVER = """
import cProfile, signal, sys
import uvicorn
from driftloop_tracking.entrypoints.app import SERVICE
settings = SERVICE.settings_cls(port=int(sys.argv[1]))
app = SERVICE.create_app(settings)
server = uvicorn.Server(uvicorn.Config(app, host=settings.host, port=settings.port,
                                       workers=1, lifespan="on", log_level="warning"))
signal.signal(signal.SIGTERM, signal.default_int_handler)  # uvicorn re-raises it at exit
profiler = cProfile.Profile()
profiler.enable()
try:
    server.run()
except KeyboardInterrupt:
    pass
finally:
    profiler.disable()
    profiler.dump_stats(sys.argv[2])
"""


def profile_driftloop(
    ours: Side,
    workdir: Path,
    work: list[tuple[str, CallBuilder]],
    *,
    core: int | None,
) -> None:
    """Restart driftloop under cProfile on the same database and print where time goes.

    ``work`` is ``(label, build calls for a side)``; the calls run against the profiled
    server. SQLite runs in aiosqlite's thread, which cProfile does not see: database time
    shows up as the event loop waiting (``select``/``epoll``), the rest is Python.
    """
    ours.server.stop()
    port = free_port()
    stats_path = workdir / "driftloop.prof"
    env = {**(ours.server.env or {}), "DRIFTLOOP_TRACKING_PORT": str(port)}
    server = ServerProcess(
        name="driftloop (cProfile)",
        command=[sys.executable, "-c", _PROFILED_SERVER, str(port), str(stats_path)],
        ready_url=f"http://127.0.0.1:{port}/readyz",
        env=env,
        cwd=REPO,
        log_path=workdir / "driftloop-profiled.log",
        core=core,
    )
    profiled = dataclasses.replace(ours, url=f"http://127.0.0.1:{port}", server=server)
    profiled.connect()
    with server:
        client_profile = cProfile.Profile()
        for label, build in work:
            calls = build(profiled)
            sample = Samples()
            client_profile.enable()
            time_calls(calls, sample)
            client_profile.disable()
            print(
                f"  {label}: {len(sample.wall_ms)} calls under the profiler, p50 {_ms(sample.p50)}"
                f" (client CPU p50 {_ms(percentile(sample.cpu_ms, 50))})"
            )
    if not stats_path.exists():
        print(f"  (no profile written; see {server.log_path})")
        return
    # Own time over everything (the event loop's wait filtered out), then cumulative
    # time of driftloop's own functions: for a coroutine, the time it ran, not awaited.
    views = (
        ("own time, without the event loop's wait", pstats.SortKey.TIME, r"^(?!.*epoll)", 20),
        ("cumulative, driftloop functions", pstats.SortKey.CUMULATIVE, r"driftloop_", 25),
    )
    for title, key, restriction, count in views:
        out = io.StringIO()
        stats = pstats.Stats(str(stats_path), stream=out)
        stats.sort_stats(key).print_stats(restriction, count)
        print(f"\n--- driftloop server, {title} (top {count}) ---")
        print(_trim_stats(out.getvalue()))
    out = io.StringIO()
    pstats.Stats(client_profile, stream=out).strip_dirs().sort_stats(
        pstats.SortKey.CUMULATIVE
    ).print_stats(12)
    print("\n--- the mlflow client in this process, cumulative (top 12) ---")
    print(_trim_stats(out.getvalue()))


def _trim_stats(text: str) -> str:
    lines = text.strip().splitlines()
    start = next((i for i, line in enumerate(lines) if "function calls" in line), 0)
    body = "\n".join(line for line in lines[start:] if not line.startswith("   List reduced"))
    # Paths relative to the workspace or site-packages, as strip_dirs() would, but
    # keeping enough to tell driftloop's modules apart.
    body = re.sub(r"\S*/site-packages/", "", body)
    return body.replace(f"{REPO}/", "")


# --- main ---------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=3, help="mlflow/driftloop pairs (>= 3)")
    parser.add_argument("--calls-scale", type=float, default=1.0, help="scale calls per round")
    parser.add_argument("--runs", type=int, default=100_000, help="seeded runs (0: skip part 2)")
    parser.add_argument("--search-calls", type=int, default=21, help="calls per search and side")
    parser.add_argument(
        "--slow-seconds", type=float, default=30.0, help="mlflow call this slow ..."
    )
    parser.add_argument("--slow-calls", type=int, default=3, help="... gets this many calls")
    parser.add_argument(
        "--metric-keys", type=int, default=100, help="keys of log_batch's 1000 metrics"
    )
    parser.add_argument("--skip-ops", action="store_true", help="skip part 1 (per-call operations)")
    parser.add_argument(
        "--profile",
        choices=["auto", "always", "never"],
        default="auto",
        help="profile the driftloop server (auto: when a target is missed)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the servers' temporary folder")
    parser.add_argument("--no-pin", action="store_true", help="do not pin to cores")
    return parser.parse_args(argv)


@contextmanager
def _workdir(keep: bool) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="driftloop-bench-tracking-"))
    try:
        yield path
    finally:
        if keep:
            print(f"kept {path}")
        else:
            shutil.rmtree(path, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> None:
    """Run the benchmark and print its figures."""
    args = parse_args(argv)
    pinned = "not pinned (--no-pin)" if args.no_pin else pin_this_process(LOADGEN_CORE)
    # SIGTERM (timeout, a CI cancel) unwinds like Ctrl-C, so the servers are stopped;
    # SIGINT too when a non-interactive shell started us in the background (ignored).
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    os.environ.update(CLIENT_ENV)
    server_core = None if args.no_pin else SERVER_CORE

    print("tracking benchmark: the official mlflow client vs mlflow server and driftloop tracking")
    print(environment_line())
    print(f"mlflow server {MLFLOW_VERSION}: virtual environment {MLFLOW_VENV} ...", flush=True)
    started = time.perf_counter()
    bin_dir = ensure_venv(
        MLFLOW_VENV, f"mlflow=={MLFLOW_VERSION}", distribution="mlflow", version=MLFLOW_VERSION
    )
    print(f"  ready in {time.perf_counter() - started:.1f} s: {bin_dir / 'mlflow'}")
    print(
        f"client: mlflow-skinny {version('mlflow-skinny')} in {sys.prefix}, {pinned}; "
        f"servers: {' '.join(taskset_prefix(server_core)) or 'not pinned'}, one worker each"
    )
    shape = BatchShape(metric_keys=args.metric_keys)

    with _workdir(args.keep) as workdir, ExitStack() as stack:
        peer, ours, ours_open = start_servers(stack, workdir, bin_dir, server_core)
        # First, while both driftloop databases are empty: part 1 fills one of them, and a
        # fuller database makes log_batch dearer, which would count as auth's cost.
        auth_costs = [] if args.skip_ops else part_auth(ours_open, ours, shape, args)
        comparisons = [] if args.skip_ops else part_one(peer, ours, shape, args)
        searches = part_two(peer, ours, args) if args.runs else []
        profile_if_needed(
            ours,
            workdir,
            comparisons=comparisons,
            searches=searches,
            shape=shape,
            args=args,
            core=server_core,
        )
        print()
        if auth_costs:
            worst = max(auth_costs, key=lambda cost: cost[1])
            print(
                "authentication's cost on tracking (server CPU per call, token vs auth off): "
                + ", ".join(f"{name} {added:+.3f} ms" for name, added in auth_costs)
                + f"; most added {worst[1]:.3f} ms ({worst[0]}), target <= 0.2 ms"
            )
        for line in summary_lines(comparisons, searches, args):
            print(line)


def start_servers(
    stack: ExitStack, workdir: Path, bin_dir: Path, core: int | None
) -> tuple[Side, Side, Side]:
    """Start the broker, mlflow server, driftloop tracking and driftloop tracking with
    authentication off (stopped by ``stack``); the client sends an admin token."""
    from driftloop_bus.embedded import EmbeddedBroker

    @dataclass
    class PinnedBroker(EmbeddedBroker):
        core: int | None = None

        def command(self) -> list[str]:
            return [*taskset_prefix(self.core), *super().command()]

    broker = stack.enter_context(PinnedBroker(core=core))
    print(f"broker: {broker.bootstrap_servers} ({' '.join(broker.command()[:3])} ...)")
    peer = mlflow_side(bin_dir, workdir, core=core)
    ours = driftloop_side(workdir, broker.bootstrap_servers, core=core)
    ours_open = driftloop_side(workdir, broker.bootstrap_servers, core=core, auth=False)
    # mlflow server ignores the header; driftloop checks it.
    os.environ["MLFLOW_TRACKING_TOKEN"] = admin_token(workdir / "driftloop")
    for side in (peer, ours, ours_open):
        side.server.launch()  # all start at once: mlflow alone takes ~15 s
        stack.callback(side.server.stop)
    for side in (peer, ours, ours_open):
        started = time.perf_counter()
        side.server.wait_ready(timeout=180)
        side.connect()
        print(
            f"{side.name}: {side.url} ready after {time.perf_counter() - started:.1f} s more; "
            f"database {side.db_path}\n  {' '.join(side.server.full_command)}"
        )
    return peer, ours, ours_open


def part_auth(
    ours_open: Side, ours: Side, shape: BatchShape, args: argparse.Namespace
) -> list[tuple[str, float]]:
    """The per-call operations again, driftloop with authentication off vs on: what a
    token costs the server per call (its CPU), the call's first check and the cached ones."""
    print(
        f"\n== part 1b: authentication's cost, {args.rounds} rounds driftloop with auth off / "
        "with a bearer token =="
    )
    costs = []
    for op in operations(shape, args.calls_scale):
        comparison = compare_operation(op, ours_open, ours, args.rounds)
        added = comparison.ours.server_cpu - comparison.peer.server_cpu
        costs.append((op.name, added))
        print(
            f"  {op.name:<16} server CPU/call: auth off {_ms(comparison.peer.server_cpu)}, "
            f"token {_ms(comparison.ours.server_cpu)} ({added:+.3f} ms); p50 "
            f"{_ms(comparison.peer.p50)} vs {_ms(comparison.ours.p50)}; errors "
            f"{comparison.peer.errors}/{comparison.ours.errors}",
            flush=True,
        )
    print(f"  the check itself, in this process: {_check_cost_us():.2f} µs per call once cached")
    return costs


def _check_cost_us(calls: int = 200_000) -> float:
    """What the server does per call for a token it has seen: the cached check (µs)."""
    import asyncio

    from driftloop_kit.auth import Authenticator

    signer = TokenSigner("bench-" + "k" * 40)
    header = "Bearer " + signer.issue(subject="bench", role=Role.ADMIN, ttl_seconds=3600)
    authenticator = Authenticator(signer)

    async def run() -> float:
        await authenticator.authenticate(header)  # the first check: signature, claims
        started = time.perf_counter()
        for _ in range(calls):
            await authenticator.authenticate(header)
        return (time.perf_counter() - started) / calls * 1e6

    return asyncio.run(run())


def part_one(
    peer: Side, ours: Side, shape: BatchShape, args: argparse.Namespace
) -> list[Comparison]:
    """Per-call operations, each warmed up then alternated."""
    print(
        f"\n== part 1: per call, warm-up then {args.rounds} rounds mlflow/driftloop; "
        f"log_batch = {shape.metrics} metrics ({shape.metric_keys} keys x "
        f"{shape.metrics // shape.metric_keys} steps) + {shape.params} params + "
        f"{shape.tags} tags (the client sends it as 2 requests); search_runs: "
        f"{SMALL_FILTER!r} over {SMALL_EXPERIMENT_RUNS} runs =="
    )
    comparisons = []
    for op in operations(shape, args.calls_scale):
        comparison = compare_operation(op, peer, ours, args.rounds)
        comparisons.append(comparison)
        _print_comparison(comparison)
    return comparisons


def part_two(peer: Side, ours: Side, args: argparse.Namespace) -> list[SearchResult]:
    """Seed ``args.runs`` runs into both databases, then compare the searches."""
    print(
        f"\n== part 2: search over {args.runs:,} seeded runs (5 metrics, 5 params, 1 tag + "
        "mlflow.runName each), max_results=100 =="
    )
    started = time.perf_counter()
    data = SeedData.generate(args.runs)
    print(f"  generated the rows in {time.perf_counter() - started:.1f} s")
    experiments: dict[str, tuple[Side, str]] = {}
    for side in (peer, ours):
        experiment = side.experiment(SEARCH_EXPERIMENT)
        seconds = seed(side, data, experiment)
        experiments[side.name] = (side, experiment)
        size = side.db_path.stat().st_size / 1e6
        print(f"  {side.name}: seeded experiment {experiment} in {seconds:.1f} s ({size:.0f} MB)")
    searches = []
    for label, filter_string, order_by in SEARCHES:
        print(f"  {label}: filter {filter_string!r}, order_by {order_by}", flush=True)
        result = compare_search(
            label,
            filter_string,
            order_by,
            experiments,
            calls=args.search_calls,
            rounds=args.rounds,
            slow_seconds=args.slow_seconds,
            slow_calls=args.slow_calls,
        )
        searches.append(result)
        _print_comparison(result.comparison)
        if result.same_runs is not None:
            same = "yes" if result.same_runs else "NO"
            print(f"  {label:<16} same runs in the same order on both servers: {same}")
    return searches


def profile_if_needed(
    ours: Side,
    workdir: Path,
    *,
    comparisons: list[Comparison],
    searches: list[SearchResult],
    shape: BatchShape,
    args: argparse.Namespace,
    core: int | None,
) -> None:
    """Profile driftloop on the operations that missed their target (or all, ``always``)."""
    if args.profile == "never":
        return
    every = args.profile == "always"
    ops = [c for c in comparisons if c.ours.wall_ms and (every or not c.ratio >= TARGET_SPEEDUP)]
    slow = [
        s
        for s in searches
        if s.comparison.ours.wall_ms
        and (every or not s.comparison.ours.p50 <= TARGET_SEARCH_P50_MS)
    ]
    if not ops and not slow:
        return
    by_name = {op.name: op for op in operations(shape, args.calls_scale)}
    work: list[tuple[str, CallBuilder]] = [(c.name, _op_calls(by_name[c.name])) for c in ops]
    for s in slow:
        _, filter_string, order_by = next(x for x in SEARCHES if x[0] == s.label)
        work.append(
            (f"search {s.label}", _search_calls(filter_string, order_by, args.search_calls))
        )
    print("\n== profile: the driftloop server under cProfile (same database) ==")
    profile_driftloop(ours, workdir, work, core=core)


def summary_lines(
    comparisons: list[Comparison], searches: list[SearchResult], args: argparse.Namespace
) -> list[str]:
    """One line per operation and search, then the final line."""
    lines = []
    for c in comparisons:
        lines.append(
            f"tracking: {c.name} driftloop {_ms(c.ours.p50)} | mlflow {_ms(c.peer.p50)} | "
            f"ratio {_ratio(c.ratio)} (target >= {TARGET_SPEEDUP:.0f}x) | server CPU/call "
            f"driftloop {_ms(c.ours.server_cpu)}, mlflow {_ms(c.peer.server_cpu)}, "
            f"ratio {_ratio(c.server_cpu_ratio)} | ceiling {_ratio(c.ceiling)}"
            + (f" | {c.note}" if c.note else "")
        )
    size = f"{args.runs // 1000}k" if args.runs >= 1000 else str(args.runs)
    for s in searches:
        c = s.comparison
        capped = (
            f" ({len(c.peer.wall_ms)} calls only, no warm-up: > {args.slow_seconds:g} s per call)"
            if s.capped
            else ""
        )
        lines.append(
            f"tracking search {size}: {c.name} p50 driftloop {_ms(c.ours.p50)} "
            f"(target <= {TARGET_SEARCH_P50_MS:.0f} ms) | mlflow {_ms(c.peer.p50)}{capped} | "
            f"ratio {_ratio(c.ratio)}" + (f" | {c.note}" if c.note else "")
        )
    lines.append(_final_line(comparisons, searches, size))
    return lines


def _op_calls(op: Operation) -> CallBuilder:
    def build(side: Side) -> list[Callable[[], object]]:
        return op.prepare(side, op.calls)

    return build


def _search_calls(filter_string: str, order_by: list[str], count: int) -> CallBuilder:
    def build(side: Side) -> list[Callable[[], object]]:
        experiment = side.experiment(SEARCH_EXPERIMENT)
        return [
            lambda: side.client.search_runs(
                [experiment], filter_string=filter_string, order_by=order_by, max_results=100
            )
        ] * count

    return build


def _print_comparison(c: Comparison) -> None:
    # Figures are calls/s at the median, so ours / peer is mlflow p50 / driftloop p50.
    ratios = ", ".join(_ratio(r) for r in (c.pairs.ratios if c.pairs else []))
    for side, s in (("mlflow", c.peer), ("driftloop", c.ours)):
        if s.wall_ms or s.errors:
            print(
                f"  {c.name:<16} {side:<9} p50 {_ms(s.p50):>8}  p99 {_ms(s.p99):>8}  "
                f"server CPU/call {_ms(s.server_cpu):>8}  ({len(s.wall_ms)} calls, client CPU "
                f"p50 {_ms(percentile(s.cpu_ms, 50))}, errors {s.errors}"
                f"{': ' + s.first_error if s.errors else ''})"
            )
    print(
        f"  {c.name:<16} ratio {_ratio(c.ratio)}"
        + (f" (per round {ratios})" if ratios else "")
        + f", server CPU ratio {_ratio(c.server_cpu_ratio)}, ceiling with an instant server "
        f"(mlflow p50 / client CPU p50) {_ratio(c.ceiling)}" + (f" | {c.note}" if c.note else ""),
        flush=True,
    )


def _final_line(comparisons: list[Comparison], searches: list[SearchResult], size: str) -> str:
    parts = []
    measured = [c for c in comparisons if not math.isnan(c.ratio)]
    if measured:
        worst = min(measured, key=lambda c: c.ratio)
        parts.append(
            f"per call driftloop {median([c.ratio for c in measured]):.1f}x faster (median of "
            f"{len(measured)} ops), slowest gain {worst.ratio:.1f}x on {worst.name} "
            f"(target >= {TARGET_SPEEDUP:.0f}x each)"
        )
        server = [c for c in measured if not math.isnan(c.server_cpu_ratio)]
        if server:
            least = min(server, key=lambda c: c.server_cpu_ratio)
            parts.append(
                f"server CPU per call {median([c.server_cpu_ratio for c in server]):.1f}x less "
                f"(median), least {least.server_cpu_ratio:.1f}x on {least.name}"
            )
        capped = [c.name for c in measured if c.ceiling < TARGET_SPEEDUP]
        if capped:
            parts.append(
                f"{TARGET_SPEEDUP:.0f}x out of reach through the mlflow client (its own CPU) "
                f"on {', '.join(capped)}"
            )
    timed = [s for s in searches if s.comparison.ours.wall_ms]
    if timed:
        worst_search = max(timed, key=lambda s: s.comparison.ours.p50)
        parts.append(
            f"search {size} worst p50 {_ms(worst_search.comparison.ours.p50)} "
            f"({worst_search.label}; target <= {TARGET_SEARCH_P50_MS:.0f} ms)"
        )
    missing = [c.name for c in comparisons if math.isnan(c.ratio)] + [
        s.label for s in searches if not s.comparison.ours.wall_ms
    ]
    if missing:
        parts.append(f"not measured on driftloop: {', '.join(missing)}")
    return "tracking: " + " | ".join(parts) if parts else "tracking: nothing measured"


if __name__ == "__main__":
    main()
