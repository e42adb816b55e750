"""Drift alerts on the real broker: the shifted columns, as Evidently decides, then cleared."""

from __future__ import annotations

import functools
import io
import json
import uuid
from typing import Any

import httpx
import pandas as pd  # type: ignore[import-untyped]
import pytest

from ...unit.monitor.data import frame
from ...unit.monitor.test_monitor_drift import evidently_preset
from ..bus.helpers import eventually
from .conftest import RunningMonitor

pytestmark = pytest.mark.integration

WINDOW = 300
SHIFTED = ["x0", "x1", "x2", "x3", "colour"]  # 5 of 8 columns: the dataset drifts


def _rows(data: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        {k: (float(v) if isinstance(v, float) else v) for k, v in r.items()}
        for r in data.to_dict("records")
    ]


async def _history(service: RunningMonitor, model: str, count: int) -> list[dict[str, Any]] | None:
    response = await service.client.get(f"/models/{model}/drift", params={"limit": 100})
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()
    return found if len(found) >= count else None


async def test_shifted_windows_alert_with_exactly_the_drifted_columns_then_clear_when_data_returns(
    running_monitor: RunningMonitor,
) -> None:
    service = running_monitor
    model = f"drift-{uuid.uuid4().hex[:8]}"
    client = service.client
    response = await client.put(
        f"/policies/{model}", json={"window_rows": WINDOW, "window_seconds": 3600}
    )
    assert response.status_code == 200, response.text
    reference = frame(1500, seed=1)
    response = await client.put(
        f"/models/{model}/versions/1/reference",
        content=reference.to_csv(index=False).encode(),
        headers={"content-type": "text/csv"},
    )
    assert response.status_code == 201, response.text
    assert response.json()["column_types"] == {
        **{f"x{i}": "num" for i in range(6)},
        "colour": "cat",
        "flag": "cat",
    }

    # One window per phase: each is decided before the next is sent, so every window
    # holds exactly one phase's rows whatever the partition interleaving.
    phases = [
        frame(WINDOW, seed=20),
        frame(WINDOW, seed=21),
        frame(WINDOW, seed=22, shifted=SHIFTED),
        frame(WINDOW, seed=23, shifted=SHIFTED),
        frame(WINDOW, seed=24),
        frame(WINDOW, seed=25),
    ]
    for count, phase in enumerate(phases, start=1):
        await service.predict(model, 1, _rows(phase))
        await eventually(functools.partial(_history, service, model, count), timeout=60)
    history = list(reversed(await _history(service, model, len(phases)) or []))

    assert [h["dataset_drift"] for h in history] == [False, False, True, True, False, False]
    assert [h["event_type"] for h in history] == [
        None,
        None,
        "driftloop.monitor.drift.detected",
        None,
        None,  # one clear window: the episode stays open (close_after_windows=2)
        "driftloop.monitor.drift.cleared",
    ]

    # The decisions equal Evidently's DataDriftPreset report on the same window: a quiet
    # one, the one that alerted, the one that cleared (a report takes a second or two).
    for result in (history[0], history[2], history[4]):
        kept = service.monitor.files.window(result["window_id"])
        assert kept is not None
        assert len(kept) == WINDOW
        theirs = evidently_preset(reference, kept)
        mine = {
            c["column"]: {
                "score": pytest.approx(c["score"], rel=1e-9, abs=1e-12),
                "threshold": c["threshold"],
                "method": c["stattest_display"],
                "drifted": c["drifted"],
            }
            for c in result["columns"]
        }
        assert mine == theirs["columns"]
        assert result["drift_share"] == pytest.approx(theirs["share"])

    alerts = await eventually(lambda: _alerts_at_least(service, model, 2), timeout=30)
    assert [a.type for a in alerts] == [
        "driftloop.monitor.drift.detected",
        "driftloop.monitor.drift.cleared",
    ]
    detected, cleared = alerts[0].data, alerts[1].data
    assert sorted(c.column for c in detected.columns if c.drifted) == sorted(SHIFTED)
    assert detected.model.name == model
    assert detected.model.version == 1
    assert detected.model.run_id == "a" * 32
    assert detected.window.id == history[2]["window_id"]
    assert detected.window.rows == WINDOW
    assert detected.drift_share == pytest.approx(5 / 8)
    assert detected.dataset_drift_threshold == 0.5
    assert detected.reference_digest == history[2]["reference_digest"]
    drifted = {c.column: c for c in detected.columns}
    assert drifted["x0"].stattest == "wasserstein"
    assert drifted["x0"].threshold == 0.1
    assert drifted["colour"].stattest == "jensenshannon"
    assert detected.report_url == f"http://monitor.test/reports/{detected.report_id}"
    assert cleared.cleared_event.id == alerts[0].id
    assert cleared.episode_id == detected.episode_id != ""
    assert cleared.window.id == history[5]["window_id"]

    # The alerting window's full Evidently report, as HTML and JSON.
    page = await client.get(f"/reports/{detected.report_id}")
    assert page.status_code == 200
    assert "text/html" in page.headers["content-type"]
    body = await client.get(f"/reports/{detected.report_id}/json")
    assert body.status_code == 200
    tests = json.loads(body.text)["tests"]
    assert sorted(
        t["metric_config"]["params"]["column"]
        for t in tests
        if t["status"] == "FAIL" and "column" in t["metric_config"]["params"]
    ) == sorted(SHIFTED)

    # A quiet window's report, on request.
    made = await client.post("/reports", json={"window_id": history[0]["window_id"]})
    assert made.status_code == 201, made.text
    again = await client.post("/reports", json={"window_id": history[0]["window_id"]})
    assert again.json()["report_id"] == made.json()["report_id"]
    assert (await client.get(f"/reports/{made.json()['report_id']}/json")).status_code == 200

    # The reference data reads back as it was uploaded.
    csv = await client.get(f"/models/{model}/versions/1/reference", params={"format": "csv"})
    assert pd.read_csv(io.StringIO(csv.text)).shape == reference.shape


async def _alerts_at_least(service: RunningMonitor, model: str, count: int) -> list[Any] | None:
    found = await service.alerts(model)
    return found if len(found) >= count else None


async def test_the_service_endpoints_answer(monitor_api: httpx.AsyncClient) -> None:
    client = monitor_api
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert set(ready.json()["checks"]) == {"database", "broker"}  # no stream: consume=False
    assert "driftloop_monitor" in (await client.get("/metrics")).text
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert {"/models/{model_name}/drift", "/reports/{report_id}", "/policies/{model_name}"} <= set(
        paths
    )
    assert (await client.get("/policies/never-set")).json()["drift_share"] == 0.5


async def test_bad_http_input_is_a_4xx_with_a_message(monitor_api: httpx.AsyncClient) -> None:
    client = monitor_api
    cases = [
        await client.put("/policies/m", json={"window_rows": 1}),
        await client.put("/policies/m", json={"performance_metric": "accuracy"}),
        await client.put("/policies/m", json={"unknown": 1}),
        await client.put(
            "/models/m/versions/1/reference", content=b"", headers={"content-type": "text/csv"}
        ),
        await client.put(
            "/models/m/versions/1/reference", content=b"a,b\n", headers={"content-type": "text/csv"}
        ),
        await client.put(
            "/models/m/versions/1/reference", content=b"x", headers={"content-type": "image/png"}
        ),
        await client.put(
            "/models/m/versions/0/reference",
            content=b"a\n1\n",
            headers={"content-type": "text/csv"},
        ),
        await client.get("/models/m/versions/1/reference"),
        await client.get("/reports/nope"),
        await client.get("/reports/..%2Fetc"),
        await client.post("/reports", json={"window_id": "m/1/unknown"}),
        await client.delete("/policies/never-set"),
        # Beyond a 64-bit integer: refused, not an overflow in the database.
        await client.get("/models/x/versions/18794340779704942592/drift"),
        await client.get("/models/x/drift", params={"version": str(2**63)}),
        await client.get("/models/x/versions/9223372036854775808/reference"),
        await client.put("/policies/m", json={"close_after_windows": 0}),
        # A window of 1e300 seconds overflowed the deadline and dead-lettered every row.
        await client.put("/policies/m", json={"window_seconds": 1e300}),
        await client.put("/policies/m", json={"window_rows": 10**12}),
        await client.put("/policies/m", json={"drift_share": 0.3, "drift_close_share": 0.4}),
    ]
    statuses = [r.status_code for r in cases]
    assert all(400 <= s < 500 for s in statuses), statuses
    assert all(
        r.json().get("message")
        for r in cases
        if r.headers["content-type"].startswith("application/json")
    )
