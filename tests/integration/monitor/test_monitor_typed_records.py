"""Typed prediction records through the broker: serving's log to the monitor's decision.

Serving's scorer answers MLflow requests typed by the model's signature (a string, a
boolean and a double column) and its real prediction log sends the records to the
embedded broker; the monitor windows them and decides drift on the string column with
the test Evidently picks for a categorical column (chi-square: 600 reference rows). A
record whose string column holds a number goes to the dead-letter topic; every other row
reaches its window.
"""

from __future__ import annotations

import functools
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd  # type: ignore[import-untyped]
import pytest

from driftloop_bus.embedded import EmbeddedBroker
from driftloop_bus.publisher import Publisher
from driftloop_events.topics import dlq_topic
from driftloop_serving.adapters.prediction_log import PredictionLog
from driftloop_serving.domain.models import Column, Predictor, ServedModel
from driftloop_serving.domain.protocols import mlflow_batch
from driftloop_serving.domain.signature import Batch
from driftloop_serving.service_layer.scoring import Scorer
from driftloop_serving.settings import ServingSettings
from tests.fakes.serving import FakeServedModels

from ..bus.helpers import eventually
from .conftest import RunningMonitor, monitor_running, monitor_settings, read_all

pytestmark = pytest.mark.integration

WINDOW = 200
COLUMNS = (Column("plan", "string"), Column("member", "boolean"), Column("spend", "double"))


def customers(rows: int, *, seed: int, shifted: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    plans = rng.choice(["free", "basic", "pro"], size=rows, p=[0.8, 0.1, 0.1] if shifted else None)
    return pd.DataFrame(
        {
            "plan": plans,
            "member": rng.random(rows) < 0.5,
            "spend": rng.normal(20.0, 5.0, size=rows),
        }
    )


def churn(batch: Batch) -> Any:
    """The served model: a string label from the plan."""
    return np.array(["stays" if p == "pro" else "leaves" for p in batch.columns["plan"]])


async def _history(service: RunningMonitor, model: str, count: int) -> list[dict[str, Any]] | None:
    response = await service.client.get(f"/models/{model}/drift", params={"limit": 10})
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()
    return found if len(found) >= count else None


async def test_typed_records_from_serving_drift_on_a_string_column_and_a_mistyped_one_is_dead_lettered(  # noqa: E501
    tmp_path: Path, broker: EmbeddedBroker
) -> None:
    settings = monitor_settings(
        database_url=f"sqlite:///{tmp_path / 'monitor.db'}", tmp_path=tmp_path, broker=broker
    )
    model = f"churn-{uuid.uuid4().hex[:8]}"
    served = ServedModel(
        name=model,
        version=1,
        run_id="c" * 32,
        alias="champion",
        predictor=Predictor(
            flavor="python_function",
            columns=COLUMNS,
            predict=churn,
            loader="mlflow.pyfunc",
            typed=True,
        ),
    )
    log = PredictionLog(
        lambda: Publisher(broker.bootstrap_servers), tmp_path / "spill", batch_size=50
    )
    scorer = Scorer(
        ServingSettings(home=tmp_path / "serving", models=model), FakeServedModels(served), log
    )

    async with monitor_running(settings) as service:
        response = await service.client.put(
            f"/policies/{model}", json={"window_rows": WINDOW, "window_seconds": 3600}
        )
        assert response.status_code == 200, response.text
        response = await service.client.put(
            f"/models/{model}/versions/1/reference",
            content=customers(600, seed=1).to_csv(index=False).encode(),
            headers={"content-type": "text/csv"},
        )
        assert response.status_code == 201, response.text
        assert response.json()["column_types"] == {"plan": "cat", "member": "cat", "spend": "num"}

        # A record whose string column holds a number: refused, the stream goes on.
        (mistyped,) = await service.predict(model, 1, [{"plan": 3.0, "member": True, "spend": 1.0}])

        await log.start()
        try:
            for count, phase in enumerate(
                [customers(WINDOW, seed=2), customers(WINDOW, seed=3, shifted=True)], start=1
            ):
                records = phase.to_dict("records")
                for start in range(0, WINDOW, 20):  # 20-row requests, as a client sends them
                    body = {"dataframe_records": records[start : start + 20]}
                    scorer.score(model, mlflow_batch(body, COLUMNS))
                await eventually(functools.partial(_history, service, model, count), timeout=60)
        finally:
            await log.stop()
        quiet, drifted = reversed(await _history(service, model, 2) or [])

        async def dead() -> list[Any] | None:
            found = await read_all(service.bootstrap_servers, dlq_topic("predictions"))
            # Keyed by model: the mistyped one is the record with its request id.
            mine = [r for r in found if r.key == model.encode() and mistyped.encode() in r.value]
            return mine or None

        (dead_letter,) = await eventually(dead, timeout=40)

    assert [quiet["rows"], drifted["rows"]] == [WINDOW, WINDOW]  # no typed row lost
    plan = {
        w["window_id"]: next(c for c in w["columns"] if c["column"] == "plan")
        for w in (quiet, drifted)
    }
    assert plan[quiet["window_id"]]["drifted"] is False
    assert plan[drifted["window_id"]]["drifted"] is True
    assert plan[drifted["window_id"]]["column_type"] == "cat"
    assert plan[drifted["window_id"]]["stattest"] == "chisquare"
    assert plan[drifted["window_id"]]["score"] < plan[drifted["window_id"]]["threshold"]
    error = dict(dead_letter.headers)["dlq.error"].decode()
    assert "column 'plan' holds string values, not float" in error
