"""Loop benchmark: drift onset → first answer from the new champion, on embedded defaults.

Runs ``driftloop demo`` (the whole suite on free ports, the demo's training job) ``--runs``
times and prints, per run and as the median, the loop latency and where it goes:

- **detect**: first drifted request → ``drift.detected`` (the monitor's window fills and
  is decided);
- **trigger**: the first alert → ``training.requested`` (the trainer's policy);
- **train**: ``training.requested`` → ``training.completed`` (features, fit, tracking,
  registry, evaluation gate);
- **swap**: ``alias.set`` → serving's first answer from the new version.

With ``--traced-runs N`` (default 1), N more runs have tracing on
(``DRIFTLOOP_OTLP_ENDPOINT`` pointing at an OTLP receiver in this process): their loop
latency is printed beside the untraced median, with the spans received.

Target: ≤ 60 s. There is no peer to run in the same run: the managed peers (SageMaker
Model Monitor, Vertex AI Model Monitoring, a cron job around Evidently) schedule
monitoring hourly at best, so a loop built on them waits 30 min on average for the
next monitoring run before any retraining starts; the summary line puts the median next
to that half hour.

Usage::

    .venv/bin/python bench/loop.py [--runs N]

It prints figures and a summary line; it never fails on a time.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

from _common import environment_line, median

from driftloop_kit.otlp_receiver import OtlpReceiver

HOURLY_SCHEDULE_WAIT = 1800.0  # mean wait for the next run of an hourly monitoring job


def _time(entry: dict[str, Any] | None) -> datetime | None:
    return datetime.fromisoformat(entry["time"]) if entry else None


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    return (end - start).total_seconds() if start and end else None


def phases(result: dict[str, Any]) -> dict[str, float | None]:
    """The loop latency and its parts, from the demo's timeline."""
    events = result["timeline"]
    onset = datetime.fromisoformat(result["first_drifted_request"])
    answer = datetime.fromisoformat(result["first_new_version_answer"])
    v2 = result["new_version"]
    completed = next(
        e
        for e in events
        if e["kind"] == "trainer.training.completed" and e.get("version") == v2 and e["promoted"]
    )
    requested = next(
        e
        for e in events
        if e["kind"] == "trainer.training.requested" and e["job_id"] == completed["job_id"]
    )
    alert = next(
        (e for e in events if e["kind"].startswith("monitor.") and _time(e) >= onset), None
    )
    promoted = next(
        e
        for e in events
        if e["kind"] == "registry.alias.set" and e["alias"] == "champion" and e["version"] == v2
    )
    return {
        "loop": result["loop_latency_seconds"],
        "detect": _seconds(onset, _time(alert)),
        "trigger": _seconds(_time(alert), _time(requested)),
        "train": _seconds(_time(requested), _time(completed)),
        "swap": _seconds(_time(promoted), answer),
    }


def run_once(folder: Path, otlp_endpoint: str | None = None) -> dict[str, Any] | None:
    timeline = folder / "timeline.json"
    env = dict(os.environ)
    if otlp_endpoint:
        env["DRIFTLOOP_OTLP_ENDPOINT"] = otlp_endpoint
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "driftloop_cli",
            "demo",
            "--free-ports",
            "--home",
            str(folder / "home"),
            "--timeline-json",
            str(timeline),
        ],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    if done.returncode != 0 or not timeline.exists():
        print(
            f"  the demo failed (exit {done.returncode}):\n"
            f"{done.stdout[-3000:]}{done.stderr[-2000:]}"
        )
        return None
    result: dict[str, Any] = json.loads(timeline.read_text())
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="demo runs (each ~2-4 min)")
    parser.add_argument("--traced-runs", type=int, default=1, help="more demo runs with tracing on")
    args = parser.parse_args()
    print(environment_line())
    found: list[dict[str, float | None]] = []
    with tempfile.TemporaryDirectory(prefix="driftloop-bench-loop-") as tmp:
        for i in range(args.runs):
            result = run_once(Path(tmp) / f"run-{i}")
            if result is None:
                continue
            parts = phases(result)
            found.append(parts)
            print(
                f"  run {i + 1}: loop {parts['loop']:.1f} s = detect {parts['detect']:.1f} s"
                f" + trigger {parts['trigger']:.1f} s + train {parts['train']:.1f} s"
                f" + promote/swap {parts['swap']:.1f} s (+ waits between)"
            )
    if not found:
        print("loop: no run closed the loop")
        sys.exit(1)
    med = {k: median([p[k] for p in found if p[k] is not None]) for k in found[0]}
    print(
        f"  median of {len(found)}: loop {med['loop']:.1f} s (detect {med['detect']:.1f}, "
        f"trigger {med['trigger']:.1f}, train {med['train']:.1f}, swap {med['swap']:.1f})"
    )
    traced = traced_runs(args.traced_runs)
    if traced:
        print(
            f"  with tracing on (OTLP to a receiver in this process), median of {len(traced)}: "
            f"loop {median(traced):.1f} s vs {med['loop']:.1f} s off "
            f"({median(traced) / med['loop']:.2f}x)"
        )
    print(
        f"loop: driftloop {med['loop']:.1f} s drift onset -> new champion answering "
        f"(target <= 60 s) | hourly monitoring schedule: {HOURLY_SCHEDULE_WAIT:.0f} s mean wait "
        f"before retraining can start | ratio {HOURLY_SCHEDULE_WAIT / med['loop']:.0f}x"
    )


def traced_runs(runs: int) -> list[float]:
    """Loop latencies of ``runs`` demo runs with tracing on."""
    found: list[float] = []
    with tempfile.TemporaryDirectory(prefix="driftloop-bench-loop-traced-") as tmp:
        for i in range(runs):
            receiver = OtlpReceiver()
            with receiver.running():
                result = run_once(Path(tmp) / f"run-{i}", otlp_endpoint=receiver.endpoint)
            if result is None:
                continue
            found.append(float(result["loop_latency_seconds"]))
            print(
                f"  traced run {i + 1}: loop {found[-1]:.1f} s, "
                f"{len(receiver.spans)} spans received"
            )
    return found


if __name__ == "__main__":
    main()
