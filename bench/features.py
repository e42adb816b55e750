"""Features benchmark: online retrieval through driftloop features vs Feast, and Kafka ingestion.

Online retrieval (``POST /get-online-features``, 1 entity x 10 features and 100 entities x
10 features), on one online store (SQLite, or Redis with ``--stores redis``; both with
``--stores sqlite,redis``, one after the other) and one registry, through:

- driftloop: ``driftloop run features`` (one uvicorn worker, pinned to core 0);
- peer: ``feast serve`` 0.67.0 from its own virtual environment (one gunicorn worker,
  pinned to core 0; ``--max-requests 0`` so that no worker restart lands in the timings),
  started with the ``feature_store.yaml`` driftloop wrote into the repo;
- Feast in process: ``FeatureStore.get_online_features`` in this process (core 1), the
  floor of what any server can add to.

Requests go one at a time over one keep-alive connection (``http.client``), so the
figures are latencies, not queueing; peer and driftloop alternate, rounds x requests each.
Each side's CPU time per request is printed too (the server's processes, user + system;
this process's for Feast in process), with the load average: on a shared machine it
compares across runs better than a latency.

Kafka ingestion: rows (10 features, ``PUSH_MODE_ONLINE``) produced by a plain aiokafka
producer to ``features.ingest`` as fast as it can; the clock runs from the first send to
the moment the service's ``driftloop_features_rows_ingested_total`` counts them all.
Feast has no Kafka ingestion of its own; its figure is ``FeatureStore.push`` of the same
rows as 2,000-row DataFrames in process, to the same online store: the write without
Kafka, decoding, validation or the service around it.

Ingestion ceiling (``--only ceiling``; also in ``all``): after the Kafka rounds, the parts
of the pipeline one at a time, in this process moved to the service's core (the service
idle), on the records the rounds left on ``features.ingest``: (a) a raw aiokafka consumer
reading the topic from its start with no work (the service's fetch options, and larger
fetches), (b) decoding those records into validated rows (``protobuf_spec``,
``FeatureRow.FromString``, ``validate_row``, as the service's batch path), (c) writing
those rows to the online store with no Kafka, in the service's 2,000-row batches,
through driftloop's writer (``FeastGateway.write_online_rows``) and through Feast's own
``online_write_batch`` (its protobufs built by ``OnlinePlan.protos``). The slowest
necessary part bounds the pipeline; each rate is printed beside the pipeline's.

Usage::

    .venv/bin/python bench/features.py [--requests 2000] [--rounds 3] [--rows 50000]
                                       [--entities 1000] [--stores sqlite,redis]
                                       [--only all|online|ingestion|ceiling] [--no-pin] [--keep]

It prints figures and summary lines; it never fails on a time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import os
import re
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from _common import (
    LOADGEN_CORE,
    SERVER_CORE,
    ServerProcess,
    admin_token,
    alternate,
    ensure_venv,
    environment_line,
    free_port,
    median,
    percentile,
    pin_this_process,
    summary_line,
    taskset_prefix,
)

REPO = Path(__file__).resolve().parent.parent
FEAST_VERSION = "0.67.0"
REDIS_PY = "7.4.1"  # the redis client of driftloop's environment, for feast serve's
FEAST_VENV = REPO / ".driftloop" / "bench" / "feast-venv"
N_FEATURES = 10
PUSH_SOURCE = "driver_stats_push"
VIEW = "driver_stats"
FEATURES = [f"{VIEW}:f{i}" for i in range(N_FEATURES)]
P99_TARGET_MS = 2.0  # issue 24: 1x10 p99 <= 2 ms over HTTP
INGEST_TARGET = 50_000  # issue 24: Kafka -> online >= 50,000 rows/s
INGEST_TOPIC = "features.ingest"
PRODUCE_BATCH_BYTES = 256 * 1024  # a producer batch (under the 1 MB request size)

BENCH_REPO = f'''"""Benchmark repo: one entity, one push source, {N_FEATURES} features."""

from datetime import timedelta

from feast import Entity, FeatureView, Field, FileSource, PushSource
from feast.types import Float64
from feast.value_type import ValueType

driver = Entity(name="driver", join_keys=["driver_id"], value_type=ValueType.INT64)
driver_source = FileSource(
    name="driver_stats_source",
    path="data/driver_stats.parquet",
    timestamp_field="event_timestamp",
    created_timestamp_column="created",
)
driver_stats_push = PushSource(name="{PUSH_SOURCE}", batch_source=driver_source)
driver_stats = FeatureView(
    name="{VIEW}",
    entities=[driver],
    ttl=timedelta(days=365),
    schema=[Field(name=f"f{{i}}", dtype=Float64) for i in range({N_FEATURES})],
    source=driver_stats_push,
    online=True,
)
'''


# --- the servers ----------------------------------------------------------------------


def _server_env() -> dict[str, str]:
    # Nothing of this process's own settings leaks into a server's.
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DRIFTLOOP_", "FEAST_")) and k != "VIRTUAL_ENV"
    }


#: Sent with every request (driftloop's features service needs a token; feast serve
#: ignores the header): set once the key exists.
AUTH: dict[str, str] = {}


def driftloop_server(
    workdir: Path, repo: Path, bootstrap: str, core: int | None, online_url: str | None = None
) -> ServerProcess:
    """``driftloop run features`` on the bench repo (SQLite online unless ``online_url``
    names Redis; Parquet offline), with authentication on (the default): requests carry
    an admin token signed with its key."""
    port = free_port()
    AUTH["Authorization"] = f"Bearer {admin_token(workdir / 'home')}"
    env = {
        **_server_env(),
        **({"DRIFTLOOP_FEATURES_ONLINE_STORE_URL": online_url} if online_url else {}),
        "DRIFTLOOP_HOME": str(workdir / "home"),
        "DRIFTLOOP_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "DRIFTLOOP_FEATURES_REPO_PATH": str(repo),
        "DRIFTLOOP_FEATURES_LOG_LEVEL": "WARNING",  # no access log, as feast serve
        "DRIFTLOOP_FEATURES_INGEST_SESSION_TIMEOUT": "6",
    }
    return ServerProcess(
        name="driftloop",
        command=[
            str(Path(sys.executable).parent / "driftloop"),
            "run",
            "features",
            "--port",
            str(port),
        ],
        ready_url=f"http://127.0.0.1:{port}/readyz",
        env=env,
        cwd=REPO,
        log_path=workdir / "driftloop-server.log",
        core=core,
    )


def feast_server(bin_dir: Path, workdir: Path, repo: Path, core: int | None) -> ServerProcess:
    """``feast serve`` from the peer's environment, on the repo's ``feature_store.yaml``."""
    port = free_port()
    return ServerProcess(
        name="feast serve",
        command=[
            str(bin_dir / "feast"),
            "-c",
            str(repo),
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--no-access-log",
            "--max-requests",
            "0",
        ],
        ready_url=f"http://127.0.0.1:{port}/health",
        env=_server_env(),
        cwd=repo,
        log_path=workdir / "feast-server.log",
        core=core,
    )


#: The floor of one HTTP request on the service's stack: an ASGI app that answers every
#: POST with the bytes driftloop's service answered, under uvicorn as the service runs it
#: (uvloop, httptools, one worker, no access log). No routing, middleware, auth or read.
BARE_APP = """
import sys
import uvicorn

ANSWER = open(sys.argv[2], "rb").read()
HEAD = [(b"content-type", b"application/json"), (b"content-length", str(len(ANSWER)).encode())]


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 200, "headers": HEAD})
    await send({"type": "http.response.body", "body": ANSWER})


uvicorn.run(
    app, host="127.0.0.1", port=int(sys.argv[1]), loop="uvloop", http="httptools",
    lifespan="off", access_log=False, log_level="warning",
)
"""


def bare_server(workdir: Path, answer: bytes, core: int | None) -> ServerProcess:
    """The HTTP floor: :data:`BARE_APP` answering ``answer`` to every request."""
    port = free_port()
    script, body = workdir / "bare_app.py", workdir / "bare_answer.json"
    script.write_text(BARE_APP)
    body.write_bytes(answer)
    return ServerProcess(
        name="bare uvicorn",
        command=[sys.executable, str(script), str(port), str(body)],
        ready_url=f"http://127.0.0.1:{port}/get-online-features",
        env=_server_env(),
        cwd=workdir,
        log_path=workdir / "bare-server.log",
        core=core,
    )


def answer_of(server: ServerProcess, body: bytes) -> bytes:
    """The service's answer to ``body`` (what the bare server will send back)."""
    host, port = url_of(server)
    conn = http.client.HTTPConnection(host, port, timeout=30)
    try:
        conn.request(
            "POST",
            "/get-online-features",
            body=body,
            headers={"content-type": "application/json", **AUTH},
        )
        return conn.getresponse().read()
    finally:
        conn.close()


def url_of(server: ServerProcess) -> tuple[str, int]:
    """Host and port of a server from its readiness URL."""
    match = re.match(r"http://([^:/]+):(\d+)/", server.ready_url)
    assert match is not None
    return match.group(1), int(match.group(2))


# --- load -----------------------------------------------------------------------------


@dataclass
class Latencies:
    """Per-request latencies (ms) of one side over every round, and errors."""

    ms: list[float] = field(default_factory=list)
    round_p50: list[float] = field(default_factory=list)
    round_p99: list[float] = field(default_factory=list)
    seconds: float = 0.0
    #: CPU seconds of the server (of this process, for Feast in process) meanwhile.
    cpu: float = 0.0
    errors: int = 0
    first_error: str = ""

    @property
    def p50(self) -> float:
        """Median over every request."""
        return percentile(self.ms, 50)

    @property
    def p99(self) -> float:
        """99th percentile over every request."""
        return percentile(self.ms, 99)

    @property
    def rps(self) -> float:
        """Requests per second, one at a time."""
        return len(self.ms) / self.seconds if self.seconds else float("nan")

    @property
    def cpu_ms(self) -> float:
        """CPU time per request (ms): steadier than a latency on a shared machine."""
        return self.cpu / len(self.ms) * 1000 if self.ms else float("nan")


def http_round(server: ServerProcess, body: bytes, count: int, samples: Latencies) -> float:
    """``count`` requests one after the other on one keep-alive connection; return p50."""
    host, port = url_of(server)
    conn = http.client.HTTPConnection(host, port, timeout=30)
    headers = {"content-type": "application/json", **AUTH}
    batch: list[float] = []
    cpu_before = server.cpu_seconds()
    started = time.perf_counter()
    try:
        for _ in range(count):
            t0 = time.perf_counter()
            conn.request("POST", "/get-online-features", body=body, headers=headers)
            response = conn.getresponse()
            payload = response.read()
            elapsed = (time.perf_counter() - t0) * 1000
            if response.status != 200:
                samples.errors += 1
                samples.first_error = samples.first_error or payload[:200].decode(errors="replace")
                continue
            batch.append(elapsed)
    finally:
        conn.close()
    samples.seconds += time.perf_counter() - started
    samples.cpu += server.cpu_seconds() - cpu_before
    samples.ms.extend(batch)
    samples.round_p50.append(percentile(batch, 50))
    samples.round_p99.append(percentile(batch, 99))
    return percentile(batch, 50)


def in_process_round(store: Any, entities: list[int], count: int, samples: Latencies) -> float:
    """``count`` calls of Feast's ``get_online_features`` in this process; return p50."""
    batch: list[float] = []
    cpu_before = time.process_time()
    started = time.perf_counter()
    for _ in range(count):
        t0 = time.perf_counter()
        store.get_online_features(features=FEATURES, entity_rows={"driver_id": entities}).to_dict()
        batch.append((time.perf_counter() - t0) * 1000)
    samples.seconds += time.perf_counter() - started
    samples.cpu += time.process_time() - cpu_before
    samples.ms.extend(batch)
    samples.round_p50.append(percentile(batch, 50))
    samples.round_p99.append(percentile(batch, 99))
    return percentile(batch, 50)


@dataclass
class OnlineCase:
    """One shape of online request and the three sides' latencies."""

    name: str
    entities: list[int]
    peer: Latencies = field(default_factory=Latencies)
    ours: Latencies = field(default_factory=Latencies)
    in_process: Latencies = field(default_factory=Latencies)
    #: The bare server's answers of the same bytes (1x10 only): HTTP on this stack alone.
    bare: Latencies = field(default_factory=Latencies)
    pair_ratios: list[float] = field(default_factory=list)

    @property
    def body(self) -> bytes:
        return json.dumps({"entities": {"driver_id": self.entities}, "features": FEATURES}).encode()


def run_online_case(
    case: OnlineCase,
    *,
    peer: ServerProcess,
    ours: ServerProcess,
    store: Any,
    rounds: int,
    requests: int,
    warmup: int,
    bare: ServerProcess | None = None,
) -> None:
    """Warm up, then alternate feast serve and driftloop ``rounds`` times (and, given
    ``bare``, measure the HTTP floor after each round)."""
    body = case.body
    for server in (peer, ours):
        http_round(server, body, warmup, Latencies())
    in_process_round(store, case.entities, warmup, Latencies())

    def report(round_no: int, side: str, figure: float) -> None:
        print(f"  {case.name} round {round_no} {side:>4}: p50 {figure:.2f} ms", flush=True)

    pairs = alternate(
        rounds,
        lambda _r: http_round(peer, body, requests, case.peer),
        lambda _r: http_round(ours, body, requests, case.ours),
        report=report,
    )
    # Latency: lower is better, so the ratio is peer / ours ("x times faster").
    case.pair_ratios = [
        p / o if o else float("nan") for p, o in zip(pairs.peer, pairs.ours, strict=False)
    ]
    for _ in range(rounds):
        in_process_round(store, case.entities, requests, case.in_process)
    if bare is not None:
        http_round(bare, body, warmup, Latencies())
        for _ in range(rounds):
            http_round(bare, body, requests, case.bare)


# --- ingestion ------------------------------------------------------------------------


def ingest_rows(count: int, entities: int, base: datetime) -> list[Any]:
    """``count`` FeatureRows of 10 features for the online store only."""
    from driftloop.common.v1.common_pb2 import Value
    from driftloop.features.v1 import events_pb2 as features

    rows = []
    for i in range(count):
        row = features.FeatureRow(
            push_source=PUSH_SOURCE, entity_columns=["driver_id"], to=features.PUSH_MODE_ONLINE
        )
        row.values["driver_id"].CopyFrom(Value(int64_value=i % entities))
        for f in range(N_FEATURES):
            row.values[f"f{f}"].CopyFrom(Value(double_value=i * 0.001 + f))
        row.event_time.FromDatetime(base + timedelta(microseconds=i))
        rows.append(row)
    return rows


def ingested_total(server: ServerProcess) -> float:
    """The service's ``driftloop_features_rows_ingested_total`` for the bench push source."""
    host, port = url_of(server)
    conn = http.client.HTTPConnection(host, port, timeout=10)
    try:
        conn.request("GET", "/metrics")
        text = conn.getresponse().read().decode()
    finally:
        conn.close()
    pattern = rf'driftloop_features_rows_ingested_total{{push_source="{PUSH_SOURCE}"}} (\S+)'
    match = re.search(pattern, text)
    return float(match.group(1)) if match else 0.0


async def produce_and_wait(
    bootstrap: str, records: Sequence[Any], server: ServerProcess, timeout: float = 300.0
) -> float:
    """Produce ``records`` with a plain aiokafka producer; rows/s until all are ingested."""
    from aiokafka import AIOKafkaProducer
    from aiokafka.partitioner import DefaultPartitioner

    before = ingested_total(server)
    cpu_before = server.cpu_seconds()
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=5, max_batch_size=PRODUCE_BATCH_BYTES
    )
    await producer.start()
    try:
        # The load generator must outrun the service: one ``send`` per record (~50 us of
        # Python each on the shared core) capped the figure near 20,000 rows/s. Records
        # go in batches per partition (``create_batch``/``send_batch``), each to the
        # partition aiokafka's default partitioner gives its key, chosen before the clock.
        topic = records[0].topic
        partitions = sorted(await producer.partitions_for(topic))
        partitioner = DefaultPartitioner()
        by_partition: dict[int, list[Any]] = {}
        for record in records:
            part = partitioner(record.key, partitions, partitions)
            by_partition.setdefault(part, []).append(record)
        started = time.perf_counter()
        sent = []
        for part, chunk in by_partition.items():
            batch = producer.create_batch()
            for record in chunk:
                fields = {"key": record.key, "value": record.value, "headers": record.headers}
                if batch.append(timestamp=None, **fields) is None:  # full: send it
                    batch.close()
                    sent.append(await producer.send_batch(batch, topic, partition=part))
                    batch = producer.create_batch()
                    if batch.append(timestamp=None, **fields) is None:
                        raise RuntimeError("a record larger than a producer batch")
            batch.close()
            sent.append(await producer.send_batch(batch, topic, partition=part))
        await asyncio.gather(*sent)
    finally:
        await producer.stop()
    produced = time.perf_counter() - started
    deadline = started + timeout
    while ingested_total(server) < before + len(records):
        if time.perf_counter() > deadline:
            raise RuntimeError(f"rows not ingested within {timeout:.0f} s")
        await asyncio.sleep(0.1)
    elapsed = time.perf_counter() - started
    cpu = server.cpu_seconds() - cpu_before
    print(
        f"    produced in {produced:.2f} s, ingested in {elapsed:.2f} s; the service's CPU "
        f"{cpu:.2f} s ({cpu / len(records) * 1e6:.0f} us per row)",
        flush=True,
    )
    return len(records) / elapsed


def feast_push_rate(store: Any, rows: Sequence[Any], batch_size: int = 2000) -> float:
    """Rows/s of ``FeatureStore.push`` (online) of ``rows`` as DataFrames of ``batch_size``."""
    import pandas as pd  # type: ignore[import-untyped]
    from feast.data_source import PushMode

    frames = []
    now = datetime.now(UTC)
    for start in range(0, len(rows), batch_size):
        chunk = rows[start : start + batch_size]
        data: dict[str, list[Any]] = {
            "driver_id": [r.values["driver_id"].int64_value for r in chunk]
        }
        for f in range(N_FEATURES):
            data[f"f{f}"] = [r.values[f"f{f}"].double_value for r in chunk]
        data["event_timestamp"] = [r.event_time.ToDatetime(tzinfo=UTC) for r in chunk]
        data["created"] = [now] * len(chunk)
        frames.append(pd.DataFrame(data))
    started = time.perf_counter()
    for frame in frames:
        store.push(PUSH_SOURCE, frame, to=PushMode.ONLINE)
    return len(rows) / (time.perf_counter() - started)


# --- ingestion ceiling ----------------------------------------------------------------

#: The service's batch (``ingest_batch_size``) and fetch wait (``FETCH_MAX_WAIT_MS``).
SERVICE_BATCH = 2000
SERVICE_FETCH_WAIT_MS = 100


@dataclass
class Ceiling:
    """Rates (records or rows per second) of each part of the pipeline alone."""

    records: int = 0
    consume: float = 0.0
    consume_large: float = 0.0
    decode: float = 0.0
    write_ours: float = 0.0
    write_feast: float = 0.0
    kept: int = 0


async def consume_rate(bootstrap: str, **options: Any) -> tuple[float, list[Any]]:
    """Records/s of a raw aiokafka consumer reading ``features.ingest`` from its start to
    its end offsets, doing nothing with them; and the records."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    from driftloop_events.topics import TOPICS

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, **options)
    await consumer.start()
    try:
        # Every partition of the topic (the catalog's count: metadata may lag behind it).
        parts = [TopicPartition(INGEST_TOPIC, p) for p in range(TOPICS[INGEST_TOPIC].partitions)]
        consumer.assign(parts)
        ends = await consumer.end_offsets(parts)
        await consumer.seek_to_beginning(*parts)
        records: list[Any] = []
        batch = options.get("max_poll_records") or SERVICE_BATCH
        started = time.perf_counter()
        # Until every partition is read to its end (offsets need not be contiguous).
        left = {tp for tp in parts if ends[tp] > 0}
        while left:
            if time.perf_counter() - started > 300:
                raise RuntimeError(f"{INGEST_TOPIC} not read to its end in 300 s")
            polled = await consumer.getmany(*left, timeout_ms=1000, max_records=batch)
            for got in polled.values():
                records.extend(got)
            left = {tp for tp in left if await consumer.position(tp) < ends[tp]}
        elapsed = time.perf_counter() - started
    finally:
        await consumer.stop()
    return len(records) / elapsed, records


def decode_rows(records: Sequence[Any], schemas: Any) -> list[dict[str, Any]]:
    """The service's batch decoding of ``records``: validated rows (values by column)."""
    from driftloop.features.v1 import events_pb2 as features
    from driftloop_bus.consumer import delivered
    from driftloop_events.catalog import spec_for
    from driftloop_events.envelope import protobuf_spec
    from driftloop_features.domain.rows import validate_row

    spec = spec_for(features.FeatureRow)
    parse = features.FeatureRow.FromString
    now = datetime.now(UTC)
    rows = []
    for record in records:
        item = delivered(record)
        if item.value is None or protobuf_spec(item.headers) is not spec:
            raise RuntimeError("a bench record the service's fast path would not take")
        rows.append(validate_row(parse(item.value), schemas, now=now).values)
    return rows


def run_ceiling(
    workdir: Path, repo: Path, online_url: str | None, bootstrap: str, core: int | None
) -> Ceiling:
    """Each part of the Kafka -> online pipeline alone, in this process on ``core``."""
    from driftloop_features.adapters import feast_internals
    from driftloop_features.adapters.feast_store import FeastGateway
    from driftloop_features.adapters.online_write import OnlinePlan
    from driftloop_features.settings import FeaturesSettings

    fields: dict[str, Any] = {"home": workdir / "home", "repo_path": repo}
    if online_url:
        fields["online_store_url"] = online_url
    gateway = FeastGateway(FeaturesSettings(**fields))
    gateway.tune_online_store()  # as the service does at start (SQLite: WAL, NORMAL)
    schemas = gateway.push_schemas
    view = gateway.store.get_feature_view(VIEW)
    plan = OnlinePlan.of(view)
    assert plan is not None
    provider = feast_internals.provider(gateway.store)
    before = os.sched_getaffinity(0)
    if core is not None:
        os.sched_setaffinity(0, {core})  # the service's core; the service is idle
    result = Ceiling()
    try:
        result.consume, records = asyncio.run(
            consume_rate(
                bootstrap,
                max_poll_records=SERVICE_BATCH,
                fetch_max_wait_ms=SERVICE_FETCH_WAIT_MS,
            )
        )
        result.records = len(records)
        result.consume_large, _ = asyncio.run(
            consume_rate(
                bootstrap,
                max_poll_records=20_000,
                fetch_max_wait_ms=SERVICE_FETCH_WAIT_MS,
                max_partition_fetch_bytes=16 * 1024 * 1024,
                fetch_max_bytes=64 * 1024 * 1024,
            )
        )
        started = time.perf_counter()
        rows = decode_rows(records, schemas)
        result.decode = len(rows) / (time.perf_counter() - started)
        del records
        chunks = [rows[i : i + SERVICE_BATCH] for i in range(0, len(rows), SERVICE_BATCH)]
        started = time.perf_counter()
        for chunk in chunks:
            result.kept += gateway.write_online_rows(PUSH_SOURCE, chunk)
        result.write_ours = len(rows) / (time.perf_counter() - started)
        config = gateway.store.config
        started = time.perf_counter()
        for chunk in chunks:
            provider.online_write_batch(config, view, plan.protos(chunk), progress=None)
        result.write_feast = len(rows) / (time.perf_counter() - started)
    finally:
        os.sched_setaffinity(0, before)
        gateway.close()
    return result


def print_ceiling(ceiling: Ceiling, pipeline: Sequence[float], online: str) -> str:
    """The ceiling figures beside the pipeline's; its summary line."""
    pipeline_rate = median(pipeline) if pipeline else float("nan")
    per_batch = ceiling.kept / max(1, -(-ceiling.records // SERVICE_BATCH))
    print(
        f"\ningestion ceiling ({online}; {ceiling.records:,} records, in process, each part alone):"
    )
    parts = [
        (f"(a) raw aiokafka consume, max_poll_records {SERVICE_BATCH}", ceiling.consume),
        ("(a') raw aiokafka consume, 20,000 records / 16 MB fetches", ceiling.consume_large),
        ("(b) decode + validate to rows (no Kafka, no store)", ceiling.decode),
        (
            f"(c) driftloop online write ({online}, {per_batch:,.0f} entities kept per batch)",
            ceiling.write_ours,
        ),
        (f"(c') Feast online_write_batch ({online}, same rows)", ceiling.write_feast),
    ]
    for label, rate in parts:
        print(
            f"  {label:<66} {rate:>10,.0f} /s  ({1e6 / rate if rate else float('nan'):.1f} us each)"
        )
    # Parts in series on one core: their times per row add up.
    serial = 1 / sum(1 / r for r in (ceiling.consume, ceiling.decode, ceiling.write_ours) if r)
    for label, rate in (
        ("(a)+(b)+(c) in series on one core (times per row added)", serial),
        ("the pipeline, Kafka -> online store (median of the rounds above)", pipeline_rate),
    ):
        print(f"  {label:<66} {rate:>10,.0f} /s")
    return (
        f"features ingestion ceiling {online}: consume {ceiling.consume:,.0f} | decode "
        f"{ceiling.decode:,.0f} | write {ceiling.write_ours:,.0f} (Feast's "
        f"{ceiling.write_feast:,.0f}) | in series {serial:,.0f} | pipeline {pipeline_rate:,.0f} "
        f"rows/s (the service runs them in series on one core; target {INGEST_TARGET:,})"
    )


# --- report ---------------------------------------------------------------------------


def _ms(value: float) -> str:
    return f"{value:.2f} ms"


def print_case(case: OnlineCase) -> None:
    """The figures of one online case."""
    load = " / ".join(f"{value:.2f}" for value in os.getloadavg())
    print(
        f"\nonline {case.name} ({len(case.entities)} entities x {N_FEATURES} features; "
        f"load average {load} at the end):"
    )
    for label, samples in (
        (f"feast serve {FEAST_VERSION}", case.peer),
        ("driftloop features", case.ours),
        ("Feast in process", case.in_process),
    ):
        print(
            f"  {label:<22} p50 {_ms(samples.p50):>10}  p99 {_ms(samples.p99):>10}  "
            f"(median of round p99s {_ms(median(samples.round_p99))})  "
            f"{samples.rps:8.0f} req/s  CPU {samples.cpu_ms:.2f} ms/req  errors {samples.errors}"
            + (f" ({samples.first_error})" if samples.first_error else "")
        )
    print(
        "  per-round p50 ratios feast serve / driftloop: "
        + ", ".join(f"{r:.2f}" for r in case.pair_ratios)
    )
    if case.bare.ms:
        floor = case.bare.p50 + case.in_process.p50
        print(
            f"  HTTP floor: bare uvicorn p50 {_ms(case.bare.p50)} p99 {_ms(case.bare.p99)} "
            f"(CPU {case.bare.cpu_ms:.2f} ms/req) + Feast's read in process p50 "
            f"{_ms(case.in_process.p50)} = {_ms(floor)}; targets at p50: <= 2x Feast in "
            f"process = {_ms(2 * case.in_process.p50)}, >= 3x feast serve = "
            f"{_ms(case.peer.p50 / 3)}; driftloop {_ms(case.ours.p50)}, "
            f"{case.ours.p50 - floor:+.2f} ms over the floor"
        )


def summary(case: OnlineCase) -> str:
    """One summary line for an online case."""
    ratio = case.peer.p50 / case.ours.p50 if case.ours.p50 else float("nan")
    return (
        summary_line(
            f"features online {case.name}",
            ours=f"p50 {_ms(case.ours.p50)} p99 {_ms(case.ours.p99)}",
            peer=(
                f"feast serve p50 {_ms(case.peer.p50)} p99 {_ms(case.peer.p99)} | "
                f"Feast in process p50 {_ms(case.in_process.p50)} p99 {_ms(case.in_process.p99)}"
            ),
            ratio=ratio,
            target=(
                f"driftloop p99 <= {P99_TARGET_MS:g} ms" if case.name.startswith("1x10") else None
            ),
        )
        + " (ratio = feast serve p50 / driftloop p50)"
    )


# --- main -----------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--requests",
        type=int,
        default=2000,
        help="1x10 requests per side per round (100x10: a quarter of it)",
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--entities", type=int, default=1000, help="entities in the store")
    parser.add_argument("--rows", type=int, default=50_000, help="rows per ingestion round")
    parser.add_argument(
        "--stores",
        default="sqlite",
        help="online stores to run on, comma-separated: sqlite, redis (default: sqlite)",
    )
    parser.add_argument(
        "--redis-url",
        default="redis://127.0.0.1:6379/13",
        help="the Redis online store for --stores redis (its keys are overwritten)",
    )
    parser.add_argument(
        "--only",
        choices=["all", "online", "ingestion", "ceiling"],
        default="all",
        help=(
            "run only the online retrieval, only the ingestion rounds, or the ingestion "
            "rounds and the ceiling of each of their parts"
        ),
    )
    parser.add_argument("--no-pin", action="store_true", help="do not pin to cores")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    return parser.parse_args(argv)


@contextlib.contextmanager
def _workdir(keep: bool) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="driftloop-bench-features-"))
    try:
        yield path
    finally:
        if keep:
            print(f"work folder kept: {path}")
        else:
            shutil.rmtree(path, ignore_errors=True)


def seed_online(server: ServerProcess, entities: int) -> None:
    """Push one row per entity to the online store through the service."""
    host, port = url_of(server)
    now = datetime.now(UTC)
    for start in range(0, entities, 1000):
        ids = list(range(start, min(start + 1000, entities)))
        df: dict[str, list[Any]] = {"driver_id": ids}
        for f in range(N_FEATURES):
            df[f"f{f}"] = [i * 0.01 + f for i in ids]
        df["event_timestamp"] = [now.isoformat()] * len(ids)
        df["created"] = [now.isoformat()] * len(ids)
        body = json.dumps({"push_source_name": PUSH_SOURCE, "df": df, "to": "online_and_offline"})
        conn = http.client.HTTPConnection(host, port, timeout=60)
        try:
            conn.request(
                "POST", "/push", body=body, headers={"content-type": "application/json", **AUTH}
            )
            response = conn.getresponse()
            if response.status != 200:
                raise RuntimeError(f"seeding failed: {response.status} {response.read()[:300]!r}")
            response.read()
        finally:
            conn.close()


def main(argv: Sequence[str] | None = None) -> None:
    """Run the benchmark and print its figures."""
    args = parse_args(argv)
    pinned = "not pinned (--no-pin)" if args.no_pin else pin_this_process(LOADGEN_CORE)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    server_core = None if args.no_pin else SERVER_CORE
    print("features benchmark: online retrieval vs feast serve and Feast in process; ingestion")
    print(environment_line())
    print(f"feast serve {FEAST_VERSION}: virtual environment {FEAST_VENV} ...", flush=True)
    started = time.perf_counter()
    bin_dir = ensure_venv(
        FEAST_VENV, f"feast=={FEAST_VERSION}", distribution="feast", version=FEAST_VERSION
    )
    print(f"  ready in {time.perf_counter() - started:.1f} s: {bin_dir / 'feast'}")
    print(
        f"load generator and Feast in process: this process, {pinned}; servers: "
        f"{' '.join(taskset_prefix(server_core)) or 'not pinned'}, one worker each"
    )
    stores = [name.strip() for name in args.stores.split(",") if name.strip()]
    unknown = sorted(set(stores) - {"sqlite", "redis"})
    if unknown:
        raise SystemExit(f"unknown online store(s): {', '.join(unknown)}")
    if "redis" in stores:  # feast serve's Redis store needs Feast's redis extra
        ensure_venv(FEAST_VENV, f"redis=={REDIS_PY}", distribution="redis", version=REDIS_PY)
    lines: list[str] = []
    for online in stores:
        print(f"\n=== online store: {online}", flush=True)
        lines += run_store(args, online, bin_dir, server_core)
    print()
    for line in lines:
        print(line)


def run_store(
    args: argparse.Namespace, online: str, bin_dir: Path, server_core: int | None
) -> list[str]:
    """Every part of the benchmark on one online store; its summary lines."""
    from driftloop_bus.embedded import EmbeddedBroker

    @dataclass
    class PinnedBroker(EmbeddedBroker):
        core: int | None = None

        def command(self) -> list[str]:
            return [*taskset_prefix(self.core), *super().command()]

    online_url = args.redis_url if online == "redis" else None
    with _workdir(args.keep) as workdir, ExitStack() as stack:
        repo = workdir / "repo"
        repo.mkdir()
        (repo / "bench_repo.py").write_text(BENCH_REPO)
        # The broker shares the load generator's core: the service's core is for the service.
        broker = stack.enter_context(PinnedBroker(core=None if args.no_pin else LOADGEN_CORE))
        ours = driftloop_server(workdir, repo, broker.bootstrap_servers, server_core, online_url)
        stack.callback(ours.stop)
        ours.start(timeout=180)
        print(f"driftloop features: {ours.ready_url} ({' '.join(ours.full_command[:4])} ...)")
        seed_online(ours, args.entities)

        from feast import FeatureStore

        store = FeatureStore(repo_path=str(repo))
        cases: list[OnlineCase] = []
        if args.only in ("all", "online"):
            peer = feast_server(bin_dir, workdir, repo, server_core)
            stack.callback(peer.stop)
            peer.start(timeout=180)
            print(f"feast serve: {peer.ready_url}", flush=True)
            cases = [
                OnlineCase(f"1x10 {online}", [7]),
                OnlineCase(f"100x10 {online}", list(range(100, 200))),
            ]
            bare = bare_server(workdir, answer_of(ours, cases[0].body), server_core)
            stack.callback(bare.stop)
            bare.start(timeout=60)
            for case in cases:
                # 100-entity reads take ~10x longer: a quarter of the requests keeps it short.
                requests = (
                    args.requests if len(case.entities) == 1 else max(100, args.requests // 4)
                )
                print(f"\nonline {case.name}: {args.rounds} rounds x {requests} requests per side")
                run_online_case(
                    case,
                    peer=peer,
                    ours=ours,
                    store=store,
                    rounds=args.rounds,
                    requests=requests,
                    warmup=args.warmup,
                    bare=bare if len(case.entities) == 1 else None,
                )
            peer.stop()  # the ingestion rounds do not need it
            bare.stop()
        ours_rates: list[float] = []
        peer_rates: list[float] = []
        if args.only in ("all", "ingestion", "ceiling"):
            ours_rates, peer_rates = run_ingestion(args, store, broker.bootstrap_servers, ours)
        lines = print_report(cases, ours_rates, peer_rates, online)
        if args.only in ("all", "ceiling"):
            core = None if args.no_pin else server_core
            ceiling = run_ceiling(workdir, repo, online_url, broker.bootstrap_servers, core)
            lines.append(print_ceiling(ceiling, ours_rates, online))
        return lines


def run_ingestion(
    args: argparse.Namespace, store: Any, bootstrap: str, ours: ServerProcess
) -> tuple[list[float], list[float]]:
    """Alternate Feast's in-process push and driftloop's Kafka ingestion; rows/s of each."""
    from driftloop_events.envelope import CloudEvent, to_record

    print(f"\ningestion: {args.rounds} rounds x {args.rows} rows (10 features, online)")
    base = datetime.now(UTC)
    ours_rates: list[float] = []
    peer_rates: list[float] = []
    for round_no in range(1, args.rounds + 1):
        rows = ingest_rows(args.rows, args.entities, base + timedelta(seconds=round_no))
        peer_rates.append(feast_push_rate(store, rows))
        print(f"  round {round_no} Feast push in process: {peer_rates[-1]:,.0f} rows/s")
        records = [to_record(CloudEvent.new(row)) for row in rows]
        ours_rates.append(asyncio.run(produce_and_wait(bootstrap, records, ours)))
        print(f"  round {round_no} driftloop Kafka ingestion: {ours_rates[-1]:,.0f} rows/s")
    return ours_rates, peer_rates


def print_report(
    cases: Sequence[OnlineCase],
    ours_rates: Sequence[float],
    peer_rates: Sequence[float],
    online: str,
) -> list[str]:
    """Every figure of one online store; its summary lines (printed at the end)."""
    print()
    for case in cases:
        print_case(case)
    lines = [summary(case) for case in cases]
    if not ours_rates:
        return lines
    print(f"\ningestion rows/s ({online}):")
    print(f"  driftloop Kafka -> online store  {', '.join(f'{r:,.0f}' for r in ours_rates)}")
    print(f"  Feast push in process (no Kafka) {', '.join(f'{r:,.0f}' for r in peer_rates)}")
    ours_rate, peer_rate = median(ours_rates), median(peer_rates)
    lines.append(
        summary_line(
            f"features ingestion {online}",
            ours=f"{ours_rate:,.0f} rows/s (Kafka -> online store)",
            peer=f"Feast push in process {peer_rate:,.0f} rows/s",
            ratio=ours_rate / peer_rate if peer_rate else float("nan"),
            target=f"driftloop >= {INGEST_TARGET:,} rows/s",
        )
    )
    return lines


if __name__ == "__main__":
    main()
