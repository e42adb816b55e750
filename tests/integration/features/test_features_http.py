"""The HTTP API on the embedded defaults: Feast's own client against it, point-in-time
historical retrieval, the repo, materialization, and 4xx (never 500) for bad input."""

from __future__ import annotations

import contextlib
import io
import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pandas as pd  # type: ignore[import-untyped]
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from feast import FeatureStore, RepoConfig
from feast.data_source import PushMode

from driftloop.features.v1 import events_pb2 as features
from driftloop_kit.testing import auth_headers

from .conftest import RunningServer, event_of, eventually, new_flower_ids, read_records

pytestmark = pytest.mark.integration

T0 = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)


def _push_rows(
    url: str, rows: list[tuple[int, datetime, float]], *, to: str = "online_and_offline"
) -> None:
    """``POST /push`` rows of (flower_id, event time, sepal_length)."""
    df = {
        "flower_id": [r[0] for r in rows],
        "sepal_length": [r[2] for r in rows],
        "sepal_width": [3.0] * len(rows),
        "petal_length": [1.5] * len(rows),
        "petal_width": [0.25] * len(rows),
        "site": ["lab"] * len(rows),
        "event_timestamp": [r[1].isoformat() for r in rows],
        "created": [r[1].isoformat() for r in rows],
    }
    response = httpx.post(
        f"{url}/push",
        json={"push_source_name": "iris_push", "df": df, "to": to},
        timeout=30,
        headers=auth_headers(),
    )
    assert response.status_code == 200, response.text


def _client_store(server: RunningServer) -> FeatureStore:
    """A Feast client whose online store is the service (Feast's ``remote`` online store)."""
    registry = server.settings.data_dir.resolve() / "registry.db"
    config = RepoConfig(
        project=server.settings.project,
        provider="local",
        registry={"registry_type": "file", "path": str(registry)},
        online_store={"type": "remote", "path": server.url},
        entity_key_serialization_version=3,
        # Feast's client auth, unchanged: it sends the token as 'Authorization: Bearer'.
        auth={"type": "oidc", "token": auth_headers()["Authorization"].removeprefix("Bearer ")},
    )
    return FeatureStore(config=config)


def test_feast_remote_client_round_trips_reads_and_writes_through_the_service(
    sqlite_server: RunningServer,
) -> None:
    first, second, missing = new_flower_ids(3)
    now = datetime.now(UTC).replace(microsecond=0)
    _push_rows(sqlite_server.url, [(first, now - timedelta(minutes=2), 5.5)], to="online")
    store = _client_store(sqlite_server)

    # Writes: Feast's client pushes through the remote online store (/write-to-online-store).
    frame = pd.DataFrame(
        {
            "flower_id": [second],
            "sepal_length": [6.6],
            "sepal_width": [2.9],
            "petal_length": [4.6],
            "petal_width": [1.3],
            "site": ["field"],
            "event_timestamp": [now - timedelta(minutes=1)],
            "created": [now],
        }
    )
    store.push("iris_push", frame, to=PushMode.ONLINE)

    # Reads: the client's get_online_features is a POST /get-online-features.
    response = store.get_online_features(
        features=["iris_features:sepal_length", "iris_features:site"],
        entity_rows=[{"flower_id": first}, {"flower_id": second}, {"flower_id": missing}],
    ).to_dict()
    assert response == {
        "flower_id": [first, second, missing],
        "sepal_length": [5.5, 6.6, None],
        "site": ["lab", "field", None],
    }
    by_service = store.get_online_features(
        features=store.get_feature_service("iris_classifier"),
        entity_rows=[{"flower_id": second}],
    ).to_dict()
    assert by_service["petal_length"] == [4.6]
    assert "site" not in by_service, "the feature service leaves `site` out"


def test_online_response_has_the_json_shape_of_feast_serve(sqlite_server: RunningServer) -> None:
    (flower,) = new_flower_ids(1)
    moment = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=3)
    _push_rows(sqlite_server.url, [(flower, moment, 4.4)], to="online")
    response = httpx.post(
        f"{sqlite_server.url}/get-online-features",
        json={"entities": {"flower_id": [flower]}, "feature_service": "iris_classifier"},
        headers=auth_headers(),
    )
    assert response.status_code == 200
    body = response.json()
    names = body["metadata"]["feature_names"]
    assert names[0] == "flower_id"
    assert sorted(names[1:]) == ["petal_length", "petal_width", "sepal_length", "sepal_width"]
    assert body["results"][0]["values"] == [flower]
    assert body["results"][names.index("sepal_length")] == {
        "values": [4.4],
        "statuses": ["PRESENT"],
        "event_timestamps": [moment.strftime("%Y-%m-%dT%H:%M:%SZ")],
    }


def _history(flower: int, other: int) -> list[tuple[int, datetime, float]]:
    return [
        (flower, T0, 1.0),
        (flower, T0 + timedelta(hours=1), 2.0),
        (flower, T0 + timedelta(hours=2), 3.0),
        (other, T0 + timedelta(minutes=30), 9.0),
    ]


def test_historical_retrieval_returns_the_value_as_of_each_row_and_nothing_newer(
    sqlite_server: RunningServer,
) -> None:
    flower, other, unknown = new_flower_ids(3)
    _push_rows(sqlite_server.url, _history(flower, other), to="offline")
    entity_times = [
        T0 - timedelta(minutes=1),  # before any value: null, not the first value
        T0,  # exactly at a value's time: that value
        T0 + timedelta(minutes=59),  # just before the second value: still the first
        T0 + timedelta(hours=1, minutes=30),
        T0 + timedelta(days=2),
        T0 + timedelta(days=40),  # beyond the view's 30-day TTL: null
    ]
    entities = {
        "flower_id": [flower] * 6 + [other, unknown],
        "event_timestamp": [t.isoformat() for t in entity_times]
        + [(T0 + timedelta(minutes=10)).isoformat(), T0.isoformat()],
        "label": list("abcdefgh"),  # passed through
    }
    response = httpx.post(
        f"{sqlite_server.url}/get-historical-features",
        json={"entities": entities, "features": ["iris_features:sepal_length"]},
        timeout=60,
        headers=auth_headers(),
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/vnd.apache.parquet"
    frame = pq.read_table(io.BytesIO(response.content)).to_pandas()
    assert list(frame.columns) == ["flower_id", "event_timestamp", "label", "sepal_length"]
    assert list(frame["label"]) == list("abcdefgh"), "rows come back in the entity frame's order"
    values = [None if pd.isna(v) else v for v in frame["sepal_length"]]
    assert values == [None, 1.0, 1.0, 2.0, 3.0, None, None, None]


def test_historical_reads_during_offline_pushes_never_see_a_half_written_file(
    sqlite_server: RunningServer,
) -> None:
    """Feast's file offline store rewrites its Parquet file on every push; a read in
    between used to find it empty ("file size is 0 bytes"), failing a retrain."""
    (flower,) = new_flower_ids(1)
    _push_rows(sqlite_server.url, [(flower, T0, 1.0)], to="offline")
    stop = threading.Event()

    def push_forever() -> None:
        minute = 0
        while not stop.is_set():
            minute += 1
            _push_rows(
                sqlite_server.url, [(flower, T0 + timedelta(minutes=minute), 1.0)], to="offline"
            )

    pusher = threading.Thread(target=push_forever, daemon=True)
    pusher.start()
    try:
        answers = [
            httpx.post(
                f"{sqlite_server.url}/get-historical-features",
                json={
                    "entities": {"flower_id": [flower], "event_timestamp": [T0.isoformat()]},
                    "features": ["iris_features:sepal_length"],
                },
                timeout=60,
                headers=auth_headers(),
            )
            for _ in range(40)
        ]
    finally:
        stop.set()
        pusher.join(timeout=60)
    failed = [a.text for a in answers if a.status_code != 200]
    assert failed == [], failed[:1]


def test_historical_retrieval_takes_parquet_and_answers_arrow(
    sqlite_server: RunningServer,
) -> None:
    flower, other = new_flower_ids(2)
    _push_rows(sqlite_server.url, _history(flower, other), to="offline")
    entity_df = pd.DataFrame(
        {
            "flower_id": [flower, flower, other],
            "event_timestamp": [
                T0 + timedelta(hours=2),
                T0 + timedelta(minutes=30),
                T0 + timedelta(hours=1),
            ],
        }
    )
    body = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(entity_df), body)
    response = httpx.post(
        f"{sqlite_server.url}/get-historical-features",
        params={"feature_service": "iris_classifier", "full_feature_names": "true"},
        content=body.getvalue(),
        headers={
            **auth_headers(),
            "content-type": "application/vnd.apache.parquet",
            "accept": "application/vnd.apache.arrow.stream",
        },
        timeout=60,
    )
    assert response.status_code == 200, response.text
    table = pa.ipc.open_stream(response.content).read_all()
    assert table.column("iris_features__sepal_length").to_pylist() == [3.0, 1.0, 9.0]
    assert "iris_features__site" not in table.column_names

    as_json = httpx.post(
        f"{sqlite_server.url}/get-historical-features",
        json={
            "entities": {
                "flower_id": [flower],
                "event_timestamp": [(T0 + timedelta(minutes=90)).isoformat()],
            },
            "features": ["iris_features:sepal_length", "iris_features:site"],
        },
        headers={**auth_headers(), "accept": "application/json"},
        timeout=60,
    )
    assert as_json.status_code == 200, as_json.text
    assert as_json.json() == {
        "columns": ["flower_id", "event_timestamp", "sepal_length", "site"],
        "data": [[flower, "2030-06-01T13:30:00.000000Z", 2.0, "lab"]],
    }


def test_materialize_loads_offline_rows_online_and_publishes_an_event(
    sqlite_server: RunningServer,
) -> None:
    (flower,) = new_flower_ids(1)
    recent = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    _push_rows(sqlite_server.url, [(flower, recent, 8.8)], to="offline")
    assert online_values_sync(sqlite_server.url, [flower]) == [None]
    response = httpx.post(
        f"{sqlite_server.url}/materialize",
        json={
            "start_ts": (recent - timedelta(minutes=1)).isoformat(),
            "end_ts": (recent + timedelta(minutes=1)).isoformat(),
            "feature_views": ["iris_features"],
        },
        timeout=60,
        headers=auth_headers(),
    )
    assert response.status_code == 200, response.text
    assert response.json()["feature_views"] == ["iris_features"]
    assert online_values_sync(sqlite_server.url, [flower]) == [8.8]

    response = httpx.post(
        f"{sqlite_server.url}/materialize-incremental",
        json={"end_ts": datetime.now(UTC).isoformat()},
        timeout=60,
        headers=auth_headers(),
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "done", "feature_views": ["iris_features"]}


async def test_materialize_with_async_answers_202_and_loads_the_rows_afterwards(
    sqlite_server: RunningServer,
) -> None:
    (flower,) = new_flower_ids(1)
    recent = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    _push_rows(sqlite_server.url, [(flower, recent, 6.1)], to="offline")
    async with httpx.AsyncClient(
        headers=auth_headers(), base_url=sqlite_server.url, timeout=60
    ) as client:
        response = await client.post(
            "/materialize",
            params={"async": "true"},
            json={
                "start_ts": (recent - timedelta(minutes=1)).isoformat(),
                "end_ts": (recent + timedelta(minutes=1)).isoformat(),
                "feature_views": ["iris_features"],
            },
        )
        assert response.status_code == 202, response.text
        assert response.json() == {"status": "accepted", "feature_views": ["iris_features"]}

        async def loaded() -> bool:
            return online_values_sync(sqlite_server.url, [flower]) == [6.1]

        await eventually(loaded, timeout=20)
        unknown = await client.post(
            "/materialize-incremental",
            params={"async": "true"},
            json={"end_ts": datetime.now(UTC).isoformat(), "feature_views": ["nope"]},
        )
    assert unknown.status_code == 404, unknown.text


async def test_materialize_publishes_features_materialized(sqlite_server: RunningServer) -> None:
    flower, other = new_flower_ids(2)
    start = datetime(2029, 1, 1, tzinfo=UTC) + timedelta(minutes=flower % 997)
    end = start + timedelta(hours=1)
    _push_rows(
        sqlite_server.url,
        [
            (flower, start + timedelta(minutes=1), 1.0),
            (flower, start + timedelta(minutes=2), 2.0),
            (other, start + timedelta(minutes=3), 3.0),
            (other, end + timedelta(minutes=3), 4.0),  # outside the range
        ],
        to="offline",
    )
    async with httpx.AsyncClient(
        headers=auth_headers(), base_url=sqlite_server.url, timeout=60
    ) as client:
        response = await client.post(
            "/materialize",
            json={"start_ts": start.isoformat(), "end_ts": end.isoformat()},
        )
    assert response.status_code == 200, response.text

    def is_ours(record: Any) -> bool:
        event = event_of(record)
        return (
            event is not None
            and isinstance(event.data, features.FeaturesMaterialized)
            and event.data.end_time.ToDatetime(tzinfo=UTC) == end
        )

    found = await read_records(
        sqlite_server.settings.kafka_bootstrap_servers, "features.events", is_ours, expected=1
    )
    assert found, "no features.materialized event"
    event = event_of(found[0])
    assert event is not None
    assert event.data.feature_view == "iris_features"
    assert event.data.start_time.ToDatetime(tzinfo=UTC) == start
    assert event.data.materialization_id.startswith("mat-")
    assert event.data.rows == 2, "the latest row of each of the two flowers in the range"
    assert found[0].key == b"iris_features"


def online_values_sync(url: str, flower_ids: list[int]) -> list[Any]:
    response = httpx.post(
        f"{url}/get-online-features",
        json={"entities": {"flower_id": flower_ids}, "features": ["iris_features:sepal_length"]},
        headers=auth_headers(),
    )
    assert response.status_code == 200, response.text
    values: list[Any] = response.json()["results"][1]["values"]
    return values


def test_the_repo_lists_the_example_objects_and_applies_again(
    sqlite_server: RunningServer,
) -> None:
    url = sqlite_server.url
    assert httpx.get(f"{url}/repo", headers=auth_headers()).json()["push_sources"] == ["iris_push"]
    entities = httpx.get(f"{url}/repo/entities", headers=auth_headers()).json()["entities"]
    assert [(e["name"], e["join_key"], e["value_type"]) for e in entities] == [
        ("flower", "flower_id", "INT64")
    ]
    (view,) = httpx.get(f"{url}/repo/feature-views", headers=auth_headers()).json()["feature_views"]
    assert view["name"] == "iris_features"
    assert view["ttl_seconds"] == 30 * 86400
    assert view["stream_source"] == "iris_push"
    assert [f["name"] for f in view["features"]] == [
        "sepal_length",
        "sepal_width",
        "petal_length",
        "petal_width",
        "site",
    ]
    (service,) = httpx.get(f"{url}/repo/feature-services", headers=auth_headers()).json()[
        "feature_services"
    ]
    assert service["features"][0] == "iris_features:sepal_length"
    sources = {
        s["name"]: s["type"]
        for s in httpx.get(f"{url}/repo/data-sources", headers=auth_headers()).json()[
            "data_sources"
        ]
    }
    assert sources == {"iris_push": "PushSource", "iris_features": "FileSource"}
    assert httpx.get(f"{url}/repo/feature-views/nope", headers=auth_headers()).status_code == 404

    # An object added to the repo is registered by POST /repo/apply, and deleted when
    # its definition goes away.
    extra = sqlite_server.settings.feast_repo_path / "extra_entity.py"
    extra.write_text(
        "from feast import Entity, ValueType\n"
        "gardener = Entity(name='gardener', join_keys=['gardener_id'], "
        "value_type=ValueType.INT64)\n"
    )
    try:
        applied = httpx.post(f"{url}/repo/apply", timeout=60, headers=auth_headers())
        assert applied.status_code == 200, applied.text
        assert "Entity gardener" in applied.json()["applied"]
        names = {
            e["name"]
            for e in httpx.get(f"{url}/repo/entities", headers=auth_headers()).json()["entities"]
        }
        assert names == {"flower", "gardener"}
    finally:
        extra.unlink()
    applied = httpx.post(f"{url}/repo/apply", timeout=60, headers=auth_headers())
    assert applied.json()["deleted"] == ["Entity gardener"]
    broken = sqlite_server.settings.feast_repo_path / "broken.py"
    broken.write_text("import nowhere_to_be_found\n")
    try:
        refused = httpx.post(f"{url}/repo/apply", timeout=60, headers=auth_headers())
    finally:
        broken.unlink()
    assert refused.status_code == 400
    assert "nowhere_to_be_found" in refused.json()["message"]


def test_the_sqlite_online_store_runs_in_wal_mode(sqlite_server: RunningServer) -> None:
    path = sqlite_server.settings.data_dir / "online.db"
    with contextlib.closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_health_readiness_metrics_and_openapi(sqlite_server: RunningServer) -> None:
    url = sqlite_server.url
    assert httpx.get(f"{url}/healthz", headers=auth_headers()).status_code == 200
    assert (
        httpx.get(f"{url}/health", headers=auth_headers()).status_code == 200
    )  # feast serve's probe
    ready = httpx.get(f"{url}/readyz", timeout=10, headers=auth_headers())
    assert ready.status_code == 200, ready.text
    assert (
        "driftloop_features_rows_ingested_total"
        in httpx.get(f"{url}/metrics", headers=auth_headers()).text
    )
    paths = httpx.get(f"{url}/openapi.json", headers=auth_headers()).json()["paths"]
    for path in (
        "/get-online-features",
        "/push",
        "/materialize",
        "/materialize-incremental",
        "/get-historical-features",
        "/repo/apply",
    ):
        assert path in paths


BAD_REQUESTS: list[tuple[str, str, Any, int, str]] = [
    ("/get-online-features", "json", {"features": ["iris_features:sepal_length"]}, 400, "entities"),
    (
        "/get-online-features",
        "json",
        {"entities": {"flower_id": [1]}, "features": ["nope:sepal_length"]},
        404,
        "nope",
    ),
    (
        "/get-online-features",
        "json",
        {"entities": {"flower_id": [1]}, "features": ["iris_features:nope"]},
        400,
        "nope",
    ),
    ("/get-online-features", "json", {"entities": {"flower_id": [1]}}, 400, "feature_service"),
    (
        "/get-online-features",
        "json",
        {"entities": {"flower_id": [1]}, "feature_service": "nope"},
        404,
        "nope",
    ),
    (
        "/get-online-features",
        "json",
        {"entities": {"flower_id": [1, 2], "x": [1]}, "features": ["iris_features:site"]},
        400,
        "lengths",
    ),
    ("/get-online-features", "raw", b"{not json", 400, "JSON"),
    ("/push", "json", {"push_source_name": "nope", "df": {"a": [1]}}, 404, "nope"),
    ("/push", "json", {"push_source_name": "iris_push", "df": {"flower_id": [1]}}, 400, "event"),
    (
        "/push",
        "json",
        {
            "push_source_name": "iris_push",
            "df": {"flower_id": [1], "event_timestamp": ["yesterday"], "created": ["x"]},
        },
        400,
        "timestamp",
    ),
    (
        "/push",
        "json",
        {"push_source_name": "iris_push", "df": {"a": [1]}, "to": "moon"},
        400,
        "moon",
    ),
    ("/materialize", "json", {"start_ts": "2030-01-02", "end_ts": "2030-01-01"}, 400, "before"),
    ("/materialize", "json", {"start_ts": "soon", "end_ts": "later"}, 400, "timestamp"),
    ("/materialize", "json", {"end_ts": "2030-01-01"}, 400, "start_ts"),
    (
        "/materialize",
        "json",
        {"start_ts": "2030-01-01", "end_ts": "2030-01-02", "feature_views": ["nope"]},
        404,
        "nope",
    ),
    ("/materialize-incremental", "json", {}, 400, "end_ts"),
    ("/get-historical-features", "json", {"entities": {"flower_id": [1]}}, 400, "event_timestamp"),
    (
        "/get-historical-features",
        "json",
        {
            "entities": {"flower_id": [1], "event_timestamp": ["not a time"]},
            "features": ["iris_features:site"],
        },
        400,
        "timestamp",
    ),
    (
        "/get-historical-features",
        "json",
        {"entities": {"flower_id": [1], "event_timestamp": ["2030-01-01T00:00:00Z"]}},
        400,
        "feature_service",
    ),
    (
        "/get-historical-features",
        "json",
        {
            "entities": {"flower_id": [1], "event_timestamp": ["2030-01-01T00:00:00Z"]},
            "features": ["nope:x"],
        },
        404,
        "nope",
    ),
    ("/get-historical-features", "parquet", b"PAR1 not really", 400, "Parquet"),
    ("/get-historical-features", "text", b"flower_id\n1\n", 400, "Content-Type"),
    ("/get-historical-features", "raw", b"[1, 2", 400, "JSON"),
]


@pytest.mark.parametrize("case", BAD_REQUESTS, ids=[f"{p}-{n}" for p, _, _, _, n in BAD_REQUESTS])
def test_bad_input_is_a_4xx_with_a_message(
    sqlite_server: RunningServer, case: tuple[str, str, Any, int, str]
) -> None:
    path, kind, body, status, needle = case
    url = f"{sqlite_server.url}{path}"
    if kind == "json":
        response = httpx.post(url, json=body, timeout=30, headers=auth_headers())
    else:
        content_type = {
            "raw": "application/json",
            "parquet": "application/vnd.apache.parquet",
            "text": "text/csv",
        }[kind]
        response = httpx.post(
            url, content=body, headers={**auth_headers(), "content-type": content_type}, timeout=30
        )
    assert response.status_code == status, response.text
    message = response.json()["message"]
    assert needle.lower() in message.lower(), message
