"""Chaos: the closed loop while its processes are killed and its broker stops.

The suite runs as the demo runs it (``driftloop up`` on free ports, the embedded
defaults: tansu, SQLite, local files) and the demo's iris world drives it, in this
process. While the loop runs, each service's process gets ``kill -9`` once, and
``driftloop up`` must bring it back:

- before the shift, under steady traffic: serving, features, tracking, registry, then
  the broker is stopped for 30 s;
- after the shift: the monitor at once, the trainer as soon as the retraining job the
  drift alert started is requested (idle, when none is within 120 s).

The broker is stopped with SIGSTOP and resumed with SIGCONT, not killed and restarted:
the embedded tansu keeps its topics in memory (``memory://``; it has no data dir), so a
restart would come back with empty topics and no committed offsets, which is losing
the broker's disk, not an outage. A frozen broker is what a partition or a paused
node looks like to the clients: connections that answer nothing until it resumes.

The client behaves as a production client would: a request that fails is retried (same
request id) until it is answered; a push or a label that fails is sent again. Then:

- the loop still closes (drift alert -> retraining -> v2 promoted -> serving answers v2);
- every answered request id has a record on the ``predictions`` topic (retried
  requests count once, by request id);
- no trigger started two training jobs, and no alias moved twice to one version;
- no inference request failed while serving itself was up (from its kill to the first
  ``/readyz`` 200 of its new process it was down; everything else counts, the broker's
  outage too).

One run of the suite serves every test of the module (a module fixture); each test
asserts one of the above, so a known failure is marked on its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from driftloop_cli.demo.run import Demo, DemoOptions, world_env
from driftloop_cli.demo.suite import LOOP_SERVICES, Suite, free_port, start_suite
from driftloop_cli.demo.timeline import Timeline, now
from driftloop_cli.demo.world import Case
from driftloop_events.envelope import from_record
from driftloop_events.topics import TOPICS

pytestmark = pytest.mark.e2e

#: Killed one after the other under steady traffic, before the shift.
BEFORE_SHIFT = ("serving", "features", "tracking", "registry")
#: Seconds the broker is frozen.
BROKER_OUTAGE = 30.0
#: Seconds a killed service has to be back (ready) before the test gives up on it.
BACK_WITHIN = 120.0
#: Seconds after the shift the trainer's kill waits for a retraining job to start.
TRAINER_WAITS = 120.0
#: Seconds a client keeps retrying one call.
RETRY_FOR = 120.0


@dataclass
class Outage:
    """One process stopped on purpose: when (monotonic seconds) and for how long."""

    name: str
    began: float
    #: When its new process answered ``/healthz`` (alive: what supervision promises).
    alive_at: float | None = None
    #: When it answered ``/readyz`` again (the broker: when it was resumed).
    ended: float | None = None
    new_pid: int | None = None

    def overlaps(self, start: float, end: float) -> bool:
        """Whether ``[start, end]`` touches the outage."""
        return start <= (self.ended if self.ended is not None else float("inf")) and (
            end >= self.began
        )


@dataclass
class Chaos:
    """Kills the suite's processes (pids from ``up.json``) and waits for them to return."""

    suite: Suite
    say: Callable[[str], None]
    outages: list[Outage] = field(default_factory=list)

    def pids(self) -> dict[str, int]:
        state = json.loads((self.suite.home / "up.json").read_text())
        return {name: int(pid) for name, pid in state["pids"].items()}

    async def kill(self, name: str) -> Outage:
        """``kill -9`` the service, then wait (bounded) until a new process of it is alive
        and then ready; an outage that never ends is left open for the assertions."""
        old = self.pids()[name]
        os.kill(old, signal.SIGKILL)
        outage = Outage(name, time.monotonic())
        self.outages.append(outage)
        self.say(f"CHAOS kill -9 {name} (pid {old})")
        base = self.suite.urls[name]
        async with httpx.AsyncClient(timeout=2.0, trust_env=False) as client:
            while time.monotonic() - outage.began < BACK_WITHIN:
                await asyncio.sleep(0.2)
                pid = (await asyncio.to_thread(self.pids)).get(name, old)
                if pid == old:
                    continue
                outage.new_pid = pid
                path = "/healthz" if outage.alive_at is None else "/readyz"
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(f"{base}{path}")).status_code != 200:
                        continue
                    if outage.alive_at is None:
                        outage.alive_at = time.monotonic()
                        continue
                    outage.ended = time.monotonic()
                    self.say(
                        f"CHAOS {name} is back as pid {pid}: alive after "
                        f"{outage.alive_at - outage.began:.1f} s, ready after "
                        f"{outage.ended - outage.began:.1f} s"
                    )
                    return outage
        self.say(f"CHAOS {name} was not ready {BACK_WITHIN:.0f} s after its kill")
        return outage

    async def freeze_broker(self, seconds: float) -> Outage:
        """SIGSTOP the broker for ``seconds``, then SIGCONT it."""
        pid = self.pids()["broker"]
        os.kill(pid, signal.SIGSTOP)
        outage = Outage("broker", time.monotonic())
        self.outages.append(outage)
        self.say(f"CHAOS broker stopped (SIGSTOP pid {pid}) for {seconds:.0f} s")
        try:
            await asyncio.sleep(seconds)
        finally:
            os.kill(pid, signal.SIGCONT)
        outage.ended = time.monotonic()
        self.say("CHAOS broker resumed (SIGCONT)")
        return outage

    async def before_shift(self) -> None:
        for name in BEFORE_SHIFT:
            await asyncio.sleep(3)
            await self.kill(name)
        await asyncio.sleep(3)
        await self.freeze_broker(BROKER_OUTAGE)
        await asyncio.sleep(5)  # the clients reconnect under traffic

    async def after_shift(self, timeline: Timeline, client: httpx.AsyncClient) -> None:
        shift = now()
        # The trainer while it holds the retraining job (the first job after the shift),
        # or, when none has started within TRAINER_WAITS seconds of the shift, idle.
        deadline = time.monotonic() + TRAINER_WAITS
        await asyncio.sleep(2)
        await self.kill("monitor")
        while time.monotonic() < deadline:
            requested = [
                e
                for e in timeline.entries
                if e.kind == "trainer.training.requested" and e.time >= shift
            ]
            if requested:
                self.say(f"CHAOS the retraining job {requested[0].facts['job_id']} was requested")
                break
            await asyncio.sleep(0.1)
        else:
            self.say(f"CHAOS no retraining job {TRAINER_WAITS:.0f} s after the shift")
        await self.kill("trainer")


class ChaosDemo(Demo):
    """The demo's world and steps, with chaos in its traffic and a client that retries."""

    def __init__(self, suite: Suite, options: DemoOptions, echo: Callable[[str], None]) -> None:
        super().__init__(suite, options, echo)
        self.chaos = Chaos(suite, self.say)
        #: Request ids serving answered (200), once each.
        self.answered: set[str] = set()
        #: Every failed attempt of an inference request: (start, end, error).
        self.attempt_failures: list[tuple[float, float, str]] = []

    async def run(self) -> dict[str, Any]:
        await self.timeline.start()
        labeller = asyncio.create_task(self._send_labels_when_known())
        try:
            await self.declare()
            await self.seed()
            v1 = await self.train_first_model()
            await self.wait_serving(v1)
            await self.wait_reference(v1)
            self.say("steady traffic from the home site while the chaos runs")
            chaos = asyncio.create_task(self.chaos.before_shift())
            while not chaos.done():
                await self.send(10, shifted=False)
            await chaos
            self.options.before_rows = self.traffic.sent
            after = asyncio.create_task(self.chaos.after_shift(self.timeline, self.client))
            result = await self.shift_and_wait(v1)
            await after  # every service is killed once, even when the loop closed first
            result.update(await self.evidence(result.get("new_version")))
            return result
        finally:
            labeller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await labeller
            await self.timeline.stop()
            await self.client.aclose()

    async def _retry(self, what: str, call: Callable[[], Any]) -> httpx.Response:
        deadline = time.monotonic() + RETRY_FOR
        while True:
            try:
                response: httpx.Response = await call()
                if response.status_code < 500:
                    return response
                error = f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"
            if time.monotonic() > deadline:
                raise AssertionError(f"{what} failed for {RETRY_FOR:.0f} s: {error}")
            await asyncio.sleep(0.5)

    async def _push(self, cases: Sequence[Case]) -> None:
        body = self.world.push_body(cases)
        url = self.url("features", "/push")
        response = await self._retry("pushing features", lambda: self.client.post(url, json=body))
        assert response.status_code < 400, response.text

    async def _label(self, cases: Sequence[Case], request_ids: Sequence[str]) -> None:
        body = self.world.labels_body(cases, request_ids)
        url = self.url("features", "/labels")
        response = await self._retry("sending labels", lambda: self.client.post(url, json=body))
        assert response.status_code < 400, response.text

    async def _infer(self, case: Case) -> None:
        self.traffic.sent += 1
        request_id = f"demo-{self.world.name}-{case.entity_id}"
        url = self.url("serving", f"/v2/models/{self.model}/infer")
        deadline = time.monotonic() + RETRY_FOR
        while True:
            began = time.monotonic()
            try:
                response = await self.client.post(url, json=self.world.v2_request(case, request_id))
                error = "" if response.status_code == 200 else f"HTTP {response.status_code}"
                error += f" {response.text[:200]}" if error else ""
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"
            if not error:
                break
            self.attempt_failures.append((began, time.monotonic(), error))
            if time.monotonic() > deadline:
                self._failed(error)
                return
            await asyncio.sleep(0.3)
        answer = response.json()
        version = answer["model_version"]
        self.answered.add(request_id)
        self.traffic.versions[version] += 1
        self.traffic.first_answer.setdefault(version, now())
        right = str(answer["outputs"][0]["data"][0]) == case.label
        self.traffic.correct[version] += right
        self.traffic.answers.append((version, right))

    def failures_while_serving_up(self) -> list[tuple[float, float, str]]:
        """Failed attempts that do not overlap one of serving's own outages."""
        down = [o for o in self.chaos.outages if o.name == "serving"]
        return [f for f in self.attempt_failures if not any(o.overlaps(f[0], f[1]) for o in down)]


async def logged_request_ids(bootstrap_servers: str) -> Counter[str]:
    """Request ids of every record on the predictions topic, from the first to the last."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    topic = TOPICS["predictions"].name
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers, group_id=None, enable_auto_commit=False
    )
    await consumer.start()
    found: Counter[str] = Counter()
    try:
        await consumer.topics()  # fresh metadata: the topic's partitions
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        remaining = {tp for tp in partitions if ends[tp] > 0}
        deadline = time.monotonic() + 60
        while remaining and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=1000, max_records=5000)
            for tp, records in batches.items():
                for record in records:
                    event = from_record(record.value, record.headers)
                    found[event.data.request_id] += 1
                if records and records[-1].offset + 1 >= ends[tp]:
                    remaining.discard(tp)
    finally:
        await consumer.stop()
    return found


@dataclass
class Scenario:
    """What one chaos run left: the demo (its client's record, the outages), its result,
    the predictions topic's request ids, the trainer's jobs and alias moves."""

    demo: ChaosDemo
    result: dict[str, Any]
    logged: Counter[str]
    jobs: list[dict[str, Any]]
    moves: list[dict[str, Any]]
    output: str


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    """The suite started as the demo starts it, the iris world driven through the chaos."""
    home = (tmp_path_factory.mktemp("chaos") / "home").resolve()
    home.mkdir()
    ports = {name: free_port() for name in LOOP_SERVICES}
    env = world_env("iris", home, ports)
    lines: list[str] = []

    def echo(line: str) -> None:
        lines.append(line)
        print(line, flush=True)

    started = time.monotonic()
    suite = start_suite(home, env=env, broker_port=free_port(), timeout=240, echo=echo)
    try:
        demo = ChaosDemo(suite, DemoOptions(home=home, world="iris", loop_timeout=180), echo)
        result = asyncio.run(demo.run())
        logged = asyncio.run(logged_request_ids(suite.broker))
        headers = demo.client.headers
        trainer = suite.urls["trainer"]
        jobs = httpx.get(
            f"{trainer}/jobs",
            params={"model": demo.model, "limit": 1000},
            headers=headers,
            trust_env=False,
        ).json()["jobs"]
        moves = httpx.get(
            f"{trainer}/models/{demo.model}/alias-moves", headers=headers, trust_env=False
        ).json()["alias_moves"]
    finally:
        suite.stop()
    echo(f"the chaos run took {time.monotonic() - started:.0f} s")
    for outage in demo.chaos.outages:
        alive = f"{outage.alive_at - outage.began:.1f} s" if outage.alive_at else "never"
        ready = f"{outage.ended - outage.began:.1f} s" if outage.ended else "never"
        echo(f"outage {outage.name}: alive after {alive}, ready after {ready}")
    return Scenario(demo, result, logged, jobs, moves, "\n".join(lines[-150:]))


@pytest.mark.timeout(900)
def test_each_process_is_killed_once_and_supervision_brings_it_back(scenario: Scenario) -> None:
    outages = scenario.demo.chaos.outages
    assert sorted(o.name for o in outages) == sorted([*LOOP_SERVICES, "broker"])
    assert sorted(scenario.result["services_restarted"]) == sorted(LOOP_SERVICES)
    # A new process of each service answers /healthz (the broker was resumed).
    assert [o.name for o in outages if o.name != "broker" and o.alive_at is None] == []


@pytest.mark.timeout(900)
def test_the_loop_still_closes(scenario: Scenario) -> None:
    result = scenario.result
    monitor = next(o for o in scenario.demo.chaos.outages if o.name == "monitor")
    assert monitor.ended is not None, "the monitor was not ready again after its kill"
    assert result["loop_closed"], scenario.output
    assert all(result["links"].values()), result["links"]
    v2 = result["new_version"]
    assert result["requests"]["by_version"].get(str(v2), 0) > 0


@pytest.mark.timeout(900)
def test_no_prediction_record_is_lost(scenario: Scenario) -> None:
    answered, logged = scenario.demo.answered, scenario.logged
    missing = sorted(answered - set(logged))
    print(
        f"answered request ids {len(answered)}, on the topic {len(logged)}, "
        f"records {sum(logged.values())}, missing {len(missing)}"
    )
    assert len(answered) > 500  # traffic flowed through the chaos
    assert missing == [], f"{len(missing)} of {len(answered)} lost: {missing[:10]}"


@pytest.mark.timeout(900)
def test_no_trigger_runs_two_jobs_and_no_alias_moves_twice(scenario: Scenario) -> None:
    jobs, moves = scenario.jobs, scenario.moves
    assert jobs  # v1's job at least
    triggers = Counter(json.dumps(job["trigger"], sort_keys=True) for job in jobs)
    assert [t for t, n in triggers.items() if n > 1] == [], jobs
    moved = Counter((m["alias"], m["version"]) for m in moves)
    assert [m for m, n in moved.items() if n > 1] == [], moves
    # A record delivered twice is one move; two event ids for one move are two moves.
    alias_events = Counter(
        (e.get("alias"), e.get("version"))
        for e in {e["event_id"]: e for e in scenario.result["timeline"]}.values()
        if e["kind"] == "registry.alias.set"
    )
    assert [m for m, n in alias_events.items() if n > 1] == [], alias_events
    assert alias_events[("champion", scenario.result["first_version"])] == 1


@pytest.mark.timeout(900)
def test_no_inference_request_fails_while_serving_is_up(scenario: Scenario) -> None:
    demo = scenario.demo
    failures = demo.failures_while_serving_up()
    print(f"failed attempts {len(demo.attempt_failures)}, while serving was up {len(failures)}")
    print("by error:", dict(Counter(error[:60] for _, _, error in failures)))
    assert failures == [], failures[:10]
    assert scenario.result["requests"]["failed"] == 0, scenario.result["requests"]["errors"]
