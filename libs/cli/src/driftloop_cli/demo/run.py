"""``driftloop demo``: the closed loop, end to end, on embedded defaults.

1. start the suite (``driftloop up``: embedded broker, six services, SQLite, local files);
2. declare the world's model with ``driftloop apply`` (its document, written to the
   home folder): the trainer, serving and the monitor take it up, nothing restarts;
3. seed the feature store with the world's history and send its labels to the suite's
   label store (``POST /labels``);
4. train v1 through the trainer, which registers it, scores it and promotes it;
5. send prediction traffic (features pushed first, each label sent through the label
   route when it becomes known, seconds later);
6. shift the world (``iris``: flowers from a new site; ``churn``: a new market);
7. watch the loop close by itself: drift alert → retraining → evaluation gate → v2
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
from driftloop_cli.demo.suite import (
    Suite,
    SuiteError,
    attach_suite,
    free_port,
    start_suite,
    wiring_env,
)
from driftloop_cli.demo.timeline import Entry, Timeline, now
from driftloop_cli.demo.world import WORLDS, Case, World, world_named

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
        seed_rows: Cases in the world's history (what v1 is trained on).
        before_rows: Requests sent before the shift.
        window_rows: The monitor's window for the demo model.
        rate: Requests per second sent.
        loop_timeout: Seconds the loop has to close after the shift.
        startup_timeout: Seconds the suite has to start.
        timeline_json: Where to write the timeline and the figures as JSON.
        keep_running: Leave the suite running at the end (Ctrl-C stops it).
        world: Which world plays (``iris`` or ``churn``).
        attach: A running suite to drive instead of starting one: a JSON file of
            ``driftloop up``'s form (``deploy/compose.suite.json`` for the compose
            stack). Its services take the world's model from ``driftloop apply``.
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
    world: str = "iris"
    attach: Path | None = None


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


class Demo:
    """One run of the demo against a started suite."""

    def __init__(self, suite: Suite, options: DemoOptions, echo: Echo) -> None:
        self.suite = suite
        self.options = options
        self.echo = echo
        self.started = now()
        self.world: World = world_named(options.world)
        #: Each service's process when the demo began (none may be replaced).
        self.pids: dict[str, int] = self._pids()
        self.model = self.world.model
        #: Labels not known yet: (when they are, case, request id).
        self.pending: list[tuple[float, Case, str]] = []
        self.traffic = Traffic()
        self.timeline = Timeline(suite.broker, on_entry=self._show)
        self.shift_at: datetime | None = None
        self.first_drifted_request: datetime | None = None
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
        await self.timeline.start()
        labeller = asyncio.create_task(self._send_labels_when_known())
        try:
            await self.declare()
            await self.seed()
            v1 = await self.train_first_model()
            await self.wait_serving(v1)
            await self.wait_reference(v1)
            self.say(f"sending {self.options.before_rows} requests from the home site")
            await self.send(self.options.before_rows, shifted=False)
            self.say(
                f"{self.world.home}: {self.traffic.sent} requests, accuracy "
                f"{self._accuracy(str(v1)):.2f} with v{v1}"
            )
            result = await self.shift_and_wait(v1)
            result.update(await self.evidence(result.get("new_version")))
            return result
        finally:
            labeller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await labeller
            await self.timeline.stop()
            await self.client.aclose()

    def _pids(self) -> dict[str, int]:
        try:
            return dict(json.loads((self.suite.home / "up.json").read_text())["pids"])
        except (OSError, ValueError, KeyError):
            return {}

    async def evidence(self, version: int | None) -> dict[str, Any]:
        """What the loop left on record: the retrained version's run and the labels it
        learned from (its dataset input), every model document applied, and whether any
        service process was replaced while the demo ran."""
        found: dict[str, Any] = {
            "world": self.world.name,
            "model": self.model,
            "services_restarted": sorted(
                name for name, pid in self._pids().items() if self.pids.get(name) != pid
            ),
            "files_in_home": sorted(
                str(p.relative_to(self.options.home))
                for p in self.options.home.glob("*")
                if p.is_file()
            ),
        }
        revisions = await self.client.get(self.url("trainer", f"/models/{self.model}/revisions"))
        if revisions.status_code == 200:
            found["document_revisions"] = [
                {"revision": r["revision"], "applied_by": r["applied_by"]}
                for r in revisions.json()["revisions"]
            ]
        created = _first(self.timeline.entries, "registry.model_version.created", version=version)
        run_id = created.facts.get("run_id") if created else None
        if run_id:
            run = await self.client.get(
                self.url("tracking", "/api/2.0/mlflow/runs/get"), params={"run_id": run_id}
            )
            if run.status_code == 200:
                inputs = run.json()["run"].get("inputs", {}).get("dataset_inputs", [])
                data = run.json()["run"].get("data", {})
                found["retrained_run"] = {
                    "run_id": run_id,
                    "params": {p["key"]: p["value"] for p in data.get("params", [])},
                    "tags": {
                        t["key"]: t["value"]
                        for t in data.get("tags", [])
                        if t["key"].startswith("driftloop.")
                    },
                    "dataset_inputs": [
                        {
                            "name": i["dataset"]["name"],
                            "source_type": i["dataset"].get("source_type"),
                            "tags": {t["key"]: t["value"] for t in i.get("tags", [])},
                        }
                        for i in inputs
                    ],
                }
        return found

    async def declare(self) -> None:
        """``driftloop apply`` of the world's model document, as a user would run it."""
        import yaml

        from driftloop_cli.declarations import apply_documents, read_documents, validate_documents

        path = self.options.home / f"{self.model}.yaml"
        document = self.world.document(window_rows=self.options.window_rows)
        path.write_text(yaml.safe_dump(document, sort_keys=False))
        declarations = validate_documents(read_documents([path]))
        base = self.suite.urls["trainer"].rstrip("/")
        applied = await asyncio.to_thread(
            lambda: list(apply_documents(declarations, base_url=base, home=self.suite.home))
        )
        self.say(
            f"driftloop apply {path}: model/{self.model} configured "
            f"(revision {applied[0]['revision']})"
        )
        # The monitor takes its policy from the document's event; wait until it has.
        window = document["spec"]["monitor"]["window_rows"]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            response = await self.client.get(self.url("monitor", f"/policies/{self.model}"))
            if response.status_code == 200 and response.json().get("window_rows") == window:
                self.say(f"the monitor took the document's policy: windows of {window} predictions")
                return
            await asyncio.sleep(0.3)
        raise DemoFailed("the monitor did not take the model's document within 60 s")

    async def seed(self) -> None:
        count = self.options.seed_rows
        end = now() - timedelta(days=2)
        times = [end - timedelta(minutes=2 * (count - i)) for i in range(count)]
        cases = self.world.cases(count, shifted=False, at=times)
        for start in range(0, count, 150):
            batch = cases[start : start + 150]
            await self._push(batch)
            await self._label(batch, [f"history-{c.entity_id}" for c in batch])
        self.say(
            f"seeded the feature store with {count} {self.world.home} (two days ago) and "
            "sent their labels to the label store (POST /labels)"
        )

    async def train_first_model(self) -> int:
        self.say(f"asking the trainer for the first model of {self.model} (whole history)")
        body = {
            "reason": "demo: first model, trained on the world's history",
            "requested_by": "demo",
            "force": True,
            "parameters": {"training_window_days": "0"},
        }
        response = await self.client.post(
            self.url("trainer", f"/models/{self.model}/train"), json=body
        )
        _check(response, "asking for the first training")
        job_id = response.json().get("job_id")
        if not job_id:
            raise DemoFailed(f"the trainer started no job: {response.json()}")
        job = await self._wait_job(job_id, timeout=240)
        version = int(job["model_version"])
        moved = await self.timeline.wait_for(
            "registry.alias.set", timeout=60, model=self.model, alias=CHAMPION, version=version
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
        probe = self.world.cases(1, shifted=False, at=[now()])[0]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            response = await self.client.post(
                self.url("serving", f"/v2/models/{self.model}/infer"),
                json=self.world.v2_request(probe, "probe"),
            )
            if response.status_code == 200 and response.json()["model_version"] == str(version):
                self.say(f"serving answers with v{version}")
                return
            await asyncio.sleep(0.5)
        raise DemoFailed(f"serving did not answer with v{version} within 60 s")

    async def wait_reference(self, version: int) -> None:
        path = f"/models/{self.model}/versions/{version}/reference"
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
        self.say(f"SHIFT: {self.world.shift}")
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
                    f"{shifted} requests after the shift; accuracy of v{v1} there: "
                    f"{self._accuracy(str(v1), since=self.options.before_rows):.2f}"
                )
        await asyncio.sleep(2)  # the last events reach the timeline
        return self.summary(v1, new_version)

    # -- traffic ------------------------------------------------------------------------

    async def _push(self, cases: Sequence[Case]) -> None:
        response = await self.client.post(
            self.url("features", "/push"), json=self.world.push_body(cases)
        )
        _check(response, "pushing features")

    async def _label(self, cases: Sequence[Case], request_ids: Sequence[str]) -> None:
        response = await self.client.post(
            self.url("features", "/labels"), json=self.world.labels_body(cases, request_ids)
        )
        _check(response, "sending labels")

    async def _send_labels_when_known(self) -> None:
        """Every half second, the labels that have become known go to the label route."""
        while True:
            await asyncio.sleep(0.5)
            due = time.monotonic()
            known = [p for p in self.pending if p[0] <= due]
            if known:
                self.pending = [p for p in self.pending if p[0] > due]
                await self._label([c for _, c, _ in known], [r for _, _, r in known])

    async def send(self, count: int, *, shifted: bool) -> None:
        """Send ``count`` requests at the demo's rate, in batches of 10; each label is
        sent when it becomes known (the world's delay after the answer)."""
        for start in range(0, count, 10):
            began = time.monotonic()
            batch = min(10, count - start)
            cases = self.world.cases(batch, shifted=shifted, at=[now()] * batch)
            # The observations reach the feature store before anyone asks about them.
            await self._push(cases)
            if shifted and self.first_drifted_request is None:
                self.first_drifted_request = now()
            await asyncio.gather(*(self._infer(c) for c in cases))
            answered = time.monotonic()
            self.pending.extend(
                (answered + self.world.delay(), case, _request_id(self.world, case))
                for case in cases
            )
            pause = batch / self.options.rate - (time.monotonic() - began)
            if pause > 0:
                await asyncio.sleep(pause)

    async def _infer(self, case: Case) -> None:
        self.traffic.sent += 1
        try:
            response = await self.client.post(
                self.url("serving", f"/v2/models/{self.model}/infer"),
                json=self.world.v2_request(case, _request_id(self.world, case)),
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
        right = str(answer["outputs"][0]["data"][0]) == case.label
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


def _request_id(world: World, case: Case) -> str:
    return f"demo-{world.name}-{case.entity_id}"


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
        "accuracy after the shift: "
        + ", ".join(f"v{v} {a:.2f}" for v, a in requests["accuracy_after_shift"].items())
    )
    for name, link in result["links"].items():
        echo(f"  {'ok ' if link else 'MISSING'}  {name}")
    if result["loop_latency_seconds"] is not None:
        echo(
            f"loop latency (first drifted request -> first answer from "
            f"v{result['new_version']}): {result['loop_latency_seconds']:.1f} s"
        )
    retrained = result.get("retrained_run") or {}
    for dataset in retrained.get("dataset_inputs", []):
        tags = dataset["tags"]
        if "driftloop.labels" in tags:
            echo(
                f"v{result['new_version']} learned from {tags['driftloop.labels_rows']} labels of "
                f"the {tags['driftloop.labels']} ({tags['driftloop.labels_start']} .. "
                f"{tags['driftloop.labels_end']}), run {retrained['run_id'][:12]}"
            )
    if result.get("services_restarted"):
        echo(f"services restarted on the way: {', '.join(result['services_restarted'])}")
    if result["closed"]:
        echo("the loop closed by itself, with no failed request.")
    elif result["loop_closed"]:
        echo("the loop closed, but requests failed.")
    else:
        echo("the loop did NOT close: see the missing links above.")


def free_suite_ports() -> dict[str, int]:
    """A free port for every service ``driftloop up`` starts (the console too, not only
    the loop's six): two demos side by side (tests, CI) must not meet on a default port."""
    from driftloop_kit.service import installed_services

    return {name: free_port() for name in installed_services()}


def world_env(world: str, home: Path, ports: dict[str, int]) -> dict[str, str]:
    """The suite's environment for a world: every service wired on ``ports`` (defaults
    where absent), no model declared by settings (the world's document declares it with
    ``driftloop apply`` once the suite is up), and the world's own Feast repo, as it is (a
    copy in ``home``), when it has one."""
    from driftloop_kit.service import installed_services

    env = wiring_env(installed_services(), ports)
    env["DRIFTLOOP_TRAINER_MODELS"] = "{}"
    repo = WORLDS[world].repo
    if repo:
        import shutil
        from importlib import resources

        target = home / "features-repo"
        source = resources.files("driftloop_cli").joinpath(f"demo/repos/{repo}")
        with resources.as_file(source) as folder:
            shutil.copytree(folder, target, ignore=shutil.ignore_patterns("__pycache__"))
        env["DRIFTLOOP_FEATURES_REPO_PATH"] = str(target)
    return env


def run_demo(options: DemoOptions, echo: Echo) -> int:
    """Run the demo; the exit code (0: the loop closed with no failed request)."""
    import shutil

    home = options.home.resolve()
    if home.exists():
        shutil.rmtree(home)
    home.mkdir(parents=True)
    options.home = home
    started = now()
    if options.world not in WORLDS:
        echo(f"error: no world {options.world!r}; the worlds are {', '.join(WORLDS)}")
        return 2
    if options.attach is not None:
        return _run_attached(options, options.attach, started, echo)
    echo(
        f"driftloop demo --world {options.world}: the closed loop on embedded defaults "
        f"(state and logs in {home})"
    )
    ports: dict[str, int] = {}
    broker_port = 9092
    if options.free_ports:
        ports = free_suite_ports()
        broker_port = free_port()
    env = world_env(options.world, home, ports)
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
        if options.keep_running and suite.process is not None:
            echo(f"the suite keeps running ({suite.urls}); Ctrl-C stops it")
            if "console" in suite.urls:
                echo(
                    f"open the console at {suite.urls['console']} and log in with the token "
                    f"in {home / ADMIN_TOKEN_FILE}"
                )
            with contextlib.suppress(KeyboardInterrupt):
                suite.process.wait()
        return code
    finally:
        echo("stopping the suite")
        suite.stop()


def _run_attached(options: DemoOptions, description: Path, started: datetime, echo: Echo) -> int:
    """The demo against a suite that already runs: nothing started, nothing stopped."""
    echo(
        f"driftloop demo --world {options.world} --attach {description}: the closed loop "
        f"on a running suite (the demo's files in {options.home})"
    )
    try:
        suite = attach_suite(options.home, description, timeout=options.startup_timeout)
    except SuiteError as error:
        echo(f"error: {error}")
        return 1
    echo(f"[{(now() - started).total_seconds():7.2f}s] the suite answers: {suite.urls}")
    demo = Demo(suite, options, echo)
    demo.started = started
    try:
        result = asyncio.run(demo.run())
    except DemoFailed as error:
        echo(f"error: {error}")
        return 1
    report(result, started, echo)
    if options.timeline_json:
        options.timeline_json.write_text(json.dumps(result, indent=2))
    return 0 if result["closed"] else 1
