"""Autonomy benchmark: the loop's judgment, scenario by scenario, on one running suite.

One ``driftloop up`` (embedded broker, six services, SQLite) plays every scenario in turn,
each with a model of its own declared by ``driftloop apply`` from the demo's churn world
(a binary classifier over five columns, two categorical; labels sent to the label store
seconds after each answer). Each scenario trains v1 on the world's history, then sends
traffic window by window (150 rows per window at 60 requests/s) and counts what the
loop did:

- ``stationary``: 30 windows of the old market; nothing should happen.
- ``abrupt``: 3 windows of the old market, then the new one until the new champion
  answers, then 8 more windows.
- ``gradual``: the new market's share grows by a tenth per window.
- ``flapping``: old and new market alternate window by window, 12 windows.
- ``cooldown``: the shift begins while v1's cooldown (90 s) runs; the drift persists.
- ``poisoned``: after the shift the labels are coin flips.
- ``delayed``: after the shift the labels arrive 40-80 s after the answers.
- ``outage``: as ``abrupt``, with the broker stopped (SIGSTOP) for 20 s right after the
  first drifted window, then resumed: a broker that hangs, as a network partition does.

Per scenario it prints windows, drift and performance alerts, drifted windows, retrains,
promotions, escalations, worse models promoted (both versions scored with the mlflow
client on 2,000 fresh cases of the distribution at the scenario's end, with their
truth), loop latency (first drifted request -> first answer from a new champion) and
failed requests; then one summary line with the targets.

The peer, measured in the same run on the same windows: the glue this suite replaces
(a job around Evidently's report that retrains whenever a window drifts) would start one
retraining per drifted window; the monitor decides each window as Evidently's preset
does, so the drifted windows it counts are that peer's retrains.

Usage::

    .venv/bin/python bench/autonomy.py [--scenarios abrupt,poisoned,...] [--seed 7]

It prints figures; it never fails on a number. About 15-25 minutes for all scenarios.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from _common import environment_line

from driftloop_cli.demo.run import Demo, DemoOptions, world_env
from driftloop_cli.demo.suite import LOOP_SERVICES, Suite, free_port, start_suite
from driftloop_cli.demo.timeline import now
from driftloop_cli.demo.world import Case, Churn

WINDOW = 150
RATE = 60.0
CHAMPION = "champion"


@dataclass(frozen=True)
class Scenario:
    """One scenario: the traffic's shifted share per window, and what else differs.

    Attributes:
        name: The scenario's name.
        shares: The share of new-market cases in each window, in order.
        until_promoted: After ``shares``, keep sending new-market windows until a new
            champion answers (at most ``max_windows``), then ``after`` more windows.
        trigger: Overrides of the model document's ``trigger`` section.
        poisoned: New-market labels are coin flips.
        label_delay: Seconds (low, high) between an answer and its label, after the shift.
        outage: Seconds the broker is stopped after the first drifted window.
    """

    name: str
    shares: tuple[float, ...]
    until_promoted: bool = False
    after: int = 0
    max_windows: int = 60
    trigger: dict[str, Any] = field(default_factory=dict)
    poisoned: bool = False
    label_delay: tuple[float, float] | None = None
    outage: float = 0.0


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("stationary", (0.0,) * 30),
        Scenario("abrupt", (0.0,) * 3, until_promoted=True, after=8),
        Scenario(
            "gradual",
            (0.0,) * 2 + tuple(i / 10 for i in range(1, 11)),
            until_promoted=True,
            after=6,
        ),
        Scenario("flapping", (0.0, 1.0) * 6, after=4),
        Scenario(
            "cooldown",
            (1.0,),
            until_promoted=True,
            after=6,
            trigger={"cooldown_seconds": 90},
        ),
        Scenario("poisoned", (0.0,) * 2 + (1.0,) * 24, poisoned=True),
        Scenario(
            "delayed",
            (0.0,) * 2,
            until_promoted=True,
            after=6,
            max_windows=100,
            label_delay=(40.0, 80.0),
            trigger={"label_wait_seconds": 240},
        ),
        Scenario("outage", (0.0,) * 2, until_promoted=True, after=6, outage=20.0),
    )
}


#: Scenarios whose loop latency includes a wait they impose (a cooldown, late labels, a
#: broker that hangs for 20 s).
IMPOSED_WAIT = frozenset({"cooldown", "delayed", "outage"})


class BenchWorld(Churn):
    """The churn world under a scenario's name, with its ids, its policy and its labels."""

    def __init__(self, scenario: Scenario, *, seed: int, first_id: int) -> None:
        super().__init__(seed=seed, first_id=first_id)
        self.scenario = scenario
        self.model = f"bench-{scenario.name}"
        self.shifted_ids: set[int] = set()
        self.after_shift = False

    def document(self, *, window_rows: int) -> dict[str, Any]:
        found = super().document(window_rows=window_rows)
        found["metadata"]["labels"] = {"world": "churn", "scenario": self.scenario.name}
        found["spec"]["trigger"].update(self.scenario.trigger)
        return found

    def cases(self, count: int, *, shifted: bool, at: Any) -> list[Case]:
        found = super().cases(count, shifted=shifted, at=at)
        if shifted:
            self.shifted_ids.update(c.entity_id for c in found)
        return found

    def delay(self) -> float:
        low, high = (
            self.scenario.label_delay
            if self.after_shift and self.scenario.label_delay
            else self.label_delay
        )
        return self.random.uniform(low, high)

    def labels_body(self, cases: Any, request_ids: Any) -> dict[str, Any]:
        body = super().labels_body(cases, request_ids)
        if self.scenario.poisoned:
            for case, label in zip(cases, body["labels"], strict=True):
                if case.entity_id in self.shifted_ids:
                    label["ground_truth"] = self.random.choice(("yes", "no"))
        return body


@dataclass
class Outcome:
    """What one scenario did."""

    name: str
    windows: int = 0
    drift_alerts: int = 0
    performance_alerts: int = 0
    drifted_windows: int = 0
    retrains: int = 0
    #: The most retrains one monitor episode started.
    most_per_episode: int = 0
    promotions: int = 0
    escalations: int = 0
    worse_promoted: int = 0
    latency: float | None = None
    failed: int = 0
    sent: int = 0
    notes: list[str] = field(default_factory=list)
    scores: list[str] = field(default_factory=list)
    error: str = ""
    #: The trainer's decisions and the gate's verdicts, oldest first (``--verbose``).
    story: list[str] = field(default_factory=list)


class Runner:
    """Plays scenarios on one suite."""

    def __init__(self, suite: Suite, home: Path, seed: int, echo: Callable[[str], None]) -> None:
        self.suite = suite
        self.home = home
        self.seed = seed
        self.echo = echo

    async def play(self, scenario: Scenario, index: int) -> Outcome:
        options = DemoOptions(home=self.home, window_rows=WINDOW, rate=RATE, world="churn")
        demo = Demo(self.suite, options, lambda line: None)
        world = BenchWorld(scenario, seed=self.seed + index, first_id=(index + 1) * 10_000_000)
        demo.world, demo.model = world, world.model
        result = Outcome(scenario.name)
        await demo.timeline.start()
        labeller = asyncio.create_task(demo._send_labels_when_known())
        try:
            await demo.declare()
            await demo.seed()
            v1 = await demo.train_first_model()
            await demo.wait_serving(v1)
            await demo.wait_reference(v1)
            started = now()
            self.echo(f"  [{scenario.name}] v{v1} champion; traffic begins")
            await self._traffic(demo, world, scenario, v1, result)
            await asyncio.sleep(8)  # the last windows' events and decisions land
            await self._count(
                demo, world=world, scenario=scenario, v1=v1, started=started, result=result
            )
        except Exception as error:  # a scenario that breaks is reported, the others run
            result.error = f"{type(error).__name__}: {error}"
        finally:
            labeller.cancel()
            await asyncio.gather(labeller, return_exceptions=True)
            await demo.timeline.stop()
            await demo.client.aclose()
        return result

    async def _window(self, demo: Demo, world: BenchWorld, share: float) -> None:
        for _ in range(WINDOW // 10):
            shifted = world.random.random() < share
            if shifted:
                world.after_shift = True
            await demo.send(10, shifted=shifted)

    async def _traffic(
        self, demo: Demo, world: BenchWorld, scenario: Scenario, v1: int, result: Outcome
    ) -> None:
        for share in scenario.shares:
            await self._window(demo, world, share)
            result.windows += 1
            if scenario.outage and world.after_shift and result.windows == len(scenario.shares):
                await self._outage(scenario.outage)
        if scenario.until_promoted:
            if scenario.outage and not world.after_shift:
                await self._window(demo, world, 1.0)
                result.windows += 1
                await self._outage(scenario.outage)
            for _ in range(scenario.max_windows):
                if any(v != str(v1) for v in demo.traffic.first_answer):
                    break
                await self._window(demo, world, 1.0)
                result.windows += 1
            else:
                result.notes.append(f"no new champion answered in {scenario.max_windows} windows")
        for _ in range(scenario.after):
            await self._window(demo, world, 1.0 if world.after_shift else 0.0)
            result.windows += 1

    async def _outage(self, seconds: float) -> None:
        pid = int(json.loads((self.home / "up.json").read_text())["pids"]["broker"])
        self.echo(f"    broker (pid {pid}) stopped for {seconds:.0f} s")
        os.kill(pid, signal.SIGSTOP)
        try:
            await asyncio.sleep(seconds)
        finally:
            os.kill(pid, signal.SIGCONT)

    async def _count(
        self,
        demo: Demo,
        *,
        world: BenchWorld,
        scenario: Scenario,
        v1: int,
        started: datetime,
        result: Outcome,
    ) -> None:
        mine = [
            e
            for e in demo.timeline.entries
            if e.facts.get("model") == world.model and e.time >= started
        ]
        result.drift_alerts = sum(e.kind == "monitor.drift.detected" for e in mine)
        result.performance_alerts = sum(e.kind == "monitor.performance.degraded" for e in mine)
        promotions = [
            e
            for e in mine
            if e.kind == "registry.alias.set"
            and e.facts.get("alias") == CHAMPION
            and e.facts.get("version") != v1
        ]
        result.promotions = len(promotions)
        decisions = (
            await demo.client.get(
                demo.url("trainer", "/decisions"), params={"model": world.model, "limit": 1000}
            )
        ).json()["decisions"]
        jobs_started = [d for d in decisions if d["outcome"] == "started" and d["kind"] != "manual"]
        result.retrains = len(jobs_started)
        per_episode = Counter(d.get("episode_id") or d["job_id"] for d in jobs_started)
        result.most_per_episode = max(per_episode.values(), default=0)
        result.escalations = sum(1 for d in decisions if d["outcome"] == "escalated")
        jobs = (
            await demo.client.get(
                demo.url("trainer", "/jobs"), params={"model": world.model, "limit": 100}
            )
        ).json()["jobs"]
        verdicts = {
            j["id"]: (j.get("evaluation") or {}).get("reason", j.get("error")) for j in jobs
        }
        for d in reversed(decisions):
            said = f"{d['decided_at'][11:19]} {d['kind']} {d['outcome']}"
            said += f" [{d.get('episode_id') or '-'}] {d['detail'][:160]}"
            if d.get("job_id"):
                said += f" -> job {d['job_id']}: {verdicts.get(d['job_id'])}"
            result.story.append(said)
        result.story += [
            f"{e.time.isoformat()[11:19]} {e.summary}"
            for e in mine
            if e.kind.startswith("monitor.")
        ]
        drift = (
            await demo.client.get(
                demo.url("monitor", f"/models/{world.model}/drift"), params={"limit": 1000}
            )
        ).json()
        result.drifted_windows = sum(1 for w in drift if w.get("dataset_drift"))
        result.sent, result.failed = demo.traffic.sent, demo.traffic.failed
        answered = [v for v in demo.traffic.first_answer if v != str(v1)]
        if answered and demo.first_drifted_request:
            first = min(demo.traffic.first_answer[v] for v in answered)
            result.latency = (first - demo.first_drifted_request).total_seconds()
        share = scenario.shares[-1] if not scenario.until_promoted else 1.0
        if not world.after_shift:
            share = 0.0
        previous = v1
        for entry in promotions:
            version = int(entry.facts["version"])
            old, new = await asyncio.to_thread(self._score, world, [previous, version], share)
            result.scores.append(f"v{previous} {old:.3f} -> v{version} {new:.3f}")
            if new < old - 0.01:
                result.worse_promoted += 1
            previous = version

    def _score(self, world: BenchWorld, versions: list[int], share: float) -> list[float]:
        """Each version's accuracy on 2,000 fresh cases of the final distribution."""
        import mlflow
        import pandas as pd  # type: ignore[import-untyped]

        from driftloop_cli.credentials import ADMIN_TOKEN_FILE

        os.environ["MLFLOW_TRACKING_TOKEN"] = (self.home / ADMIN_TOKEN_FILE).read_text().strip()
        mlflow.set_tracking_uri(self.suite.urls["tracking"])
        mlflow.set_registry_uri(self.suite.urls["registry"])
        judge = Churn(seed=self.seed + 1000)
        truth, rows = [], []
        for _ in range(2000):
            label, features, _ = judge.draw(shifted=judge.random.random() < share)
            truth.append(label)
            rows.append(features)
        frame = pd.DataFrame(rows)
        found = []
        for version in versions:
            model = mlflow.pyfunc.load_model(f"models:/{world.model}/{version}")
            predicted = [str(p) for p in model.predict(frame)]
            found.append(sum(p == t for p, t in zip(predicted, truth, strict=True)) / len(truth))
        return found


def start(home: Path, echo: Callable[[str], None]) -> Suite:
    ports = {name: free_port() for name in LOOP_SERVICES}
    env = world_env("churn", home, ports)
    return start_suite(home, env=env, broker_port=free_port(), timeout=240, echo=echo)


def line(o: Outcome) -> str:
    latency = f"{o.latency:.1f} s" if o.latency is not None else "-"
    return (
        f"  {o.name:<10} windows {o.windows:>3} | drifted {o.drifted_windows:>3} | alerts "
        f"drift {o.drift_alerts} perf {o.performance_alerts} | retrains {o.retrains} "
        f"(most per episode {o.most_per_episode}) | promotions {o.promotions} | "
        f"escalations {o.escalations} | worse promoted "
        f"{o.worse_promoted} | latency {latency} | failed {o.failed}/{o.sent}"
        + (f" | {'; '.join(o.scores)}" if o.scores else "")
        + (f" | {'; '.join(o.notes)}" if o.notes else "")
        + (f" | ERROR {o.error}" if o.error else "")
    )


def main() -> None:
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", type=Path, help="write the outcomes as JSON here")
    parser.add_argument(
        "--verbose", action="store_true", help="print each scenario's decisions and alerts"
    )
    args = parser.parse_args()
    chosen = [SCENARIOS[name] for name in args.scenarios.split(",") if name]
    print(environment_line())

    def echo(message: str) -> None:
        print(message, flush=True)

    outcomes: list[Outcome] = []
    with tempfile.TemporaryDirectory(prefix="driftloop-bench-autonomy-") as tmp:
        home = Path(tmp)
        began = time.monotonic()
        suite = start(home, echo)
        echo(f"suite up in {time.monotonic() - began:.0f} s; logs in {home}/logs")
        try:
            runner = Runner(suite, home, args.seed, echo)
            for index, scenario in enumerate(chosen):
                began = time.monotonic()
                outcome = asyncio.run(runner.play(scenario, index))
                outcomes.append(outcome)
                echo(line(outcome) + f"  ({time.monotonic() - began:.0f} s)")
                if args.verbose:
                    for said in outcome.story:
                        echo(f"      {said}")
        finally:
            suite.stop()
    if args.json:
        args.json.write_text(json.dumps([o.__dict__ for o in outcomes], indent=2))
    summarize(outcomes)


def summarize(outcomes: list[Outcome]) -> None:
    """The per-scenario targets in one line, and the peer's retrains next to ours."""
    stationary = next((o for o in outcomes if o.name == "stationary"), None)
    rate = "-"
    if stationary is not None and stationary.windows:
        rate = f"{stationary.drift_alerts / stationary.windows:.1%}"
    most_retrains = max((o.most_per_episode for o in outcomes), default=0)
    worse = sum(o.worse_promoted for o in outcomes)
    # The cooldown and the late labels are waits the scenario imposes on purpose.
    latencies = sorted(
        o.latency for o in outcomes if o.latency is not None and o.name not in IMPOSED_WAIT
    )
    p90 = median = "-"
    if latencies:
        p90 = f"{latencies[min(len(latencies) - 1, int(0.9 * len(latencies)))]:.1f} s"
        median = f"{statistics.median(latencies):.1f} s"
    errors = [o.name for o in outcomes if o.error]
    print(
        f"autonomy: stationary windows alerting {rate} (target <= 1%) | most retrains of an "
        f"episode {most_retrains} (target <= 1) | worse models promoted {worse} (target 0) | "
        f"loop latency p90 {p90} (target <= 30 s; median {median}; without "
        f"{', '.join(sorted(IMPOSED_WAIT))}) | retrains driftloop "
        f"{sum(o.retrains for o in outcomes)} vs per-drifted-window glue "
        f"{sum(o.drifted_windows for o in outcomes)} | failed requests "
        f"{sum(o.failed for o in outcomes)}"
        + (f" | scenarios with errors: {', '.join(errors)}" if errors else "")
    )


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    main()
