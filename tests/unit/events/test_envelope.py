"""The CloudEvents Kafka envelope: round trips for every event type, and every error."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from google.protobuf import json_format
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from driftloop.registry.v1.events_pb2 import AliasSet
from driftloop_events.catalog import CATALOG, EventSpec
from driftloop_events.envelope import (
    JSON,
    PROTOBUF,
    CloudEvent,
    EnvelopeError,
    InvalidHeader,
    KafkaRecord,
    MissingHeader,
    UndecodablePayload,
    UnknownEventType,
    UnsupportedContentType,
    from_record,
    protobuf_spec,
    to_record,
)

from .strategies import datetimes_any_offset, messages

pytestmark = pytest.mark.unit

SPECS = sorted(CATALOG.values(), key=lambda spec: spec.type)
SPEC_IDS = [spec.type for spec in SPECS]

_header_text = st.text(min_size=1, max_size=40)
_PROPERTY_SETTINGS = settings(
    max_examples=75, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def _events(spec: EventSpec[Any]) -> st.SearchStrategy[CloudEvent[Any]]:
    return st.builds(
        CloudEvent,
        id=_header_text,
        source=_header_text,
        type=st.just(spec.type),
        time=datetimes_any_offset(),
        subject=st.none() | st.text(max_size=40),
        data=messages(spec.message.DESCRIPTOR),
    )


def _headers(record: KafkaRecord) -> dict[str, str]:
    return {name: value.decode() for name, value in record.headers}


def _example_record(content_type: str = PROTOBUF) -> KafkaRecord:
    event = CloudEvent.new(CATALOG["driftloop.registry.alias.set"].example())
    return to_record(event, content_type=content_type)


def _without(record: KafkaRecord, header: str) -> list[tuple[str, bytes]]:
    return [(name, value) for name, value in record.headers if name != header]


def _replaced(record: KafkaRecord, header: str, value: bytes) -> list[tuple[str, bytes]]:
    return [*_without(record, header), (header, value)]


# --- round trips ----------------------------------------------------------------------


@pytest.mark.parametrize("content_type", [PROTOBUF, JSON])
@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
def test_every_event_type_round_trips_through_a_kafka_record(
    spec: EventSpec[Any], content_type: str
) -> None:
    @_PROPERTY_SETTINGS
    @given(event=_events(spec))
    def round_trip(event: CloudEvent[Any]) -> None:
        record = to_record(event, content_type=content_type)
        decoded = from_record(record.value, record.headers)

        assert decoded == event
        assert decoded.data == event.data
        assert record.topic == spec.topic
        assert record.key == spec.key(event.data).encode()
        headers = _headers(record)
        assert headers["ce_specversion"] == "1.0"
        assert headers["ce_type"] == spec.type
        assert headers["ce_id"] == event.id
        assert headers["ce_source"] == event.source
        assert headers["content-type"] == content_type
        assert headers["ce_dataschema"] == spec.message.DESCRIPTOR.full_name
        assert headers.get("ce_subject") == event.subject
        assert datetime.fromisoformat(headers["ce_time"]) == event.time
        assert headers["ce_time"].endswith("Z")

    round_trip()


@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
def test_json_with_snake_case_field_names_decodes_to_the_same_payload(
    spec: EventSpec[Any],
) -> None:
    @_PROPERTY_SETTINGS
    @given(data=messages(spec.message.DESCRIPTOR))
    def decode_snake_case(data: Any) -> None:
        record = to_record(CloudEvent.new(data), content_type=JSON)
        snake = json_format.MessageToDict(data, preserving_proto_field_name=True)

        decoded = from_record(json.dumps(snake).encode(), record.headers)

        assert decoded.data == data

    decode_snake_case()


@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
def test_json_value_uses_camel_case_proto3_field_names(spec: EventSpec[Any]) -> None:
    example = spec.example()
    record = to_record(CloudEvent.new(example), content_type=JSON)

    body = json.loads(record.value)

    assert body == json_format.MessageToDict(example)
    assert all("_" not in name for name in body)


def test_protobuf_value_is_the_deterministic_serialization() -> None:
    example = CATALOG["driftloop.registry.model_version.created"].example()

    record = to_record(CloudEvent.new(example))

    assert record.value == example.SerializeToString(deterministic=True)


def test_new_fills_type_source_subject_id_and_time_from_the_catalog() -> None:
    before = datetime.now(UTC)
    event = CloudEvent.new(AliasSet(name="iris", alias="champion", version=4))

    assert event.type == "driftloop.registry.alias.set"
    assert event.source == "/driftloop/registry"
    assert event.subject == "models/iris/aliases/champion"
    assert event.key == "iris"
    assert event.topic == "registry.models"
    assert before <= event.time <= datetime.now(UTC)
    assert event.time.tzinfo is not None
    assert len(event.id) == 36
    assert CloudEvent.new(event.data).id != event.id


def test_new_keeps_explicit_source_subject_id_and_time() -> None:
    moment = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)

    event = CloudEvent.new(
        AliasSet(name="iris"), source="/custom", subject="s", id="outbox-17", time=moment
    )

    assert (event.source, event.subject, event.id, event.time) == (
        "/custom",
        "s",
        "outbox-17",
        moment,
    )


def test_an_event_with_a_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        CloudEvent.new(AliasSet(name="iris"), time=datetime(2025, 3, 1, 12, 0))


def test_to_record_honours_an_explicit_topic() -> None:
    record = to_record(CloudEvent.new(AliasSet(name="iris")), topic="registry.models.dlq")

    assert record.topic == "registry.models.dlq"


def test_to_record_refuses_a_payload_that_does_not_match_the_type() -> None:
    event = CloudEvent(
        id="1",
        source="/x",
        type="driftloop.registry.alias.deleted",
        time=datetime.now(UTC),
        subject=None,
        data=AliasSet(name="iris"),
    )

    with pytest.raises(TypeError, match=r"driftloop\.registry\.v1\.AliasDeleted"):
        to_record(event)


def test_to_record_refuses_an_unknown_content_type() -> None:
    with pytest.raises(UnsupportedContentType):
        to_record(CloudEvent.new(AliasSet(name="iris")), content_type="text/plain")


def test_ce_time_is_written_in_utc_whatever_the_offset() -> None:
    moment = datetime(2025, 3, 1, 14, 0, 0, 250000, tzinfo=timezone(timedelta(hours=2)))

    record = to_record(CloudEvent.new(AliasSet(name="iris"), time=moment))

    assert _headers(record)["ce_time"] == "2025-03-01T12:00:00.250000Z"


# --- lenient decoding -----------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json; charset=utf-8",
        "Application/JSON",
        " application/json ;charset=UTF-8",
    ],
)
def test_content_type_with_parameters_or_other_casing_is_accepted(content_type: str) -> None:
    record = _example_record(JSON)

    event = from_record(record.value, _replaced(record, "content-type", content_type.encode()))

    assert event.data == CATALOG["driftloop.registry.alias.set"].example()


def test_content_type_header_name_is_matched_in_any_case() -> None:
    record = _example_record(JSON)
    headers = [*_without(record, "content-type"), ("Content-Type", b"application/json")]

    assert from_record(record.value, headers).data.name == "iris-classifier"


def test_x_protobuf_content_type_alias_is_accepted() -> None:
    record = _example_record()
    headers = _replaced(record, "content-type", b"application/x-protobuf")

    assert from_record(record.value, headers).data.version == 4


def test_unknown_json_fields_are_ignored_for_forward_compatibility() -> None:
    record = _example_record(JSON)
    body = json.loads(record.value)
    body["fieldFromTheFuture"] = {"nested": [1, 2]}

    event = from_record(json.dumps(body).encode(), record.headers)

    assert event.data == CATALOG["driftloop.registry.alias.set"].example()


def test_unknown_protobuf_fields_are_ignored_for_forward_compatibility() -> None:
    record = _example_record()
    # Field 999, wire type 2 (length-delimited), 3 bytes: what a newer producer may add.
    future_field = bytes([0xBA, 0x3E, 0x03]) + b"new"

    event = from_record(record.value + future_field, record.headers)

    assert event.data.name == "iris-classifier"
    assert event.data.version == 4


def test_ce_time_with_an_offset_or_lowercase_letters_is_parsed() -> None:
    record = _example_record()

    with_offset = from_record(
        record.value, _replaced(record, "ce_time", b"2025-03-01T14:00:00+02:00")
    )
    lowercase = from_record(record.value, _replaced(record, "ce_time", b"2025-03-01t12:00:00z"))

    expected = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    assert with_offset.time == expected
    assert lowercase.time == expected


def test_subject_and_dataschema_are_optional() -> None:
    record = _example_record()
    headers = [
        (name, value)
        for name, value in record.headers
        if name not in {"ce_subject", "ce_dataschema"}
    ]

    event = from_record(record.value, headers)

    assert event.subject is None
    assert event.data.alias == "champion"


def test_foreign_headers_are_ignored() -> None:
    record = _example_record()
    headers = [("traceparent", b"00-abc-def-01"), ("x-binary", b"\xff\xfe"), *record.headers]

    assert from_record(record.value, headers).data.alias == "champion"


# --- errors ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header", ["ce_type", "ce_id", "ce_source", "ce_specversion", "content-type"]
)
def test_a_missing_required_header_raises_missing_header_naming_it(header: str) -> None:
    record = _example_record()

    with pytest.raises(MissingHeader, match=f"missing required header '{header}'") as info:
        from_record(record.value, _without(record, header))

    assert info.value.header == header
    assert isinstance(info.value, EnvelopeError)


def test_an_event_without_the_optional_ce_time_is_accepted_as_happening_now() -> None:
    record = _example_record()
    before = datetime.now(UTC)

    event = from_record(record.value, _without(record, "ce_time"))

    assert before <= event.time <= datetime.now(UTC)
    assert event.data == from_record(record.value, record.headers).data


def test_ce_header_names_are_case_sensitive() -> None:
    record = _example_record()
    headers = [(name.upper() if name == "ce_type" else name, v) for name, v in record.headers]

    with pytest.raises(MissingHeader, match="'ce_type'"):
        from_record(record.value, headers)


def test_an_unknown_ce_type_raises_unknown_event_type_naming_it() -> None:
    record = _example_record()

    with pytest.raises(UnknownEventType, match=r"driftloop\.registry\.alias\.renamed") as info:
        from_record(record.value, _replaced(record, "ce_type", b"driftloop.registry.alias.renamed"))

    assert info.value.event_type == "driftloop.registry.alias.renamed"
    assert "driftloop.registry.alias.set" in str(info.value)  # lists the known types


@pytest.mark.parametrize("content_type", ["text/plain", "application/avro", "application/xml"])
def test_an_unsupported_content_type_raises_naming_it(content_type: str) -> None:
    record = _example_record()

    with pytest.raises(UnsupportedContentType, match=content_type) as info:
        from_record(record.value, _replaced(record, "content-type", content_type.encode()))

    assert info.value.content_type == content_type
    assert "application/protobuf" in str(info.value)


def test_garbage_protobuf_bytes_raise_undecodable_payload() -> None:
    record = _example_record()

    with pytest.raises(UndecodablePayload, match=r"driftloop\.registry\.v1\.AliasSet") as info:
        from_record(b"\xff\xff\xff\xff", record.headers)

    assert "driftloop.registry.alias.set" in str(info.value)


@pytest.mark.parametrize(
    "value",
    [b"not json at all", b"[1, 2, 3]", b'{"version": "four"}', b"\xff\xfe{}"],
    ids=["not-json", "array", "wrong-field-type", "not-utf8"],
)
def test_garbage_json_raises_undecodable_payload(value: bytes) -> None:
    record = _example_record(JSON)

    with pytest.raises(UndecodablePayload, match=r"driftloop\.registry\.alias\.set"):
        from_record(value, record.headers)


def test_a_tombstone_raises_undecodable_payload() -> None:
    record = _example_record()

    with pytest.raises(UndecodablePayload, match="tombstone"):
        from_record(None, record.headers)


@pytest.mark.parametrize(
    ("header", "value", "reason"),
    [
        ("ce_specversion", b"0.3", "only '1.0'"),
        ("ce_time", b"yesterday", "not an RFC 3339"),
        ("ce_time", b"2025-03-01T12:00:00", "no UTC offset"),
        ("ce_id", b"", "empty"),
        ("ce_source", b"\xff", "not UTF-8"),
    ],
)
def test_an_invalid_header_value_raises_invalid_header_saying_why(
    header: str, value: bytes, reason: str
) -> None:
    record = _example_record()

    with pytest.raises(InvalidHeader, match=reason) as info:
        from_record(record.value, _replaced(record, header, value))

    assert info.value.header == header


@settings(max_examples=200, deadline=None)
@given(
    value=st.binary(max_size=64),
    content_type=st.sampled_from([PROTOBUF, JSON]),
    spec=st.sampled_from(SPECS),
)
def test_arbitrary_bytes_decode_or_raise_an_envelope_error_never_anything_else(
    value: bytes, content_type: str, spec: EventSpec[Any]
) -> None:
    headers = [
        ("ce_specversion", b"1.0"),
        ("ce_id", b"1"),
        ("ce_source", b"/fuzz"),
        ("ce_type", spec.type.encode()),
        ("ce_time", b"2025-03-01T12:00:00Z"),
        ("content-type", content_type.encode()),
    ]
    try:
        event = from_record(value, headers)
    except EnvelopeError:
        return
    assert isinstance(event.data, spec.message)


# --- the quick look at a protobuf record's headers -------------------------------------


@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
def test_protobuf_spec_names_the_type_of_a_record_to_record_wrote(spec: EventSpec[Any]) -> None:
    record = to_record(CloudEvent.new(spec.example()))

    assert protobuf_spec(record.headers) is spec


def test_protobuf_spec_leaves_json_and_bad_headers_to_from_record() -> None:
    record = _example_record()

    assert protobuf_spec(_example_record(JSON).headers) is None
    assert protobuf_spec(_without(record, "ce_id")) is None
    assert protobuf_spec(_replaced(record, "ce_time", b"yesterday")) is None
    assert protobuf_spec(_replaced(record, "ce_type", b"no.such.type")) is None
    assert protobuf_spec(_replaced(record, "ce_specversion", b"0.3")) is None
    assert protobuf_spec(_replaced(record, "ce_source", b"\xff")) is None


_HEADER_NAMES = st.sampled_from(
    [
        "ce_specversion",
        "ce_id",
        "ce_source",
        "ce_type",
        "ce_time",
        "ce_subject",
        "ce_dataschema",
        "content-type",
        "Content-Type",
        "CE_TYPE",
        "traceparent",
    ]
)
_HEADER_VALUES = st.one_of(
    st.sampled_from(
        [
            b"1.0",
            b"",
            b"application/protobuf",
            b"application/json",
            b"application/x-protobuf",
            b"application/protobuf; charset=utf-8",
            b"driftloop.registry.alias.set",
            b"driftloop.monitor.label.recorded",
            b"2025-03-01T12:00:00Z",
            b"2025-03-01t12:00:00z",
            b"2025-03-01T12:00:00",
            b"\xff\xfe",
            "caf\u00e9".encode(),
        ]
    ),
    st.binary(max_size=12),
    st.none(),
)


@_PROPERTY_SETTINGS
@given(
    changes=st.lists(st.tuples(_HEADER_NAMES, _HEADER_VALUES), max_size=4),
    drop=st.sets(st.sampled_from(["ce_id", "ce_source", "ce_time", "content-type", "ce_type"])),
)
def test_a_record_protobuf_spec_accepts_is_one_from_record_decodes_to_that_type(
    changes: list[tuple[str, bytes | None]], drop: set[str]
) -> None:
    # The consumer that trusts protobuf_spec skips from_record: whatever it accepts,
    # from_record must accept too, as the same type (the reverse need not hold).
    record = _example_record()
    headers: list[tuple[str, bytes | None]] = [
        (name, value) for name, value in record.headers if name not in drop
    ]
    headers += changes

    spec = protobuf_spec(headers)

    if spec is not None:
        event = from_record(spec.example().SerializeToString(), headers)
        assert event.type == spec.type
        assert isinstance(event.data, spec.message)
