"""``POST /labels`` stores labels once and publishes them on ``labels``; ``GET`` reads them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from driftloop.monitor.v1 import events_pb2 as monitor
from driftloop_events.values import value_to_python
from driftloop_kit.testing import auth_headers

from .conftest import RunningServer, event_of, read_records

pytestmark = pytest.mark.integration

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


async def test_posted_labels_are_stored_once_published_on_labels_and_read_back_by_page(
    sqlite_server: RunningServer,
) -> None:
    model = f"churn-{uuid.uuid4().hex[:8]}"
    body = {
        "labels": [
            {
                "model_name": model,
                "request_id": "r1",
                "ground_truth": "no",
                "event_time": T0.isoformat(),
            },
            {
                "model_name": model,
                "entity_keys": {"customer_id": 7},
                "ground_truth": 1,
                "event_time": (T0 + timedelta(hours=1)).isoformat(),
            },
        ]
    }
    async with httpx.AsyncClient(
        headers=auth_headers(), base_url=sqlite_server.url, timeout=30
    ) as client:
        for _ in range(2):  # resent: still two labels
            response = await client.post("/labels", json=body)
            assert response.status_code == 202, response.text
        correction = {
            "labels": [
                {
                    "model_name": model,
                    "request_id": "r1",
                    "ground_truth": "yes",
                    "event_time": (T0 + timedelta(hours=2)).isoformat(),
                }
            ]
        }
        assert (await client.post("/labels", json=correction)).status_code == 202

        first = (await client.get(f"/labels/{model}", params={"limit": 1})).json()
        rest = (await client.get(f"/labels/{model}", params={"after": first["next_after"]})).json()
        late = (
            await client.get(
                f"/labels/{model}", params={"start": (T0 + timedelta(minutes=90)).isoformat()}
            )
        ).json()
    stored = first["labels"] + rest["labels"]
    assert sorted((x["request_id"] or "", x["ground_truth"]) for x in stored) == [
        ("", 1),
        ("r1", "yes"),
    ]
    assert rest["next_after"] is None
    assert [x["ground_truth"] for x in late["labels"]] == ["yes"]

    def ours(record: object) -> bool:
        event = event_of(record)
        return event is not None and getattr(event.data, "model_name", None) == model

    records = await read_records(
        sqlite_server.settings.kafka_bootstrap_servers, "labels", ours, expected=5
    )
    events = [event_of(r) for r in records]
    assert len(events) == 5
    messages = [e.data for e in events if e is not None]
    assert all(isinstance(m, monitor.LabelRecorded) for m in messages)
    assert sorted(
        str(value_to_python(m.ground_truth)) for m in messages if m.request_id == "r1"
    ) == [
        "no",
        "no",
        "yes",
    ]
    keyed = [m for m in messages if not m.request_id]
    assert value_to_python(keyed[0].entity_keys["customer_id"]) == 7


@pytest.mark.parametrize(
    ("label", "message"),
    [
        (
            {"model_name": "m", "ground_truth": 1, "event_time": "2026-12-01T12:00:00Z"},
            "request_id or entity_keys",
        ),
        (
            {
                "model_name": "m",
                "request_id": "r",
                "ground_truth": 1,
                "event_time": "2026-12-01T12:00:00",
            },
            "timezone",
        ),
        (
            {"model_name": "m", "request_id": "r", "event_time": "2026-12-01T12:00:00Z"},
            "ground_truth",
        ),
        (  # found by the API fuzzer: a 500 before
            {
                "model_name": "m",
                "entity_keys": {"id": 2**70},
                "ground_truth": 1,
                "event_time": "2026-12-01T12:00:00Z",
            },
            "entity key 'id' is an integer beyond 64 bits",
        ),
        (
            {
                "model_name": "m",
                "request_id": "r",
                "ground_truth": 2**70,
                "event_time": "2026-12-01T12:00:00Z",
            },
            "ground_truth is an integer beyond 64 bits",
        ),
    ],
)
def test_a_label_that_cannot_be_stored_is_a_400_naming_the_reason(
    sqlite_server: RunningServer, label: dict[str, object], message: str
) -> None:
    response = httpx.post(
        f"{sqlite_server.url}/labels", json={"labels": [label]}, timeout=30, headers=auth_headers()
    )
    assert 400 <= response.status_code < 500, response.text
    assert message in response.text


def test_too_many_labels_in_one_post_is_refused(sqlite_server: RunningServer) -> None:
    label = {
        "model_name": "m",
        "request_id": "r",
        "ground_truth": 1,
        "event_time": "2026-12-01T12:00:00Z",
    }
    response = httpx.post(
        f"{sqlite_server.url}/labels",
        json={"labels": [label] * 10_001},
        timeout=30,
        headers=auth_headers(),
    )
    assert 400 <= response.status_code < 500, response.text
    assert "10000" in response.text
