"""A model's training set from the label store: each label joined with the features as
of its event time (nothing newer), whether the label came before its features or hours
after them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from driftloop_kit.testing import auth_headers

from .conftest import RunningServer, new_flower_ids

pytestmark = pytest.mark.integration

T0 = datetime(2030, 7, 1, 12, 0, tzinfo=UTC)


def _push(url: str, flower_id: int, at: datetime, sepal_length: float) -> None:
    df = {
        "flower_id": [flower_id],
        "sepal_length": [sepal_length],
        "sepal_width": [3.0],
        "petal_length": [1.5],
        "petal_width": [0.25],
        "site": ["lab"],
        "event_timestamp": [at.isoformat()],
        "created": [at.isoformat()],
    }
    response = httpx.post(
        f"{url}/push",
        json={"push_source_name": "iris_push", "df": df, "to": "online_and_offline"},
        timeout=30,
        headers=auth_headers(),
    )
    assert response.status_code == 200, response.text


def _label(model: str, at: datetime, truth: str, **keys: object) -> dict[str, object]:
    return {"model_name": model, "ground_truth": truth, "event_time": at.isoformat(), **keys}


def test_the_training_set_joins_each_label_with_the_features_as_of_its_event_time(
    sqlite_server: RunningServer,
) -> None:
    url = sqlite_server.url
    model = f"iris-{uuid.uuid4().hex[:8]}"
    early, late = new_flower_ids(2)
    # The label of `late` arrives before any of its features exist.
    posted = httpx.post(
        f"{url}/labels",
        json={
            "labels": [
                _label(
                    model, T0 + timedelta(minutes=30), "virginica", entity_keys={"flower_id": late}
                ),
            ]
        },
        timeout=30,
        headers=auth_headers(),
    )
    assert posted.status_code == 202, posted.text
    _push(url, early, T0 - timedelta(hours=1), 5.0)
    _push(url, early, T0 + timedelta(hours=1), 7.0)
    _push(url, late, T0, 6.0)
    _push(url, late, T0 + timedelta(hours=2), 9.0)
    # Labels of `early` come hours after its features; one names a request id only.
    posted = httpx.post(
        f"{url}/labels",
        json={
            "labels": [
                _label(model, T0, "setosa", entity_keys={"flower_id": early}),
                _label(
                    model,
                    T0 + timedelta(hours=5),
                    "versicolor",
                    entity_keys={"flower_id": early},
                    request_id="req-9",
                ),
                _label(model, T0, "setosa", request_id="req-only"),
            ]
        },
        timeout=30,
        headers=auth_headers(),
    )
    assert posted.status_code == 202, posted.text

    response = httpx.post(
        f"{url}/labels/{model}/training-set",
        json={"features": ["iris_features:sepal_length"], "label_column": "species"},
        headers={**auth_headers(), "accept": "application/json"},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    rows = [dict(zip(answer["columns"], row, strict=True)) for row in answer["data"]]
    got = sorted((r["flower_id"], r["species"], r["sepal_length"]) for r in rows)
    assert got == sorted(
        [(late, "virginica", 6.0), (early, "setosa", 5.0), (early, "versicolor", 7.0)]
    )


def test_a_training_set_of_a_model_without_labels_is_a_400(sqlite_server: RunningServer) -> None:
    response = httpx.post(
        f"{sqlite_server.url}/labels/no-such-model/training-set",
        json={"features": ["iris_features:sepal_length"]},
        timeout=30,
        headers=auth_headers(),
    )
    assert response.status_code == 400, response.text
    assert "no labels" in response.text
