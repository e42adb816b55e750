"""``driftloop demo``: the closed loop, end to end, on embedded defaults.

1. start the suite (``driftloop up``: embedded broker, six services, SQLite, local files);
2. seed the feature store with the field's history and write its labels;
3. train v1 through the trainer, which registers it and promotes it to ``champion``;
4. send prediction traffic (features pushed first, labels after each answer);
5. shift the input distribution (flowers from a new site);
6. watch the loop close by itself: drift alert → retraining → evaluation gate → v2
   promoted → serving answers with v2, with no request failing.

Every event of the loop is read from the topics and printed as it happens; the end
prints the timeline and the loop latency (first drifted request → first answer from
the new champion). The exit code is 0 only if the loop closed with no failed request.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from driftloop_cli.credentials import ADMIN_TOKEN_FILE, auth_header
from driftloop_cli.demo.suite import Suite, SuiteError, free_port, start_suite, wiring_env
from driftloop_cli.demo.timeline import Entry, Timeline, now
from driftloop_cli.demo.world import LABEL, Field, Flower, LabelsFile, push_body, v2_request

MODEL = "iris-classifier"
CHAMPION = "champion"

Echo = Callable[[str], None]


class DemoFailed(RuntimeError):
    """A step of the demo did not happen in time; the message says which and where to look."""


@dataclass
class DemoOptions:
    """What ``driftloop demo`` does (its command-line options).

    Attributes:
        home: State and logs of the suite the demo starts (wiped first).
        free_ports: Start the suite on free ports instead of the defaults (tests, CI).
        seed_rows: Flowers in the field's history (what v1 is trained on).
        before_rows: Requests sent before the shift.
        window_rows: The monitor's window for the demo model.
        rate: Requests per second sent.
        loop_timeout: Seconds the loop has to close after the shift.
        startup_timeout: Seconds the suite has to start.
        timeline_json: Where to write the timeline and the figures as JSON.
        keep_running: Leave the suite running at the end (Ctrl-C stops it).
    """

    home: Path = Path(".driftloop/demo")
    free_ports: bool = False
    seed_rows: int = 450
    before_rows: int = 150
    window_rows: int = 150
    rate: float = 60.0
    loop_timeout: float = 240.0
    startup_timeout: float = 240.0
    timeline_json: Path | None = None
    keep_running: bool = False


@dataclass
class Traffic:
    """What the requests met."""

    sent: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)
    versions: Counter[str] = field(default_factory=Counter)
    correct: Counter[str] = field(default_factory=Counter)
    first_answer: dict[str, datetime] = field(default_factory=dict)
    #: (version, right?) of every answer, in order.
    answers: list[tuple[str, bool]] = field(default_factory=list)


def trainer_models(labels: Path) -> dict[str, Any]:
    """The trainer's configuration of the demo model (``DRIFTLOOP_TRAINER_MODELS``).

    The job reads the labels file and the point-in-time features of each labelled
    flower; a retraining looks at the last day (the live traffic), the first model at
    the whole history (its trigger's parameters say so). A burst of alerts starts one
    job (debounce); the cooldown is short so the demo's first model does not hold
    the drift-triggered retraining back. The reference sample the monitor gets is the
    most recent 100 training rows, so a retrained model is watched against the new
    site's data it was trained for.
    """
    return {
        MODEL: {
            "policy": {"debounce_seconds": 10, "cooldown_seconds": 5, "dedup_seconds": 3600},
            "job": {
                "feature_service": "iris_classifier",
                "feature_views": ["iris_features"],
                "label": LABEL,
                "labels_source": str(labels.resolve()),
                "training_window_days": 1,
                "evaluation_fraction": 0.2,
                "parameters": {
                    "estimator": "random_forest",
                    "n_estimators": "60",
                    "random_state": "0",
                    "reference_rows": "100",
                },
                "timeout_seconds": 300,
            },
        }
    }


class Demo:
    """One run of the demo against a started suite."""

    def __init__(self, suite: Suite, options: DemoOptions, echo: Echo) -> None:
        self.suite = suite
        self.options = options
        self.echo = echo
        self.started = now()
        self.field = Field(seed=7)
        self.labels = LabelsFile(options.home / "labels.csv")
        self.traffic = Traffic()
        self.timeline = Timeline(suite.broker, on_entry=self._show)
        self.shift_at: datetime | None = None
        self.first_drifted_request: datetime | None = None
        self.publisher: Any = None
        # Authentication is on: the demo calls with the admin token `driftloop up` made.
        self.client = httpx.AsyncClient(
            timeout=30.0, trust_env=False, headers=auth_header(suite.home)
        )

    def url(self, service: str, path: str) -> str:
        return f"{self.suite.urls[service].rstrip('/')}{path}"

    def say(self, message: str) -> None:
        offset = (now() - self.started).total_seconds()
        self.echo(f"[{offset:7.2f}s] {message}")

    def _show(self, entry: Entry) -> None:
        self.echo(f"          event  {entry.line(self.started)}")

    # -- steps --------------------------------------------------------------------------

    async def run(self) -> dict[str, Any]:
        from driftloop_bus.publisher import Publisher

        self.publisher = Publisher(self.suite.broker, client_id="driftloop-demo")
        await self.publisher.start()
        await self.timeline.start()
        try:
            await self.configure_monitor()
            await self.seed()
            v1 = await self.train_first_model()
            await self.wait_serving(v1)
            await self.wait_reference(v1)
            self.say(f"sending {self.options.before_rows} requests from the home site")
            await self.send(self.options.before_rows, shifted=False)
            self.say(
                f"home site: {self.traffic.sent} requests, accuracy "
                f"{self._accuracy(str(v1)):.2f} with v{v1}"
            )
            return await self.shift_and_wait(v1)
        finally:
            await self.timeline.stop()
            await self.publisher.stop()
            await self.client.aclose()

    async def configure_monitor(self) -> None:
        policy = {
            "window_rows": self.options.window_rows,
            "performance_metric": "accuracy",
            "performance_threshold": 0.8,
            "performance_window_rows": self.options.window_rows,
        }
        response = await self.client.put(self.url("monitor", f"/policies/{MODEL}"), json=policy)
        _check(response, "setting the monitor's policy")
        self.say(
            f"monitor policy for {MODEL}: windows of {self.options.window_rows} predictions, "
            "accuracy alert below 0.80"
        )

    async def seed(self) -> None:
        count = self.options.seed_rows
        end = now() - timedelta(days=2)
        times = [end - timedelta(minutes=2 * (count - i)) for i in range(count)]
        flowers = self.field.flowers(count, shifted=False, at=times)
        for start in range(0, count, 150):
            await self._push(flowers[start : start + 150])
        self.labels.append(flowers)
        self.say(
            f"seeded the feature store with {count} flowers measured at the home site "
            f"(iris_features, two days ago) and their species in {self.labels.path}"
        )

    async def train_first_model(self) -> int:
        self.say(f"asking the trainer for the first model of {MODEL} (whole history)")
        body = {
            "reason": "demo: first model, trained on the field's history",
            "requested_by": "demo",
            "force": True,
            "parameters": {"training_window_days": "0"},
        }
        response = await self.client.post(self.url("trainer", f"/models/{MODEL}/train"), json=body)
        _check(response, "asking for the first training")
        job_id = response.json().get("job_id")
        if not job_id:
            raise DemoFailed(f"the trainer started no job: {response.json()}")
        job = await self._wait_job(job_id, timeout=240)
        version = int(job["model_version"])
        moved = await self.timeline.wait_for(
            "registry.alias.set", timeout=60, model=MODEL, alias=CHAMPION, version=version
        )
        if moved is None:
            raise DemoFailed(f"v{version} was trained but never became {CHAMPION}")
        self.say(f"v{version} is {CHAMPION}")
        return version

    async def _wait_job(self, job_id: str, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            response = await self.client.get(self.url("trainer", f"/jobs/{job_id}"))
            _check(response, "reading the training job")
            job: dict[str, Any] = response.json()["job"]
            if job.get("status") == "succeeded":
                return job
            if job.get("status") == "failed":
                logs = await self.client.get(self.url("trainer", f"/jobs/{job_id}/logs"))
                raise DemoFailed(
                    f"training job {job_id} failed: {job.get('error')}\n{logs.text[-2000:]}"
                )
            await asyncio.sleep(0.5)
        raise DemoFailed(f"training job {job_id} did not finish within {timeout:.0f} s")

    async def wait_serving(self, version: int) -> None:
        probe = self.field.flowers(1, shifted=False, at=[now()])[0]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            response = await self.client.post(
                self.url("serving", f"/v2/models/{MODEL}/infer"), json=v2_request(probe, "probe")
            )
            if response.status_code == 200 and response.json()["model_version"] == str(version):
                self.say(f"serving answers with v{version}")
                return
            await asyncio.sleep(0.5)
        raise DemoFailed(f"serving did not answer with v{version} within 60 s")

    async def wait_reference(self, version: int) -> None:
        path = f"/models/{MODEL}/versions/{version}/reference"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            response = await self.client.get(self.url("monitor", path))
            if response.status_code == 200:
                rows = response.json().get("rows", "?")
                self.say(f"monitor loaded v{version}'s reference data ({rows} rows, from lineage)")
                return
            await asyncio.sleep(0.5)
        raise DemoFailed(f"the monitor has no reference data for v{version} after 60 s")

    async def shift_and_wait(self, v1: int) -> dict[str, Any]:
        self.shift_at = now()
        self.say("SHIFT: flowers now come from a new site where they grow 1.5 times larger")
        deadline = time.monotonic() + self.options.loop_timeout
        new_version: str | None = None
        reported = 0
        while time.monotonic() < deadline:
            await self.send(10, shifted=True)
            answered = [v for v in self.traffic.first_answer if v != str(v1)]
            if answered and new_version is None:
                new_version = answered[0]
                self.say(f"first answer from v{new_version}: the loop closed")
                tail_until = time.monotonic() + 3
                while time.monotonic() < tail_until:  # a little more traffic: nothing fails
                    await self.send(10, shifted=True)
                break
            shifted = self.traffic.sent - self.options.before_rows
            if shifted // 100 > reported:
                reported = shifted // 100
                self.say(
                    f"{shifted} requests from the new site; accuracy of v{v1} there: "
                    f"{self._accuracy(str(v1), since=self.options.before_rows):.2f}"
                )
        await asyncio.sleep(2)  # the last events reach the timeline
        return self.summary(v1, new_version)

    # -- traffic ------------------------------------------------------------------------

    async def _push(self, flowers: Sequence[Flower]) -> None:
        response = await self.client.post(self.url("features", "/push"), json=push_body(flowers))
        _check(response, "pushing features")

    async def send(self, count: int, *, shifted: bool) -> None:
        """Send ``count`` requests at the demo's rate, in batches of 10."""
        from driftloop.common.v1.common_pb2 import Value
        from driftloop.monitor.v1 import events_pb2 as monitor_events
        from driftloop_events.envelope import CloudEvent

        for start in range(0, count, 10):
            began = time.monotonic()
            batch = min(10, count - start)
            flowers = self.field.flowers(batch, shifted=shifted, at=[now()] * batch)
            # The measurements reach the feature store before anyone asks about them.
            await self._push(flowers)
            self.labels.append(flowers)
            if shifted and self.first_drifted_request is None:
                self.first_drifted_request = now()
            await asyncio.gather(*(self._infer(f) for f in flowers))
            for flower in flowers:
                label = monitor_events.LabelRecorded(
                    request_id=_request_id(flower),
                    model_name=MODEL,
                    ground_truth=Value(string_value=flower.species),
                )
                await self.publisher.publish(CloudEvent.new(label))
            await self.publisher.flush()
            pause = batch / self.options.rate - (time.monotonic() - began)
            if pause > 0:
                await asyncio.sleep(pause)

    async def _infer(self, flower: Flower) -> None:
        self.traffic.sent += 1
        try:
            response = await self.client.post(
                self.url("serving", f"/v2/models/{MODEL}/infer"),
                json=v2_request(flower, _request_id(flower)),
            )
        except httpx.HTTPError as error:
            self._failed(f"{type(error).__name__}: {error}")
            return
        if response.status_code != 200:
            self._failed(f"HTTP {response.status_code}: {response.text[:200]}")
            return
        answer = response.json()
        version = answer["model_version"]
        self.traffic.versions[version] += 1
        self.traffic.first_answer.setdefault(version, now())
        right = answer["outputs"][0]["data"][0] == flower.species
        self.traffic.correct[version] += right
        self.traffic.answers.append((version, right))

    def _accuracy(self, version: str, since: int = 0) -> float:
        answers = [ok for v, ok in self.traffic.answers[since:] if v == version]
        return sum(answers) / len(answers) if answers else float("nan")

    def _failed(self, error: str) -> None:
        self.traffic.failed += 1
        if len(self.traffic.errors) < 5:
            self.traffic.errors.append(error)
            self.say(f"REQUEST FAILED: {error}")

    # -- the end ------------------------------------------------------------------------

    def summary(self, v1: int, new_version: str | None) -> dict[str, Any]:
        shift = self.shift_at or now()
        after = [e for e in self.timeline.entries if e.time >= shift]
        links = {
            "drift alert": _first(after, "monitor.drift.detected", version=v1),
            "retraining requested": _first(after, "trainer.training.requested"),
            "retraining completed": _first(after, "trainer.training.completed"),
            "challenger promoted": _first(
                after, "registry.alias.set", alias=CHAMPION, version=_int(new_version)
            ),
        }
        v2_answer = self.traffic.first_answer.get(new_version or "")
        latency = (
            (v2_answer - self.first_drifted_request).total_seconds()
            if v2_answer and self.first_drifted_request
            else None
        )
        closed = all(links.values()) and v2_answer is not None
        return {
            "closed": closed and self.traffic.failed == 0,
            "loop_closed": closed,
            "loop_latency_seconds": latency,
            "first_version": v1,
            "new_version": _int(new_version),
            "shift_time": shift.isoformat(),
            "first_drifted_request": _iso(self.first_drifted_request),
            "first_new_version_answer": _iso(v2_answer),
            "links": {name: entry.as_dict() if entry else None for name, entry in links.items()},
            "requests": {
                "sent": self.traffic.sent,
                "failed": self.traffic.failed,
                "errors": self.traffic.errors,
                "by_version": dict(self.traffic.versions),
                "accuracy_after_shift": {
                    v: self._accuracy(v, since=self.options.before_rows)
                    for v in sorted(self.traffic.versions)
                },
            },
            "timeline": [e.as_dict() for e in self.timeline.entries],
        }


def _request_id(flower: Flower) -> str:
    return f"demo-{flower.flower_id}"


def _first(entries: Sequence[Entry], kind: str, **facts: Any) -> Entry | None:
    for entry in entries:
        if entry.kind == kind and all(entry.facts.get(k) == v for k, v in facts.items()):
            return entry
    return None


def _int(text: str | None) -> int | None:
    return int(text) if text else None


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _check(response: httpx.Response, doing: str) -> None:
    if response.status_code >= 400:
        raise DemoFailed(f"{doing}: HTTP {response.status_code}: {response.text[:500]}")


def report(result: dict[str, Any], started: datetime, echo: Echo) -> None:
    """Print the timeline and the figures."""
    echo("")
    echo("timeline (events read from the topics):")
    for item in result["timeline"]:
        moment = datetime.fromisoformat(item["time"])
        entry = Entry(moment, item["kind"], item["event_id"], item["summary"])
        echo(f"  {entry.line(started)}")
    echo("")
    requests = result["requests"]
    echo(
        f"requests: {requests['sent']} sent, {requests['failed']} failed; "
        f"answered by version: {requests['by_version']}"
    )
    echo(
        "accuracy on the new site's flowers: "
        + ", ".join(f"v{v} {a:.2f}" for v, a in requests["accuracy_after_shift"].items())
    )
    for name, link in result["links"].items():
        echo(f"  {'ok ' if link else 'MISSING'}  {name}")
    if result["loop_latency_seconds"] is not None:
        echo(
            f"loop latency (first drifted request -> first answer from "
            f"v{result['new_version']}): {result['loop_latency_seconds']:.1f} s"
        )
    if result["closed"]:
        echo("the loop closed by itself, with no failed request.")
    elif result["loop_closed"]:
        echo("the loop closed, but requests failed.")
    else:
        echo("the loop did NOT close: see the missing links above.")


def run_demo(options: DemoOptions, echo: Echo) -> int:
    """Run the demo; the exit code (0: the loop closed with no failed request)."""
    import shutil

    home = options.home.resolve()
    if home.exists():
        shutil.rmtree(home)
    home.mkdir(parents=True)
    options.home = home
    started = now()
    echo(f"driftloop demo: the closed loop on embedded defaults (state and logs in {home})")
    ports: dict[str, int] = {}
    broker_port = 9092
    if options.free_ports:
        from driftloop_cli.demo.suite import LOOP_SERVICES

        ports = {name: free_port() for name in LOOP_SERVICES}
        broker_port = free_port()
    from driftloop_kit.service import installed_services

    env = wiring_env(installed_services(), ports)
    env["DRIFTLOOP_TRAINER_MODELS"] = json.dumps(trainer_models(home / "labels.csv"))
    env["DRIFTLOOP_SERVING_MODELS"] = MODEL
    # Serving may also be asked with flower ids only: it reads their features online.
    env["DRIFTLOOP_SERVING_FEATURE_SERVICES"] = json.dumps({MODEL: "iris_classifier"})
    echo(
        "[   0.00s] starting the suite: broker, tracking, registry, features, monitor, "
        "trainer, serving"
    )
    try:
        suite = start_suite(
            home, env=env, broker_port=broker_port, timeout=options.startup_timeout, echo=echo
        )
    except SuiteError as error:
        echo(f"error: {error}")
        return 1
    echo(f"[{(now() - started).total_seconds():7.2f}s] the suite is up: {suite.urls}")
    echo(
        f"          authentication is on: every call sends the admin token kept in "
        f"{home / ADMIN_TOKEN_FILE}"
    )
    code = 1
    try:
        demo = Demo(suite, options, echo)
        demo.started = started
        try:
            result = asyncio.run(demo.run())
        except DemoFailed as error:
            echo(f"error: {error}")
            echo(f"logs: {home}/logs")
            return 1
        report(result, started, echo)
        if options.timeline_json:
            options.timeline_json.write_text(json.dumps(result, indent=2))
        code = 0 if result["closed"] else 1
        if options.keep_running:
            echo(f"the suite keeps running ({suite.urls}); Ctrl-C stops it")
            with contextlib.suppress(KeyboardInterrupt):
                suite.process.wait()
        return code
    finally:
        echo("stopping the suite")
        suite.stop()
