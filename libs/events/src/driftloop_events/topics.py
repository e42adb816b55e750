"""The Kafka topics of driftloop, declared once.

The bus creates them at start-up when missing and ``deploy/`` mirrors them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

_DAY_MS = 24 * 60 * 60 * 1000

DLQ_SUFFIX = ".dlq"
DLQ_PARTITIONS = 1
DLQ_RETENTION_MS = 14 * _DAY_MS


@dataclass(frozen=True)
class TopicSpec:
    """How one topic is created.

    Attributes:
        name: Topic name, e.g. ``"registry.models"``.
        partitions: Partition count; the upper bound of a consumer group's parallelism.
        retention_ms: How long records are kept, in milliseconds (topic ``retention.ms``).
        description: What flows on the topic, for docs and ``driftloop topics``.
        cleanup_policy: Kafka ``cleanup.policy``: ``"delete"`` or ``"compact"``.
    """

    name: str
    partitions: int
    retention_ms: int
    description: str
    cleanup_policy: str = "delete"

    def config(self) -> dict[str, str]:
        """Return the topic-level Kafka configs, e.g. for an admin ``NewTopic``."""
        return {"retention.ms": str(self.retention_ms), "cleanup.policy": self.cleanup_policy}


def _topics(*specs: TopicSpec) -> Mapping[str, TopicSpec]:
    return MappingProxyType({spec.name: spec for spec in specs})


TOPICS: Mapping[str, TopicSpec] = _topics(
    TopicSpec(
        name="tracking.runs",
        partitions=3,
        retention_ms=7 * _DAY_MS,
        description="Run lifecycle events from tracking (run.created, run.finished); key run id.",
    ),
    TopicSpec(
        name="registry.models",
        partitions=3,
        retention_ms=7 * _DAY_MS,
        description=(
            "Model version and alias events from the registry (model_version.*, alias.*); "
            "key model name."
        ),
    ),
    TopicSpec(
        name="features.ingest",
        partitions=6,
        retention_ms=7 * _DAY_MS,
        description="Feature rows pushed for ingestion (row.pushed); key entity key.",
    ),
    TopicSpec(
        name="features.events",
        partitions=3,
        retention_ms=7 * _DAY_MS,
        description=(
            "Feature store outcomes (ingested, materialized); key push source or feature view."
        ),
    ),
    TopicSpec(
        name="trainer.jobs",
        partitions=3,
        retention_ms=7 * _DAY_MS,
        description="Training job lifecycle (training.*); key model name.",
    ),
    TopicSpec(
        name="trainer.models",
        partitions=3,
        retention_ms=-1,
        description=(
            "Model documents as applied (model.declared), compacted: the latest revision "
            "of every model stays; key model name."
        ),
        cleanup_policy="compact",
    ),
    TopicSpec(
        name="predictions",
        partitions=6,
        retention_ms=3 * _DAY_MS,
        description="Every prediction request and answer from serving; key model name.",
    ),
    TopicSpec(
        name="labels",
        partitions=6,
        retention_ms=3 * _DAY_MS,
        description=(
            "Ground truth for earlier predictions (label.recorded); key model name (the "
            "request id when a label names no model)."
        ),
    ),
    TopicSpec(
        name="monitor.alerts",
        partitions=3,
        retention_ms=7 * _DAY_MS,
        description=(
            "Drift and performance alerts from the monitor (drift.*, performance.*); "
            "key model name."
        ),
    ),
)


def dlq_topic(topic: str) -> str:
    """Return the dead-letter topic of ``topic``, e.g. ``"predictions.dlq"``."""
    return f"{topic}{DLQ_SUFFIX}"


def all_topics(include_dlq: bool = True) -> list[TopicSpec]:
    """Return every topic to create, each main topic followed by its dead-letter topic.

    Args:
        include_dlq: Also return one dead-letter topic per main topic
            (1 partition, 14 days retention).
    """
    specs: list[TopicSpec] = []
    for spec in TOPICS.values():
        specs.append(spec)
        if include_dlq:
            specs.append(dlq_spec(spec.name))
    return specs


def dlq_spec(topic: str) -> TopicSpec:
    """Return the declaration of ``topic``'s dead-letter topic (1 partition, 14 days)."""
    return TopicSpec(
        name=dlq_topic(topic),
        partitions=DLQ_PARTITIONS,
        retention_ms=DLQ_RETENTION_MS,
        description=f"Records from {topic} that could not be handled.",
    )
