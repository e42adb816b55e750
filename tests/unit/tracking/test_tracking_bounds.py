"""Bounds the API fuzzer found missing: each was a 500, now a 400 naming the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from driftloop_kit.testing import app_client
from driftloop_tracking.entrypoints.app import create_app
from driftloop_tracking.settings import TrackingSettings

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/runs/create", {"experiment_id": "0", "start_time": 10951853024507454}, "start_time"),
        ("/runs/create", {"experiment_id": "0", "start_time": -1}, "start_time"),
        ("/runs/update", {"run_id": "r" * 32, "end_time": 10**17}, "end_time"),
    ],
)
async def test_a_run_time_past_the_year_9999_is_a_400_naming_it(
    tmp_path: Path, path: str, body: dict[str, object], field: str
) -> None:
    app = create_app(TrackingSettings(home=tmp_path))
    async with app_client(app, lifespan=False) as client:
        answer = await client.post(f"/api/2.0/mlflow{path}", json=body)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert field in answer.json()["message"]
