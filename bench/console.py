"""Console benchmark: each page's server time with a large history behind it (issue 23).

Target: every page answers in <= 300 ms with 1,000 model versions, 10,000 drift windows
and 10,000 runs seeded. There is no peer: no other tool shows this loop (MLflow's UI
has no drift or decisions, Evidently's no registry or training), so the figure is
printed against the target.

What runs:

- The closed loop: ``driftloop demo --keep-running`` (iris, free ports), whose
  ``driftloop up`` starts the console with the six services; the demo trains v1, shifts
  the inputs, retrains and promotes v2 (a few minutes), and the suite stays up. The same
  helper as the browser tests (``tests/browser/loop.py``); ``--attach DIR`` reuses a
  loop left running by ``python -m tests.browser.loop DIR`` or by ``--keep``.
- The seed, written into the services' own SQLite stores (clones of the rows the loop
  wrote, so every page reads what the services would have written): the demo model's
  versions up to ``--versions`` in the registry, its drift windows up to ``--windows``
  in the monitor (older than the loop's, split over v1 and v2), runs up to ``--runs`` in
  the training experiment in tracking (four metrics, the template's params each).
- The console's process is pinned to core 0 (``taskset -a -p``), this client to core 1;
  the upstream services it calls are not pinned (they are part of each page's time).
- Per page: 3 warm-up requests, then ``--requests`` requests one at a time over one
  keep-alive connection, with the admin token; each latency is measured by the client
  from the request to the last byte of the page (an upper bound of the server time on
  the loopback). Pages: the loop overview, the model (1,000 versions), a version, drift
  (10,000 windows; all versions and v1 only), the retraining job, the experiments, the
  runs of the experiment (10,000 runs; unfiltered and filtered on a metric), a run, the
  comparison of the loop's two runs, the lineage.

Usage::

    .venv/bin/python bench/console.py [--requests 50] [--versions 1000] [--windows 10000]
                                      [--runs 10000] [--attach DIR] [--keep] [--no-pin]

It prints each page's p50 and p99, and a summary line; it never fails on a time.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from _common import (
    LOADGEN_CORE,
    SERVER_CORE,
    can_pin,
    environment_line,
    median,
    percentile,
)

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # the browser tests' loop helper (tests/browser/loop.py)

from tests.browser.loop import ClosedLoop, attach_closed_loop, start_closed_loop  # noqa: E402

TARGET_MS = 300.0  # issue 23: every page <= 300 ms server time
WARMUP = 3
METRIC_KEYS = ("accuracy", "f1_macro", "train_accuracy", "train_f1_macro")


# --- the seed ---------------------------------------------------------------------------


@contextmanager
def _database(path: Path) -> Iterator[sqlite3.Connection]:
    """A connection to a service's SQLite store while the service runs (it waits on the
    service's own writes), committed at the end."""
    connection = sqlite3.connect(path, timeout=60)
    connection.row_factory = sqlite3.Row
    try:
        with connection:
            yield connection
    finally:
        connection.close()


def _insert(connection: sqlite3.Connection, table: str, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    columns = list(rows[0])
    connection.executemany(
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
        [tuple(row[c] for c in columns) for row in rows],
    )


def seed_versions(home: Path, model: str, total: int) -> int:
    """Versions of ``model`` up to ``total``: clones of its latest, newest last."""
    with _database(home / "registry" / "registry.db") as db:
        found = db.execute("SELECT id, last_version FROM registered_models WHERE name = ?", [model])
        model_id, last = found.fetchone()
        template = dict(
            db.execute(
                "SELECT * FROM model_versions WHERE model_id = ? ORDER BY version DESC LIMIT 1",
                [model_id],
            ).fetchone()
        )
        start = template["creation_timestamp"]
        rows = []
        for version in range(last + 1, total + 1):
            row = dict(template)
            row.update(
                version=version,
                creation_timestamp=start + version,
                last_updated_timestamp=start + version,
                storage_key=uuid.uuid4().hex,
                description=f"seeded by bench/console.py ({version})",
            )
            rows.append(row)
        _insert(db, "model_versions", rows)
        if rows:
            db.execute(
                "UPDATE registered_models SET last_version = ? WHERE id = ?", [total, model_id]
            )
        return len(rows)


def seed_windows(home: Path, model: str, total: int) -> int:
    """Drift windows of ``model`` up to ``total``: clones of its latest, older than the
    loop's, the versions alternating."""
    with _database(home / "monitor" / "monitor.db") as db:
        have = db.execute(
            "SELECT count(*) FROM monitor_drift_results WHERE model_name = ?", [model]
        ).fetchone()[0]
        template = dict(
            db.execute(
                "SELECT * FROM monitor_drift_results WHERE model_name = ? AND status = 'drift' "
                "ORDER BY id DESC LIMIT 1",
                [model],
            ).fetchone()
            or db.execute(
                "SELECT * FROM monitor_drift_results WHERE model_name = ? ORDER BY id DESC LIMIT 1",
                [model],
            ).fetchone()
        )
        versions = [
            v
            for (v,) in db.execute(
                "SELECT DISTINCT version FROM monitor_drift_results WHERE model_name = ?", [model]
            )
        ]
        oldest = datetime.fromisoformat(
            db.execute(
                "SELECT min(start_time) FROM monitor_drift_results WHERE model_name = ?", [model]
            ).fetchone()[0]
        )
        columns = json.loads(template["columns"])
        rows = []
        for i in range(total - have):
            end = oldest - timedelta(minutes=i)
            drifted = i % 7 == 0
            scored = [
                {**c, "score": (0.001 if drifted else 0.2 + 0.01 * (i % 50)), "drifted": drifted}
                for c in columns
            ]
            row = dict(template)
            del row["id"]
            row.update(
                version=versions[i % len(versions)],
                window_id=f"{model}/seed/{i:06d}-{uuid.uuid4().hex[:6]}",
                start_time=(end - timedelta(seconds=50)).isoformat(sep=" "),
                end_time=end.isoformat(sep=" "),
                created_at=end.isoformat(sep=" "),
                status="drift" if drifted else "tested",
                drift_share=1.0 if drifted else 0.0,
                dataset_drift=drifted,
                columns=json.dumps(scored),
                report_id=None,
                event_type=None,
                event_id=None,
            )
            rows.append(row)
        _insert(db, "monitor_drift_results", rows)
        return len(rows)


def seed_runs(home: Path, run_id: str, total: int) -> int:
    """Runs of ``run_id``'s experiment up to ``total``: clones of it, older, with four
    metrics (history and latest) and its params."""
    generator = random.Random(23)
    with _database(home / "tracking" / "tracking.db") as db:
        template = dict(db.execute("SELECT * FROM runs WHERE run_uuid = ?", [run_id]).fetchone())
        have = db.execute(
            "SELECT count(*) FROM runs WHERE experiment_id = ?", [template["experiment_id"]]
        ).fetchone()[0]
        params = [dict(p) for p in db.execute("SELECT * FROM params WHERE run_uuid = ?", [run_id])]
        runs, metrics, latest, run_params = [], [], [], []
        for i in range(total - have):
            new = uuid.uuid4().hex
            started = template["start_time"] - (i + 1) * 60_000
            run = dict(template)
            run.update(
                run_uuid=new,
                name=f"seeded-{i:05d}",
                start_time=started,
                end_time=started + 30_000,
                artifact_uri=template["artifact_uri"].replace(run_id, new),
            )
            runs.append(run)
            for key in METRIC_KEYS:
                value = generator.uniform(0.5, 1.0)
                metrics.append(
                    {"run_uuid": new, "key": key, "value": value, "timestamp": started, "step": 0}
                )
                latest.append(
                    {"run_uuid": new, "key": key, "value": value, "timestamp": started, "step": 0}
                )
            for param in params:
                run_params.append({**param, "run_uuid": new})
        _insert(db, "runs", runs)
        _insert(db, "metrics", metrics)
        _insert(db, "latest_metrics", latest)
        _insert(db, "params", run_params)
        return len(runs)


# --- the measurement --------------------------------------------------------------------


@dataclass
class Figures:
    page: str
    path: str
    p50: float
    p99: float
    errors: int
    kib: float


def pages(loop: ClosedLoop) -> list[tuple[str, str]]:
    """(name, path) of every page measured."""
    model = loop.result["model"]
    v1, v2 = loop.result["first_version"], loop.result["new_version"]
    created = {e["version"]: e for e in loop.events("registry.model_version.created")}
    job = loop.events("trainer.training.completed", version=v2)[0]["job_id"]
    run1, run2 = created[v1]["run_id"], created[v2]["run_id"]
    return [
        ("overview", "/"),
        ("model", f"/models/{model}"),
        ("model, page 40", f"/models/{model}?page=40"),
        ("version", f"/models/{model}/versions/{v2}"),
        ("drift", f"/models/{model}/drift"),
        ("drift v1", f"/models/{model}/drift?version={v1}"),
        ("drift, oldest", f"/models/{model}/drift?before_id=30"),
        ("job", f"/jobs/{job}"),
        ("experiments", "/experiments"),
        ("runs", "/experiments/1/runs"),
        ("runs filtered", "/experiments/1/runs?filter=metrics.accuracy+%3E+0.9"),
        ("run", f"/runs/{run2}"),
        ("compare", f"/runs/compare?run_ids={run1},{run2}"),
        ("lineage", f"/models/{model}/lineage"),
    ]


def measure(client: httpx.Client, name: str, path: str, requests: int) -> Figures:
    for _ in range(WARMUP):
        client.get(path)
    times, errors, size = [], 0, 0
    for _ in range(requests):
        started = time.perf_counter()
        answer = client.get(path)
        times.append((time.perf_counter() - started) * 1000)
        size = len(answer.content)
        if answer.status_code != 200:
            errors += 1
    return Figures(name, path, percentile(times, 50), percentile(times, 99), errors, size / 1024)


def pin_console(loop: ClosedLoop) -> str:
    """Pin the console's process (every thread) to the server core."""
    pids = json.loads((loop.home / "suite" / "up.json").read_text()).get("pids", {})
    pid = pids.get("console")
    if pid is None or shutil.which("taskset") is None:
        return "console not pinned"
    done = subprocess.run(
        ["taskset", "-a", "-p", "-c", str(SERVER_CORE), str(pid)],
        capture_output=True,
        check=False,
    )
    return f"console (pid {pid}) on core {SERVER_CORE}" if done.returncode == 0 else "not pinned"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=50, help="Requests per page.")
    parser.add_argument("--versions", type=int, default=1000)
    parser.add_argument("--windows", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--attach", type=Path, help="A loop left running (its folder).")
    parser.add_argument("--keep", action="store_true", help="Leave the loop running.")
    parser.add_argument("--no-pin", action="store_true")
    args = parser.parse_args()
    print(f"console benchmark: {environment_line()}", flush=True)
    if args.attach:
        loop = attach_closed_loop(args.attach.resolve())
    else:
        home = Path(tempfile.mkdtemp(prefix="driftloop-bench-console-"))
        print(f"starting the closed loop (driftloop demo --keep-running) in {home}", flush=True)
        loop = start_closed_loop(home)
        print(f"the loop closed in {loop.seconds:.0f} s", flush=True)
    try:
        run(loop, args)
    finally:
        if args.keep or args.attach:
            print(f"the loop keeps running: --attach {loop.home}")
        else:
            loop.stop()
            shutil.rmtree(loop.home, ignore_errors=True)


def run(loop: ClosedLoop, args: argparse.Namespace) -> None:
    suite = loop.home / "suite"
    model = loop.result["model"]
    v2_run = loop.events("registry.model_version.created", version=loop.result["new_version"])[0][
        "run_id"
    ]
    started = time.monotonic()
    added = (
        seed_versions(suite, model, args.versions),
        seed_windows(suite, model, args.windows),
        seed_runs(suite, v2_run, args.runs),
    )
    print(
        f"seeded {added[0]} versions, {added[1]} drift windows, {added[2]} runs "
        f"(to {args.versions} / {args.windows} / {args.runs}) in "
        f"{time.monotonic() - started:.1f} s",
        flush=True,
    )
    if args.no_pin or not can_pin():
        print("not pinned", flush=True)
    else:
        # Pinned only now: the suite the demo started keeps every core it had.
        os.sched_setaffinity(0, {LOADGEN_CORE})
        print(f"client on core {LOADGEN_CORE}; {pin_console(loop)}", flush=True)
    time.sleep(2)  # let the seed's writes settle
    headers = {"Authorization": f"Bearer {loop.token}", "Accept": "text/html"}
    figures = []
    with httpx.Client(base_url=loop.console_url, headers=headers, timeout=60) as client:
        print(f"{'page':<16} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6} {'KiB':>7}  path")
        for name, path in pages(loop):
            found = measure(client, name, path, args.requests)
            figures.append(found)
            mark = "" if found.p99 <= TARGET_MS and not found.errors else "  <-- over"
            print(
                f"{found.page:<16} {found.p50:8.1f} {found.p99:8.1f} {found.errors:6d} "
                f"{found.kib:7.1f}  {found.path}{mark}",
                flush=True,
            )
    worst = max(figures, key=lambda f: f.p99)
    over = [f.page for f in figures if f.p99 > TARGET_MS or f.errors]
    print(
        f"console: driftloop {len(figures)} pages, median p50 "
        f"{median([f.p50 for f in figures]):.0f} ms, worst p99 {worst.p99:.0f} ms ({worst.page}) "
        f"| no peer (no other tool shows the loop) | target p99 <= {TARGET_MS:.0f} ms per page: "
        + (f"over on {', '.join(over)}" if over else "met")
    )


if __name__ == "__main__":
    main()
