"""Topic declarations: names, partitions, retention and dead-letter topics."""

from __future__ import annotations

import pytest

from driftloop_events.topics import TOPICS, TopicSpec, all_topics, dlq_topic

pytestmark = pytest.mark.unit

DAY_MS = 86_400_000


def test_the_nine_topics_are_declared_with_their_partitions_and_retention() -> None:
    assert {name: (spec.partitions, spec.retention_ms) for name, spec in TOPICS.items()} == {
        "tracking.runs": (3, 7 * DAY_MS),
        "registry.models": (3, 7 * DAY_MS),
        "features.ingest": (6, 7 * DAY_MS),
        "features.events": (3, 7 * DAY_MS),
        "trainer.jobs": (3, 7 * DAY_MS),
        "trainer.models": (3, -1),
        "predictions": (6, 3 * DAY_MS),
        "labels": (6, 3 * DAY_MS),
        "monitor.alerts": (3, 7 * DAY_MS),
    }


def test_every_topic_is_keyed_by_its_own_name_and_described() -> None:
    for name, spec in TOPICS.items():
        assert spec.name == name
        assert spec.description
        # Model documents are kept for ever, the latest per model; events are deleted.
        expected = "compact" if name == "trainer.models" else "delete"
        assert spec.cleanup_policy == expected


def test_dlq_topic_appends_the_dlq_suffix() -> None:
    assert dlq_topic("predictions") == "predictions.dlq"


def test_all_topics_adds_one_single_partition_two_week_dlq_per_topic() -> None:
    specs = all_topics()
    by_name = {spec.name: spec for spec in specs}

    assert len(specs) == 2 * len(TOPICS)
    for name in TOPICS:
        dlq = by_name[dlq_topic(name)]
        assert (dlq.partitions, dlq.retention_ms) == (1, 14 * DAY_MS)
        assert name in dlq.description


def test_all_topics_without_dlq_is_just_the_declared_topics() -> None:
    assert all_topics(include_dlq=False) == list(TOPICS.values())


def test_topic_config_gives_kafka_retention_and_cleanup_policy() -> None:
    spec = TopicSpec(name="t", partitions=1, retention_ms=1000, description="d")

    assert spec.config() == {"retention.ms": "1000", "cleanup.policy": "delete"}


def test_the_topic_table_cannot_be_modified() -> None:
    with pytest.raises(TypeError):
        TOPICS["x"] = TOPICS["labels"]  # type: ignore[index]
