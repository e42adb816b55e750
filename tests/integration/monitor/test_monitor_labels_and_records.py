"""Late labels, versions without reference data, poison records and alias moves."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from driftloop.common.v1.common_pb2 import ModelRef, Value
from driftloop.monitor.v1 import events_pb2 as monitor_events
from driftloop.registry.v1 import events_pb2 as registry_events
from driftloop.serving.v1 import events_pb2 as serving
from driftloop_events.envelope import CloudEvent, KafkaRecord, to_record
from driftloop_events.topics import dlq_topic
from driftloop_events.values import make_record

from ...unit.monitor.data import frame
from ..bus.helpers import eventually
from .conftest import RunningMonitor, read_all

pytestmark = pytest.mark.integration

WINDOW = 40


async def _performance(service: RunningMonitor, model: str, count: int) -> list[Any] | None:
    response = await service.client.get(f"/models/{model}/performance")
    assert response.status_code == 200, response.text
    found: list[Any] = response.json()
    return found if len(found) >= count else None


async def _label(service: RunningMonitor, model: str, request_id: str, truth: str) -> None:
    label = monitor_events.LabelRecorded(
        request_id=request_id, model_name=model, ground_truth=Value(string_value=truth)
    )
    await service.publisher.publish_and_wait(CloudEvent.new(label))


async def test_late_labels_join_their_predictions_and_a_drop_in_accuracy_alerts(
    running_monitor: RunningMonitor,
) -> None:
    service = running_monitor
    model = f"perf-{uuid.uuid4().hex[:8]}"
    policy = {
        "window_rows": WINDOW,
        "performance_metric": "accuracy",
        "performance_threshold": 0.9,
        "performance_window_rows": WINDOW,
    }
    assert (await service.client.put(f"/policies/{model}", json=policy)).status_code == 200
    rows = frame(2 * WINDOW, seed=3)[["x0", "x1", "colour"]].to_dict("records")
    answers = [{"prediction": "cat" if i % 2 else "dog"} for i in range(2 * WINDOW)]
    ids = await service.predict(model, 7, rows, outputs=answers)

    # No reference data for version 7: its windows are counted, not tested.
    async def versions() -> list[Any] | None:
        found = (await service.client.get(f"/models/{model}/versions")).json()
        return found if found and found[0]["windows"] >= 2 else None

    status = (await eventually(versions, timeout=30))[0]
    assert status["version"] == 7
    assert status["unreferenced_rows"] == 2 * WINDOW
    assert status["unreferenced_windows"] == 2
    assert status["has_reference"] is False
    history = (await service.client.get(f"/models/{model}/drift")).json()
    assert {h["status"] for h in history} == {"no_reference"}

    # The labels arrive later. First window: all right; second: 30% wrong.
    for i in range(WINDOW):
        await _label(service, model, ids[i], answers[i]["prediction"])
    await eventually(lambda: _performance(service, model, 1), timeout=30)
    for i in range(WINDOW, 2 * WINDOW):
        right = answers[i]["prediction"]
        wrong = "dog" if right == "cat" else "cat"
        await _label(service, model, ids[i], wrong if i % 10 < 3 else right)
    await _label(service, model, "req-never-predicted", "cat")  # unmatched: ignored
    results = list(reversed(await eventually(lambda: _performance(service, model, 2), timeout=30)))

    assert [r["value"] for r in results] == [pytest.approx(1.0), pytest.approx(0.7)]
    assert [r["degraded"] for r in results] == [False, True]
    assert [r["rows"] for r in results] == [WINDOW, WINDOW]

    async def degraded() -> list[Any] | None:
        found = [a for a in await service.alerts(model) if a.type.endswith("degraded")]
        return found or None

    alerts = await eventually(degraded, timeout=30)
    assert len(alerts) == 1
    event = alerts[0].data
    assert event.metric == "accuracy"
    assert event.value == pytest.approx(0.7)
    assert event.threshold == 0.9
    assert event.higher_is_better
    assert event.labelled_rows == WINDOW
    assert event.model.version == 7
    report = await service.client.get(f"/reports/{event.report_id}/json")
    assert report.json()["value"] == pytest.approx(0.7)


async def test_malformed_records_go_to_the_dead_letter_topic_and_the_stream_goes_on(
    running_monitor: RunningMonitor,
) -> None:
    service = running_monitor
    model = f"dlq-{uuid.uuid4().hex[:8]}"
    no_inputs = CloudEvent.new(
        serving.PredictionLogged(request_id="req-empty", model=ModelRef(name=model, version=1))
    )
    no_model = CloudEvent.new(
        serving.PredictionLogged(request_id="req-anon", inputs=[make_record({"x0": 1.0})])
    )
    bad_id = f"bad-{uuid.uuid4().hex[:8]}"
    undecodable = KafkaRecord(
        topic="predictions",
        key=b"req-bad",
        value=b"\xff\x00 not protobuf",
        headers=[
            ("ce_specversion", b"1.0"),
            ("ce_id", bad_id.encode()),
            ("ce_source", b"/test"),
            ("ce_type", b"driftloop.serving.prediction.logged"),
            ("content-type", b"application/protobuf"),
        ],
    )
    for record in (to_record(no_inputs), to_record(no_model), undecodable):
        await (await service.publisher.send_record(record))
    # A good prediction after them is still handled.
    await service.predict(model, 1, [{"x0": 1.0}])

    wanted = {no_inputs.id, no_model.id, bad_id}

    async def dead() -> list[Any] | None:
        records = await read_all(service.bootstrap_servers, dlq_topic("predictions"))
        mine = [r for r in records if dict(r.headers)["ce_id"].decode() in wanted]
        return mine if len(mine) == 3 else None

    records = await eventually(dead, timeout=40)
    errors = {dict(r.headers)["ce_id"].decode(): dict(r.headers)["dlq.error"] for r in records}
    assert b"without inputs" in errors[no_inputs.id]
    assert b"without a model" in errors[no_model.id]
    assert b"Undecodable" in errors[bad_id]
    await eventually(lambda: _open_rows(service, model), timeout=20)


async def _open_rows(service: RunningMonitor, model: str) -> bool:
    return service.monitor.open_windows().get(f"{model}/1", 0) == 1


async def test_a_new_champion_gets_its_reference_data_from_the_uri_template(
    running_monitor: RunningMonitor,
) -> None:
    service = running_monitor
    model = f"alias-{uuid.uuid4().hex[:8]}"
    run_id = "b" * 32
    folder = service.settings.home.parent / "refs"
    folder.mkdir(parents=True, exist_ok=True)
    frame(300, seed=9).to_csv(folder / f"{model}-4-{run_id}.csv", index=False)
    moved = registry_events.AliasSet(
        name=model, alias="champion", version=4, run_id=run_id, source=f"runs:/{run_id}/model"
    )
    await service.publisher.publish_and_wait(CloudEvent.new(moved))

    async def reference() -> dict[str, Any] | None:
        response = await service.client.get(f"/models/{model}/versions/4/reference")
        return response.json() if response.status_code == 200 else None

    found = await eventually(reference, timeout=30)
    assert found["rows"] == 300
    assert found["source"].endswith(f"{model}-4-{run_id}.csv")
    assert found["column_types"]["colour"] == "cat"
