"""The closed loop, end to end: the demo as a user runs it, on free ports.

``driftloop demo`` starts the whole suite (embedded broker, six services, SQLite, local
files), trains and promotes v1, sends traffic and labels, shifts the inputs, and exits 0
only when a drift alert led to a retraining, the gate promoted the new version and
serving answered with it, with no request failing. Each link is asserted here from the
timeline the demo read off the real topics, so a cut link fails the test by name.

The suite runs with tracing on, exporting to an OTLP receiver in this process: one trace
must follow the loop across the services, from a prediction to the hot swap of v2.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from driftloop_kit.otlp_receiver import OtlpReceiver
from tests.e2e.demo import run_demo

pytestmark = pytest.mark.e2e


@pytest.mark.timeout(900)
def test_a_shift_in_the_inputs_closes_the_loop_by_itself(tmp_path: Path) -> None:
    receiver = OtlpReceiver()
    with receiver.running():
        done = run_demo(tmp_path, env={"DRIFTLOOP_OTLP_ENDPOINT": receiver.endpoint})
    output = done.output
    result = done.result()
    events = result["timeline"]

    def first(kind: str, **facts: object) -> dict[str, Any]:
        found: list[dict[str, Any]] = [
            e for e in events if e["kind"] == kind and all(e.get(k) == v for k, v in facts.items())
        ]
        assert found, f"no {kind} {facts} in the timeline:\n{output}"
        return found[0]

    v1, v2 = result["first_version"], result["new_version"]
    # v1 through the trainer, promoted because there was no champion yet.
    first("registry.alias.set", alias="champion", version=v1)
    # The shift: the monitor tells the four columns it moved (in its first alert after
    # the shift; a window of the home site may have alerted before, by chance).
    alert = next(
        (
            e
            for e in events
            if e["kind"] == "monitor.drift.detected"
            and e.get("version") == v1
            and e["time"] >= result["shift_time"]
        ),
        None,
    )
    assert alert is not None, f"no drift alert after the shift:\n{output}"
    assert sorted(alert["columns"]) == [
        "petal_length",
        "petal_width",
        "sepal_length",
        "sepal_width",
    ], output
    # The job that made v2 passed the gate, and a monitor alert (drift or performance)
    # had started it: the alert's event id is the job's trigger.
    completed = first("trainer.training.completed", version=v2, promoted=True)
    requested = first("trainer.training.requested", job_id=completed["job_id"])
    alerts = {e["event_id"] for e in events if e["kind"].startswith("monitor.")}
    assert requested["trigger"] in alerts, output
    assert v2 != v1
    first("registry.alias.set", alias="champion", version=v2)
    # Serving answered with v2, and not one request failed on the way.
    requests = result["requests"]
    assert requests["by_version"].get(str(v2), 0) > 0
    assert requests["failed"] == 0, requests["errors"]
    assert requests["accuracy_after_shift"][str(v2)] > requests["accuracy_after_shift"][str(v1)]
    assert result["loop_latency_seconds"] > 0
    assert done.returncode == 0, output
    assert_one_trace_follows_the_loop(receiver, v2)


def assert_one_trace_follows_the_loop(receiver: OtlpReceiver, version: int) -> None:
    """The swap to ``version`` descends, span by span, from a prediction's request:
    serving's request -> the monitor's window decision -> the trainer's job -> its call
    moving the aliases -> the registry's handling of it -> serving's consumer of
    ``alias.set`` -> the swap."""
    swaps = [
        s
        for s in receiver.named("serving.swap")
        if s.attributes.get("driftloop.version") == version
    ]
    assert swaps, (
        f"no serving.swap span for v{version}: {sorted({s.name for s in receiver.spans.values()})}"
    )
    chain = receiver.ancestors(swaps[0])
    steps = [(s.service.removeprefix("driftloop-"), s.name) for s in reversed(chain)]
    assert len({s.trace_id for s in chain}) == 1
    path = [step for step in steps if step[1] != "POST"]  # the httpx client span
    assert path[0] == ("serving", "POST /v2/models/{name}/infer"), steps
    assert path[1:] == [
        ("monitor", "monitor.window"),
        ("trainer", "trainer.job"),
        ("registry", "POST /api/2.0/driftloop/aliases/promote"),
        ("serving", "registry.models process"),
        ("serving", "serving.swap"),
    ], steps
