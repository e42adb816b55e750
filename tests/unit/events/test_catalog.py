"""The event catalog: complete examples, consistent topics, keys and subjects."""

from __future__ import annotations

from typing import Any

import pytest

from driftloop.common.v1.common_pb2 import Value
from driftloop.features.v1.events_pb2 import FeatureRow
from driftloop.monitor.v1.events_pb2 import DriftDetected
from driftloop.registry.v1.events_pb2 import AliasSet
from driftloop_events.catalog import CATALOG, EventSpec, entity_key, spec_for, topic_events
from driftloop_events.codegen import descriptor_set
from driftloop_events.envelope import JSON, PROTOBUF, CloudEvent, from_record, to_record
from driftloop_events.errors import UnknownEventType
from driftloop_events.topics import TOPICS

from .strategies import unset_fields

pytestmark = pytest.mark.unit

SPECS = sorted(CATALOG.values(), key=lambda spec: spec.type)
SPEC_IDS = [spec.type for spec in SPECS]

EXPECTED_TYPES = {
    "driftloop.tracking.run.created": "tracking.runs",
    "driftloop.tracking.run.finished": "tracking.runs",
    "driftloop.registry.model_version.created": "registry.models",
    "driftloop.registry.model_version.updated": "registry.models",
    "driftloop.registry.alias.set": "registry.models",
    "driftloop.registry.alias.deleted": "registry.models",
    "driftloop.features.row.pushed": "features.ingest",
    "driftloop.features.ingested": "features.events",
    "driftloop.features.materialized": "features.events",
    "driftloop.trainer.training.requested": "trainer.jobs",
    "driftloop.trainer.training.started": "trainer.jobs",
    "driftloop.trainer.training.completed": "trainer.jobs",
    "driftloop.trainer.training.failed": "trainer.jobs",
    "driftloop.trainer.training.escalated": "trainer.jobs",
    "driftloop.trainer.model.declared": "trainer.models",
    "driftloop.serving.prediction.logged": "predictions",
    "driftloop.monitor.label.recorded": "labels",
    "driftloop.monitor.drift.detected": "monitor.alerts",
    "driftloop.monitor.drift.cleared": "monitor.alerts",
    "driftloop.monitor.performance.degraded": "monitor.alerts",
    "driftloop.monitor.performance.recovered": "monitor.alerts",
}


def test_catalog_holds_exactly_the_contracted_event_types_on_their_topics() -> None:
    assert {spec.type: spec.topic for spec in CATALOG.values()} == EXPECTED_TYPES


@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
def test_event_type_source_and_message_belong_to_the_same_domain(spec: EventSpec[Any]) -> None:
    domain = spec.type.split(".")[1]

    assert spec.type.startswith("driftloop.")
    assert spec.message_name.startswith(f"driftloop.{domain}.v1.")
    assert spec.source == f"/driftloop/{domain}"


@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
def test_every_example_sets_every_field(spec: EventSpec[Any]) -> None:
    example = spec.example()

    assert unset_fields([example], example.DESCRIPTOR) == []


def test_the_completeness_check_notices_an_unset_field() -> None:
    example = CATALOG["driftloop.registry.alias.set"].example()
    example.ClearField("previous_version")
    example.cause.ClearField("source")

    assert unset_fields([example], example.DESCRIPTOR) == ["previous_version", "cause.source"]


def test_every_message_in_the_events_files_is_an_event_or_used_by_one() -> None:
    # A top-level message nobody references is dead contract: catch it early.
    fds = descriptor_set(include_source_info=False)
    events_files = [f for f in fds.file if f.name.endswith("/events.proto")]
    referenced = {
        field.type_name.lstrip(".")
        for file in fds.file
        for message in file.message_type
        for field in message.field
        if field.type_name
    }
    catalogued = {spec.message_name for spec in CATALOG.values()}

    for file in events_files:
        for message in file.message_type:
            full_name = f"{file.package}.{message.name}"
            assert full_name in catalogued | referenced, f"{full_name} is not used"


@pytest.mark.parametrize("content_type", [PROTOBUF, JSON])
@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
def test_every_example_round_trips_through_the_envelope(
    spec: EventSpec[Any], content_type: str
) -> None:
    event = CloudEvent.new(spec.example())

    record = to_record(event, content_type=content_type)
    decoded = from_record(record.value, record.headers)

    assert decoded == event
    assert record.topic == spec.topic
    assert record.key.decode() == spec.key(event.data) != ""
    assert event.subject == spec.subject(event.data) != ""


@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
def test_spec_for_finds_the_same_spec_by_type_class_and_instance(spec: EventSpec[Any]) -> None:
    assert spec_for(spec.type) is spec
    assert spec_for(spec.message) is spec
    assert spec_for(spec.example()) is spec


def test_spec_for_an_unknown_type_raises_unknown_event_type() -> None:
    with pytest.raises(UnknownEventType, match=r"driftloop\.nope\.happened"):
        spec_for("driftloop.nope.happened")


def test_spec_for_a_message_that_is_not_an_event_raises_unknown_event_type() -> None:
    with pytest.raises(UnknownEventType, match=r"driftloop\.common\.v1\.Value"):
        spec_for(Value)


def test_an_event_spec_on_an_undeclared_topic_is_refused() -> None:
    with pytest.raises(ValueError, match="undeclared topic 'nowhere'"):
        EventSpec[AliasSet](
            type="driftloop.registry.alias.moved",
            message=AliasSet,
            topic="nowhere",
            source="/driftloop/registry",
            key=lambda m: m.name,
            subject=lambda m: m.name,
            example=AliasSet,
        )


def test_every_topic_carries_at_least_one_event_type() -> None:
    for topic in TOPICS:
        assert topic_events(topic), topic


def test_entity_key_joins_entity_values_sorted_by_column_name() -> None:
    row = FeatureRow(
        push_source="stores_push",
        entity_columns=["store_id", "region"],
        values={
            "store_id": Value(int64_value=17),
            "region": Value(string_value="eu"),
            "sales": Value(double_value=12.5),
        },
    )

    assert entity_key(row) == "eu|17"


def test_entity_key_renders_integral_doubles_like_integers_and_missing_as_empty() -> None:
    row = FeatureRow(
        entity_columns=["a", "b", "c"],
        values={"a": Value(double_value=1001.0), "b": Value(bool_value=False)},
    )

    assert entity_key(row) == "1001|false|"


def test_entity_key_of_a_row_without_entity_columns_is_its_push_source() -> None:
    assert entity_key(FeatureRow(push_source="driver_stats_push")) == "driver_stats_push"


def test_subject_escapes_slashes_in_names() -> None:
    event = CloudEvent.new(AliasSet(name="team/iris", alias="champion", version=1))

    assert event.subject == "models/team%2Firis/aliases/champion"
    assert event.key == "team/iris"


def test_monitor_alerts_are_keyed_by_model_name_and_subject_names_the_version() -> None:
    spec = spec_for(DriftDetected)
    example = spec.example()

    assert spec.key(example) == "iris-classifier"
    assert spec.subject(example) == "models/iris-classifier/versions/3"
