"""CloudEvents over Kafka, binary content mode.

A driftloop event on the wire is a Kafka record whose headers carry the CloudEvents
attributes (``ce_specversion``, ``ce_id``, ``ce_source``, ``ce_type``, ``ce_time``,
``ce_subject``, ``content-type`` and ``ce_dataschema``) and whose value is the
protobuf message, either serialized (``application/protobuf``) or in its proto3 JSON
form (``application/json``). Every consumer accepts both, so producers in any language
can publish.

Example::

    event = CloudEvent.new(AliasSet(name="iris", alias="champion", version=4))
    record = to_record(event)          # topic "registry.models", key b"iris"
    again = from_record(record.value, record.headers)
    assert again == event
"""

from __future__ import annotations

import functools
import itertools
import json
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, NamedTuple, TypeVar

from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message

from driftloop_events.catalog import EventSpec, spec_for
from driftloop_events.errors import (
    EnvelopeError,
    InvalidHeader,
    MissingHeader,
    UndecodablePayload,
    UnknownEventType,
    UnsupportedContentType,
)
from driftloop_events.tracing import current_trace_context

__all__ = [
    "JSON",
    "PROTOBUF",
    "SPECVERSION",
    "CloudEvent",
    "EnvelopeError",
    "InvalidHeader",
    "KafkaRecord",
    "MissingHeader",
    "UndecodablePayload",
    "UnknownEventType",
    "UnsupportedContentType",
    "from_record",
    "new_event_id",
    "protobuf_spec",
    "to_record",
]

M = TypeVar("M", bound=Message)

SPECVERSION = "1.0"
PROTOBUF = "application/protobuf"
JSON = "application/json"
# Other spellings of the same formats seen in the wild (e.g. from Confluent clients).
_ALIASES = {"application/x-protobuf": PROTOBUF, "application/vnd.google.protobuf": PROTOBUF}
_SUPPORTED = [PROTOBUF, JSON]

H_SPECVERSION = "ce_specversion"
H_ID = "ce_id"
H_SOURCE = "ce_source"
H_TYPE = "ce_type"
H_TIME = "ce_time"
H_SUBJECT = "ce_subject"
H_DATASCHEMA = "ce_dataschema"
H_CONTENT_TYPE = "content-type"
#: CloudEvents' distributed tracing extension (W3C trace context of the producer's span).
H_TRACEPARENT = "ce_traceparent"
H_TRACESTATE = "ce_tracestate"

# Event ids: 80 random bits drawn once per process, then a counter — a UUIDv8-shaped
# string, unique across processes like a uuid4 but much cheaper to make, which matters
# on the publish path (bench/README.md, "Where the time goes", has the figures).
_ID_PREFIX = ""
_ID_PID = -1
_id_counter = itertools.count()


def new_event_id() -> str:
    """Return a fresh, globally unique event id (a UUIDv8-shaped string)."""
    global _ID_PREFIX, _ID_PID  # noqa: PLW0603 - per-process state, reset after fork
    pid = os.getpid()
    if pid != _ID_PID:
        _ID_PID = pid
        r = uuid.uuid4().hex
        _ID_PREFIX = f"{r[:8]}-{r[8:12]}-8{r[13:16]}-{'89ab'[int(r[16], 16) & 3]}{r[17:20]}-"
    return f"{_ID_PREFIX}{next(_id_counter) & 0xFFFFFFFFFFFF:012x}"


_second_prefix: tuple[int, str] = (-1, "")


def _format_time(moment: datetime) -> str:
    # RFC 3339 in UTC with a "Z", e.g. 2025-03-01T12:00:00.123000Z. Events published in
    # the same second share the prefix, so it is formatted once per second.
    global _second_prefix  # noqa: PLW0603 - a one-entry cache
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    second = int(moment.timestamp() // 1)
    if second != _second_prefix[0]:
        _second_prefix = (second, moment.replace(microsecond=0).isoformat()[:-6])
    return f"{_second_prefix[1]}.{moment.microsecond:06d}Z"


@dataclass(frozen=True)
class CloudEvent(Generic[M]):
    """A driftloop event: CloudEvents attributes plus a protobuf payload.

    Attributes:
        id: Unique event id (``ce_id``); consumers deduplicate on it.
        source: Producer of the event (``ce_source``), e.g. ``"/driftloop/registry"``.
        type: Event type (``ce_type``), e.g. ``"driftloop.registry.alias.set"``.
        time: When the occurrence happened (``ce_time``); timezone-aware.
        subject: What the event is about within the source (``ce_subject``), e.g.
            ``"models/iris/aliases/champion"``; ``None`` when absent.
        data: The payload, the message the catalog names for ``type``.
        traceparent: The W3C ``traceparent`` of the span the event was made in
            (CloudEvents' distributed tracing extension); ``None`` when no trace was
            being recorded. A consumer continues that trace.
        tracestate: Its ``tracestate``, if any.
    """

    id: str
    source: str
    type: str
    time: datetime
    subject: str | None
    data: M
    traceparent: str | None = None
    tracestate: str | None = None

    def __post_init__(self) -> None:
        if self.time.tzinfo is not UTC and self.time.utcoffset() is None:
            raise ValueError(f"CloudEvent time must be timezone-aware, got {self.time!r}")

    @classmethod
    def new(
        cls,
        data: M,
        *,
        source: str | None = None,
        subject: str | None = None,
        id: str | None = None,
        time: datetime | None = None,
    ) -> CloudEvent[M]:
        """Wrap a payload, filling type, source and subject from the catalog.

        Args:
            data: The payload; its message class must be in the catalog.
            source: Overrides the catalog's default ``ce_source``.
            subject: Overrides the subject the catalog derives from ``data``.
            id: Event id; a fresh UUID when omitted. Pass a stable id to make a
                re-publication deduplicate (e.g. the outbox row id).
            time: Occurrence time (timezone-aware); now, in UTC, when omitted.

        Raises:
            UnknownEventType: The message class is not in the catalog.
        """
        spec = spec_for(data)
        traceparent, tracestate = current_trace_context()
        return cls(
            id=id if id is not None else new_event_id(),
            source=source if source is not None else spec.source,
            type=spec.type,
            time=time if time is not None else datetime.now(UTC),
            subject=subject if subject is not None else spec.subject(data),
            data=data,
            traceparent=traceparent,
            tracestate=tracestate,
        )

    @property
    def key(self) -> str:
        """The Kafka key: the entity the event is about, per the catalog."""
        key: str = spec_for(self.type).key(self.data)
        return key

    @property
    def topic(self) -> str:
        """The topic the catalog assigns to this event type."""
        return spec_for(self.type).topic


class KafkaRecord(NamedTuple):
    """A record ready for a Kafka producer (or just read by a consumer).

    Attributes:
        topic: Destination topic.
        key: Kafka key, UTF-8 bytes of ``CloudEvent.key``.
        value: Serialized payload (protobuf bytes or UTF-8 JSON).
        headers: CloudEvents headers in a fixed order, values UTF-8 encoded.
    """

    topic: str
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]


def to_record(
    event: CloudEvent[Any], *, content_type: str = PROTOBUF, topic: str | None = None
) -> KafkaRecord:
    """Encode an event as a Kafka record in CloudEvents binary mode.

    Args:
        event: The event to encode.
        content_type: ``PROTOBUF`` (default) or ``JSON`` (proto3 JSON, camelCase names).
        topic: Overrides the catalog's topic (e.g. a dead-letter or test topic).

    Raises:
        UnsupportedContentType: ``content_type`` is neither format.
        UnknownEventType: The event's type is not in the catalog.
    """
    encoding = _encoding(event.type, event.source, content_type)
    data = event.data
    if type(data) is not encoding.message and not isinstance(data, encoding.message):
        raise TypeError(
            f"event type {event.type!r} carries {encoding.spec.message_name}, "
            f"got {type(data).__name__}"
        )
    headers = [
        *encoding.head,
        (H_ID, event.id.encode()),
        (H_TIME, _format_time(event.time).encode()),
    ]
    if event.subject is not None:
        headers.append((H_SUBJECT, event.subject.encode()))
    headers += encoding.tail
    if event.traceparent:
        headers.append((H_TRACEPARENT, event.traceparent.encode()))
        if event.tracestate:
            headers.append((H_TRACESTATE, event.tracestate.encode()))
    return KafkaRecord(
        topic if topic is not None else encoding.spec.topic,
        encoding.spec.key(data).encode(),
        _encode(data, encoding.media_type),
        headers,
    )


class _Encoding(NamedTuple):
    """What every event of one type, source and content type shares, worked out once."""

    spec: EventSpec[Any]
    message: type[Message]
    media_type: str
    head: tuple[tuple[str, bytes], ...]
    tail: tuple[tuple[str, bytes], ...]


@functools.lru_cache(maxsize=1024)
def _encoding(event_type: str, source: str, content_type: str) -> _Encoding:
    media_type = _media_type(content_type)
    spec = spec_for(event_type)
    head = (
        (H_SPECVERSION, SPECVERSION.encode()),
        (H_SOURCE, source.encode()),
        (H_TYPE, event_type.encode()),
    )
    tail = ((H_CONTENT_TYPE, media_type.encode()), (H_DATASCHEMA, spec.message_name.encode()))
    return _Encoding(spec, spec.message, media_type, head, tail)


def from_record(
    value: bytes | None, headers: Sequence[tuple[str, bytes | None]]
) -> CloudEvent[Any]:
    """Decode a Kafka record (value and headers) into a CloudEvent.

    ``ce_*`` header names are matched exactly, as the binding says; ``content-type`` in
    any letter case, with parameters allowed (``application/json; charset=utf-8``).
    ``ce_dataschema`` is informative and not checked; headers that are neither ``ce_*``
    nor ``content-type`` are ignored, and a ``None`` header value counts as empty. JSON
    accepts camelCase and snake_case field names and ignores unknown fields, so older
    consumers read newer producers.

    Raises:
        MissingHeader: A required header is absent (all but ``ce_subject``,
            ``ce_time`` and ``ce_dataschema`` are required, as in CloudEvents 1.0).
        InvalidHeader: A header is not UTF-8, empty, or (``ce_time``) not RFC 3339, or
            ``ce_specversion`` is not 1.0.
        UnknownEventType: ``ce_type`` is not in the catalog.
        UnsupportedContentType: The content type is neither protobuf nor JSON.
        UndecodablePayload: The value is missing or is not the message ``ce_type`` names.
    """
    found = _header_map(headers)

    def required(name: str) -> str:
        text = found.get(name)
        if text is None:
            raise MissingHeader(name, list(found))
        if not text:
            raise InvalidHeader(name, "empty value")
        return text

    specversion = required(H_SPECVERSION)
    if specversion != SPECVERSION:
        raise InvalidHeader(
            H_SPECVERSION, f"got {specversion!r}, only {SPECVERSION!r} is supported"
        )
    event_type = required(H_TYPE)
    spec = spec_for(event_type)
    event_id = required(H_ID)
    source = required(H_SOURCE)
    # ce_time is OPTIONAL in CloudEvents 1.0; without it, the event is as new as its decoding.
    time = _parse_time(required(H_TIME)) if H_TIME in found else datetime.now(UTC)
    media_type = _media_type(required(H_CONTENT_TYPE))
    if value is None:
        raise UndecodablePayload(f"{event_type}: record has no value (a tombstone)")
    data = _decode(value, spec.message, media_type, event_type)
    return CloudEvent(
        id=event_id,
        source=source,
        type=event_type,
        time=time,
        subject=found.get(H_SUBJECT),
        data=data,
        traceparent=found.get(H_TRACEPARENT) or None,
        tracestate=found.get(H_TRACESTATE) or None,
    )


_PROTOBUF_BYTES = PROTOBUF.encode()
_SPECVERSION_BYTES = SPECVERSION.encode()


@functools.lru_cache(maxsize=256)
def _spec_of_type(event_type: bytes) -> EventSpec[Any] | None:
    try:
        return spec_for(event_type.decode())
    except UnknownEventType:
        return None


def protobuf_spec(headers: Sequence[tuple[str, bytes | None]]) -> EventSpec[Any] | None:
    """The catalog entry of a protobuf record whose headers :func:`from_record` accepts.

    A quick look for consumers that decode a batch's payloads themselves
    (``spec.message.FromString(value)``) and need none of the event's attributes: it
    checks what :func:`from_record` checks of the headers (spec version, type, id,
    source, time, content type) without building a :class:`CloudEvent`. ``None`` does
    not say the record is bad, only that this look cannot tell (JSON, a content type
    with parameters or an alias, a header that is not ASCII, a missing or invalid
    one): :func:`from_record` then judges it, and says why. A payload that does not
    parse is also :func:`from_record`'s to report.
    """
    found: dict[str, bytes] = {}
    content_type = None
    for name, value in headers:
        if name.startswith("ce_"):
            if type(value) is not bytes or not value.isascii():
                return None  # from_record says whether it is UTF-8, or missing
            found[name] = value  # a repeated header: the last one wins, as there
        elif name.lower() == H_CONTENT_TYPE:
            content_type = value
    event_type = found.get(H_TYPE)
    if (
        event_type is None
        or found.get(H_SPECVERSION) != _SPECVERSION_BYTES
        or content_type != _PROTOBUF_BYTES
        or not found.get(H_ID)
        or not found.get(H_SOURCE)
    ):
        return None
    moment = found.get(H_TIME)
    if moment is not None:
        try:
            _parse_time(moment.decode())
        except InvalidHeader:
            return None
    return _spec_of_type(event_type)


def _header_map(headers: Sequence[tuple[str, bytes | None]]) -> dict[str, str]:
    found: dict[str, str] = {}
    for raw_name, raw_value in headers:
        # ce_* first: most headers of a record, matched without lowering the name.
        if raw_name.startswith("ce_"):
            name = raw_name
        elif raw_name.lower() == H_CONTENT_TYPE:
            name = H_CONTENT_TYPE
        else:
            continue  # other headers (tracing, DLQ info) are not ours to judge
        try:
            if type(raw_value) is bytes:
                text = raw_value.decode()
            else:
                text = bytes(raw_value).decode("utf-8") if raw_value is not None else ""
        except UnicodeDecodeError as exc:
            raise InvalidHeader(name, f"value is not UTF-8 ({exc})") from exc
        # A repeated header: the last one wins, as a later writer meant to override.
        found[name] = text
    return found


def _media_type(content_type: str) -> str:
    if content_type is PROTOBUF or content_type is JSON:
        return content_type
    media_type = content_type.split(";", 1)[0].strip().lower()
    media_type = _ALIASES.get(media_type, media_type)
    if media_type not in _SUPPORTED:
        raise UnsupportedContentType(content_type, _SUPPORTED)
    return media_type


def _parse_time(text: str) -> datetime:
    # RFC 3339 allows a lowercase "t"/"z"; fromisoformat wants uppercase.
    try:
        moment = datetime.fromisoformat(text.upper())
    except ValueError as exc:
        raise InvalidHeader(H_TIME, f"{text!r} is not an RFC 3339 timestamp") from exc
    if moment.tzinfo is None:
        raise InvalidHeader(H_TIME, f"{text!r} has no UTC offset (RFC 3339 requires one)")
    return moment.astimezone(UTC)


def _encode(data: Message, media_type: str) -> bytes:
    if media_type == PROTOBUF:
        # Deterministic: the same event always gives the same bytes (maps sorted).
        return data.SerializeToString(deterministic=True)
    as_dict = json_format.MessageToDict(data)
    # Sorted keys: the same event always gives the same bytes, as with protobuf.
    text = json.dumps(as_dict, separators=(",", ":"), ensure_ascii=False, sort_keys=True)
    return text.encode("utf-8")


def _decode(value: bytes, message: type[M], media_type: str, event_type: str) -> M:
    data: M = message()
    if media_type == PROTOBUF:
        try:
            data.ParseFromString(value)
        except DecodeError as exc:
            raise UndecodablePayload(
                f"{event_type}: value ({len(value)} bytes) is not a serialized "
                f"{message.DESCRIPTOR.full_name} protobuf message: {exc}"
            ) from exc
        return data
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UndecodablePayload(f"{event_type}: JSON value is not UTF-8 ({exc})") from exc
    try:
        json_format.Parse(text, data, ignore_unknown_fields=True)
    except json_format.ParseError as exc:
        raise UndecodablePayload(
            f"{event_type}: value is not the proto3 JSON form of "
            f"{message.DESCRIPTOR.full_name}: {exc}"
        ) from exc
    return data
