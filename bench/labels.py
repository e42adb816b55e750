"""Labels benchmark: label ingestion through Kafka and REST, and a training set of
100,000 labelled rows with 20 features, point-in-time, against Feast's own
``get_historical_features`` on the same data in the same run.

- Kafka: ``LabelRecorded`` events (entity key, event time, ground truth; protobuf)
  produced to ``labels`` by a plain aiokafka producer as fast as it can; the clock runs
  from the first send until the service's ``driftloop_features_labels_stored_total``
  counts them all in the label store (SQLite, the embedded default).
- REST: ``POST /labels`` of 1,000 labels per request, one request at a time over one
  connection; stored and published (outbox) before each answer.
- Training set: ``POST /labels/{model}/training-set`` (Parquet answer) for the model's
  100,000 labels, each joined with the 20 features as of its event time, against
  ``FeatureStore.get_historical_features(entity_df, features).to_df()`` in this process
  with the same entity rows (keys and event times) on the same Parquet offline data:
  Feast's own join without the label store, the request or the answer around it. One
  call of each side warms up first, outside the figures.

Usage::

    .venv/bin/python bench/labels.py [--labels 100000] [--rounds 2] [--no-pin] [--keep]

It prints figures and summary lines; it never fails on a time.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import io
import json
import re
import signal
import time
from collections.abc import Sequence
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from _common import (
    LOADGEN_CORE,
    SERVER_CORE,
    ServerProcess,
    environment_line,
    median,
    pin_this_process,
    summary_line,
)
from features import AUTH, _workdir, driftloop_server, url_of

N_FEATURES = 20
#: Observations of each entity in the offline data, a day apart.
OBSERVATIONS = 3
VIEW = "customer_stats"
FEATURES = [f"{VIEW}:f{i}" for i in range(N_FEATURES)]
KAFKA_TARGET = 10_000  # labels/s
MODEL = "bench-labels"
WARMUP = "bench-labels-warm-up"

BENCH_REPO = f'''"""Labels benchmark repo: one entity, {N_FEATURES} features on Parquet files."""

from datetime import timedelta

from feast import Entity, FeatureView, Field, FileSource
from feast.types import Float64
from feast.value_type import ValueType

customer = Entity(name="customer", join_keys=["customer_id"], value_type=ValueType.INT64)
customer_source = FileSource(
    name="customer_stats_source",
    path="data/customer_stats.parquet",
    timestamp_field="event_timestamp",
)
customer_stats = FeatureView(
    name="{VIEW}",
    entities=[customer],
    ttl=timedelta(days=365),
    schema=[Field(name=f"f{{i}}", dtype=Float64) for i in range({N_FEATURES})],
    source=customer_source,
    online=False,
)
'''


def write_feature_history(repo: Path, base: datetime, entities: int) -> None:
    """Three observations per entity over the last three days (the offline data)."""
    import numpy as np
    import pandas as pd  # type: ignore[import-untyped]

    rows = entities * OBSERVATIONS
    ids = np.repeat(np.arange(entities), OBSERVATIONS)
    offsets = np.tile(np.arange(OBSERVATIONS), entities)
    frame = pd.DataFrame({"customer_id": ids.astype("int64")})
    frame["event_timestamp"] = pd.to_datetime(base, utc=True) - pd.to_timedelta(offsets, unit="D")
    generator = np.random.default_rng(7)
    for f in range(N_FEATURES):
        frame[f"f{f}"] = generator.normal(f, 1.0, rows)
    (repo / "data").mkdir(exist_ok=True)
    frame.to_parquet(repo / "data" / "customer_stats.parquet", index=False)


def labels(count: int, base: datetime, *, offset: int = 0) -> list[dict[str, Any]]:
    """``count`` labels, one per entity (a label keyed by entity keys is the entity's
    label: a later one replaces it), an event time in the last two days (after the
    entity's first observation), a class."""
    found = []
    for i in range(offset, offset + count):
        found.append(
            {
                "model_name": MODEL,
                "entity_keys": {"customer_id": i},
                "ground_truth": "yes" if i % 3 == 0 else "no",
                "event_time": (base - timedelta(seconds=(i * 7) % (2 * 86_400))).isoformat(),
            }
        )
    return found


def stored_total(server: ServerProcess, via: str) -> float:
    """The service's ``driftloop_features_labels_stored_total`` for ``via``."""
    host, port = url_of(server)
    conn = http.client.HTTPConnection(host, port, timeout=10)
    try:
        conn.request("GET", "/metrics", headers=AUTH)
        text = conn.getresponse().read().decode()
    finally:
        conn.close()
    match = re.search(rf'driftloop_features_labels_stored_total{{via="{via}"}} (\S+)', text)
    return float(match.group(1)) if match else 0.0


def label_records(found: Sequence[dict[str, Any]]) -> list[Any]:
    """The labels as Kafka records of ``LabelRecorded`` CloudEvents (protobuf)."""
    from driftloop.common.v1.common_pb2 import Value
    from driftloop.monitor.v1 import events_pb2 as monitor
    from driftloop_events.envelope import CloudEvent, to_record

    records = []
    for label in found:
        message = monitor.LabelRecorded(
            model_name=label["model_name"], ground_truth=Value(string_value=label["ground_truth"])
        )
        for key, value in label["entity_keys"].items():
            message.entity_keys[key].CopyFrom(Value(int64_value=value))
        message.event_time.FromDatetime(datetime.fromisoformat(label["event_time"]))
        records.append(to_record(CloudEvent.new(message)))
    return records


async def kafka_rate(bootstrap: str, records: Sequence[Any], server: ServerProcess) -> float:
    """Labels/s from the first send until the label store counts them all.

    One label of another model is sent and stored first, outside the clock: the
    service's consumer group has joined (seconds after the service says it is ready)
    and the producer has its metadata and connection, as in bus.py."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        (warmup,) = label_records([{**labels(1, datetime.now(UTC))[0], "model_name": WARMUP}])
        before = stored_total(server, "topic")
        started = time.perf_counter()
        await producer.send_and_wait(
            warmup.topic, warmup.value, key=warmup.key, headers=warmup.headers
        )
        while stored_total(server, "topic") < before + 1:
            if time.perf_counter() > started + 120:
                raise RuntimeError("the warm-up label was not stored within 120 s")
            await asyncio.sleep(0.05)
        print(f"    warm-up label stored after {time.perf_counter() - started:.2f} s", flush=True)
        before += 1
        started = time.perf_counter()
        for record in records:
            await producer.send(record.topic, record.value, key=record.key, headers=record.headers)
        await producer.flush()
    finally:
        await producer.stop()
    produced = time.perf_counter() - started
    deadline = started + 600
    while stored_total(server, "topic") < before + len(records):
        if time.perf_counter() > deadline:
            raise RuntimeError("labels not stored within 600 s")
        await asyncio.sleep(0.1)
    elapsed = time.perf_counter() - started
    print(f"    produced in {produced:.2f} s, stored in {elapsed:.2f} s", flush=True)
    return len(records) / elapsed


def rest_rate(server: ServerProcess, found: Sequence[dict[str, Any]], batch: int = 1000) -> float:
    """Labels/s of ``POST /labels`` with ``batch`` labels per request, one at a time."""
    host, port = url_of(server)
    bodies = [
        json.dumps({"labels": list(found[i : i + batch])}).encode()
        for i in range(0, len(found), batch)
    ]
    conn = http.client.HTTPConnection(host, port, timeout=120)
    headers = {"content-type": "application/json", **AUTH}
    started = time.perf_counter()
    try:
        for body in bodies:
            conn.request("POST", "/labels", body=body, headers=headers)
            response = conn.getresponse()
            text = response.read()
            if response.status != 202:
                raise RuntimeError(f"POST /labels: {response.status} {text[:300]!r}")
    finally:
        conn.close()
    return len(found) / (time.perf_counter() - started)


def training_set_seconds(server: ServerProcess) -> tuple[float, int]:
    """Seconds of ``POST /labels/{model}/training-set`` (Parquet), and its rows."""
    import pyarrow.parquet as pq

    host, port = url_of(server)
    conn = http.client.HTTPConnection(host, port, timeout=600)
    body = json.dumps({"features": FEATURES, "label_column": "churned"}).encode()
    headers = {
        "content-type": "application/json",
        "accept": "application/vnd.apache.parquet",
        **AUTH,
    }
    started = time.perf_counter()
    try:
        conn.request("POST", f"/labels/{MODEL}/training-set", body=body, headers=headers)
        response = conn.getresponse()
        data = response.read()
        if response.status != 200:
            raise RuntimeError(f"training set: {response.status} {data[:300]!r}")
    finally:
        conn.close()
    elapsed = time.perf_counter() - started
    return elapsed, pq.read_table(io.BytesIO(data)).num_rows


def feast_seconds(store: Any, found: Sequence[dict[str, Any]]) -> tuple[float, int]:
    """Seconds of Feast's ``get_historical_features(...).to_df()`` for the same rows."""
    import pandas as pd  # type: ignore[import-untyped]

    entity_df = pd.DataFrame(
        {
            "customer_id": [label["entity_keys"]["customer_id"] for label in found],
            "event_timestamp": pd.to_datetime([label["event_time"] for label in found], utc=True),
            "churned": [label["ground_truth"] for label in found],
        }
    )
    started = time.perf_counter()
    frame = store.get_historical_features(entity_df=entity_df, features=FEATURES).to_df()
    return time.perf_counter() - started, len(frame)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--labels", type=int, default=100_000, help="labels in the training set")
    parser.add_argument("--rounds", type=int, default=2, help="training-set rounds per side")
    parser.add_argument("--no-pin", action="store_true", help="do not pin to cores")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    """Run the benchmark and print its figures."""
    args = parse_args(argv)
    pinned = "not pinned (--no-pin)" if args.no_pin else pin_this_process(LOADGEN_CORE)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    server_core = None if args.no_pin else SERVER_CORE
    print("labels benchmark: ingestion through Kafka and REST; a training set vs Feast's join")
    print(environment_line())
    print(f"load generator and Feast in process: this process, {pinned}")
    from driftloop_bus.embedded import EmbeddedBroker

    base = datetime.now(UTC).replace(microsecond=0)
    half = args.labels // 2
    by_kafka = labels(half, base)
    by_rest = labels(args.labels - half, base, offset=half)
    with _workdir(args.keep) as workdir, ExitStack() as stack:
        repo = workdir / "repo"
        repo.mkdir()
        (repo / "bench_repo.py").write_text(BENCH_REPO)
        write_feature_history(repo, base, args.labels)
        broker = stack.enter_context(EmbeddedBroker())
        ours = driftloop_server(workdir, repo, broker.bootstrap_servers, server_core)
        stack.callback(ours.stop)
        ours.start(timeout=180)
        print(f"driftloop features: {ours.ready_url}", flush=True)

        print(f"\nKafka: {len(by_kafka):,} labels to `labels`", flush=True)
        kafka = asyncio.run(kafka_rate(broker.bootstrap_servers, label_records(by_kafka), ours))
        print(f"  {kafka:,.0f} labels/s stored (target >= {KAFKA_TARGET:,})")
        print(f"REST: {len(by_rest):,} labels, 1,000 per POST /labels", flush=True)
        rest = rest_rate(ours, by_rest)
        print(f"  {rest:,.0f} labels/s stored and published")

        from feast import FeatureStore

        store = FeatureStore(repo_path=str(repo))
        everything = [*by_kafka, *by_rest]
        ours_s: list[float] = []
        feast_s: list[float] = []
        print(
            f"\ntraining set: {len(everything):,} labels x {N_FEATURES} features, "
            f"{args.rounds} rounds per side, alternating",
            flush=True,
        )
        # One call of each side outside the figures (BENCHMARKS.md: warm up first): the
        # first reads the Parquet file from disk and imports what the join needs.
        warm, _ = training_set_seconds(ours)
        peer_warm, _ = feast_seconds(store, everything)
        print(f"  warm-up: driftloop {warm:.2f} s, Feast {peer_warm:.2f} s", flush=True)
        for round_ in range(args.rounds):
            seconds, rows = training_set_seconds(ours)
            ours_s.append(seconds)
            peer, peer_rows = feast_seconds(store, everything)
            feast_s.append(peer)
            print(
                f"  round {round_ + 1}: driftloop {seconds:.2f} s ({rows:,} rows), "
                f"Feast get_historical_features {peer:.2f} s ({peer_rows:,} rows)",
                flush=True,
            )
        ratio = median(ours_s) / median(feast_s)
        print(
            f"  median: driftloop {median(ours_s):.2f} s, Feast {median(feast_s):.2f} s: "
            f"{ratio:.2f}x Feast's time (target <= 1x)"
        )
        print()
        print(
            summary_line(
                "labels via Kafka",
                ours=f"{kafka:,.0f} labels/s (REST {rest:,.0f}/s)",
                peer=f"target {KAFKA_TARGET:,}/s",
                ratio=kafka / KAFKA_TARGET,
                target=">= 1",
            )
        )
        print(
            summary_line(
                f"training set {len(everything):,} x {N_FEATURES}",
                ours=f"{median(ours_s):.2f} s",
                peer=f"Feast get_historical_features {median(feast_s):.2f} s",
                ratio=ratio,
                target="<= 1",
            )
        )


if __name__ == "__main__":
    main()
