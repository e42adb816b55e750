"""The event contract for producers and consumers in any language, generated from it.

``docs/events.md`` lists every topic, its event types, the CloudEvents headers of a
record and each payload's fields (with the comments of ``proto/``) and a JSON example;
``docs/asyncapi.yaml`` is an AsyncAPI 3 document of the same topics and messages.
Both are generated from the catalog and the protos, never written by hand::

    python -m driftloop_events.docs            # write both
    python -m driftloop_events.docs --check    # exit 1 if either is stale (the lint)
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from google.protobuf import descriptor_pb2, json_format
from google.protobuf.descriptor import FieldDescriptor

from driftloop_events.catalog import CATALOG, EventSpec
from driftloop_events.codegen import descriptor_set
from driftloop_events.envelope import (
    H_DATASCHEMA,
    H_ID,
    H_SOURCE,
    H_SPECVERSION,
    H_SUBJECT,
    H_TIME,
    H_TYPE,
    JSON,
    PROTOBUF,
)
from driftloop_events.topics import DLQ_SUFFIX, TOPICS

__all__ = ["asyncapi_document", "events_markdown", "main"]

ROOT = Path(__file__).resolve().parents[4]
EVENTS_MD = ROOT / "docs" / "events.md"
ASYNCAPI = ROOT / "docs" / "asyncapi.yaml"

_HEADERS = (
    (H_SPECVERSION, "yes", "`1.0`"),
    (H_ID, "yes", "unique event id; consumers deduplicate on it"),
    (H_SOURCE, "yes", "the producer, e.g. `/driftloop/monitor`"),
    (H_TYPE, "yes", "the event type below, e.g. `driftloop.monitor.label.recorded`"),
    ("content-type", "yes", f"`{PROTOBUF}` (serialized message) or `{JSON}` (proto3 JSON)"),
    (H_TIME, "no", "RFC 3339 time of the occurrence"),
    (H_SUBJECT, "no", "what the event is about within the source"),
    (H_DATASCHEMA, "no", "informative; not checked"),
)

_SCALARS = {
    FieldDescriptor.TYPE_DOUBLE: ("double", {"type": "number"}),
    FieldDescriptor.TYPE_FLOAT: ("float", {"type": "number"}),
    FieldDescriptor.TYPE_INT64: ("int64", {"type": "string", "format": "int64"}),
    FieldDescriptor.TYPE_UINT64: ("uint64", {"type": "string", "format": "int64"}),
    FieldDescriptor.TYPE_INT32: ("int32", {"type": "integer"}),
    FieldDescriptor.TYPE_BOOL: ("bool", {"type": "boolean"}),
    FieldDescriptor.TYPE_STRING: ("string", {"type": "string"}),
    FieldDescriptor.TYPE_BYTES: ("bytes", {"type": "string", "contentEncoding": "base64"}),
    FieldDescriptor.TYPE_UINT32: ("uint32", {"type": "integer"}),
}


def _comments() -> dict[str, str]:
    """Leading comments of every message and field, by full name (``pkg.Msg.field``)."""
    found: dict[str, str] = {}
    for file in descriptor_set(include_source_info=True).file:
        by_path = {
            tuple(loc.path): " ".join(loc.leading_comments.split())
            for loc in file.source_code_info.location
        }
        _walk(file.message_type, file.package, (4,), by_path, found)
    return found


def _walk(
    messages: Iterable[descriptor_pb2.DescriptorProto],
    prefix: str,
    path: tuple[int, ...],
    by_path: dict[tuple[int, ...], str],
    found: dict[str, str],
) -> None:
    # Source paths: 4 = message_type, 2 = field, 3 = nested_type (descriptor.proto).
    for i, message in enumerate(messages):
        name = f"{prefix}.{message.name}"
        here = (*path, i)
        found[name] = by_path.get(here, "")
        for j, field in enumerate(message.field):
            found[f"{name}.{field.name}"] = by_path.get((*here, 2, j), "")
        _walk(message.nested_type, name, (*here, 3), by_path, found)


def _type_name(field: FieldDescriptor) -> str:
    if field.message_type is not None:
        if field.message_type.GetOptions().map_entry:
            key, value = field.message_type.fields
            return f"map<{_type_name(key)}, {_type_name(value)}>"
        name = field.message_type.full_name
    elif field.enum_type is not None:
        name = field.enum_type.full_name
    else:
        name = _SCALARS[field.type][0]
    repeated = field.is_repeated and not (
        field.message_type is not None and field.message_type.GetOptions().map_entry
    )
    return f"repeated {name}" if repeated else name


def _schema(descriptor: Any, depth: int = 0) -> dict[str, Any]:
    """A JSON Schema of a message's proto3 JSON form (nested messages inline, bounded)."""
    if descriptor.full_name == "google.protobuf.Timestamp":
        return {"type": "string", "format": "date-time"}
    if depth > 6:
        return {"type": "object"}
    properties: dict[str, Any] = {}
    for field in descriptor.fields:
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            _, value = field.message_type.fields
            schema: dict[str, Any] = {
                "type": "object",
                "additionalProperties": _field(value, depth),
            }
        else:
            schema = _field(field, depth)
            if field.is_repeated:
                schema = {"type": "array", "items": schema}
        properties[field.json_name] = schema
    return {"type": "object", "properties": properties}


def _field(field: FieldDescriptor, depth: int) -> dict[str, Any]:
    if field.message_type is not None:
        return _schema(field.message_type, depth + 1)
    if field.enum_type is not None:
        if field.enum_type.full_name == "google.protobuf.NullValue":
            return {"type": "null"}  # proto3 JSON writes it as null
        return {"type": "string", "enum": [v.name for v in field.enum_type.values]}
    return dict(_SCALARS[field.type][1])


def _sorted(value: Any) -> Any:
    """``value`` with every mapping's keys in order (map fields come in any order)."""
    if isinstance(value, dict):
        return {k: _sorted(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted(v) for v in value]
    return value


def _specs_of(topic: str) -> list[EventSpec[Any]]:
    return [spec for spec in CATALOG.values() if spec.topic == topic]


def events_markdown() -> str:
    """``docs/events.md``."""
    comments = _comments()
    lines = [
        "# Events: topics, types and payloads",
        "",
        "<!-- Generated by `python -m driftloop_events.docs` from proto/ and the catalog; "
        "do not edit. -->",
        "",
        "Every event is a Kafka record in the CloudEvents 1.0 Kafka binding, binary mode: "
        "the attributes are headers, the value is the payload, a protobuf message either "
        "serialized or in its proto3 JSON form (camelCase field names; 64-bit integers as "
        "strings). Every consumer of the suite accepts both, so a producer in any language "
        "can send JSON. A record a consumer cannot read goes to the topic's dead-letter "
        f"topic (`<topic>{DLQ_SUFFIX}`) with the reason in its headers.",
        "",
        "## Headers",
        "",
        "| header | required | value |",
        "|---|---|---|",
        *(f"| `{name}` | {required} | {what} |" for name, required, what in _HEADERS),
        "",
        "## Topics",
        "",
        "| topic | partitions | retention | events |",
        "|---|---|---|---|",
    ]
    for topic in TOPICS.values():
        types = ", ".join(f"`{s.type}`" for s in _specs_of(topic.name)) or "-"
        days = topic.retention_ms / 86_400_000
        lines.append(f"| `{topic.name}` | {topic.partitions} | {days:g} days | {types} |")
    for topic in TOPICS.values():
        specs = _specs_of(topic.name)
        if not specs:
            continue
        lines += ["", f"## `{topic.name}`", "", topic.description]
        for spec in specs:
            name = spec.message_name
            example = spec.example()
            lines += [
                "",
                f"### `{spec.type}`",
                "",
                comments.get(name, ""),
                "",
                f"Message `{name}`; `ce_source` `{spec.source}`; Kafka key "
                f"`{spec.key(example)}` in the example; `ce_subject` `{spec.subject(example)}`.",
                "",
                "| field | type | meaning |",
                "|---|---|---|",
            ]
            for field in spec.message.DESCRIPTOR.fields:
                meaning = comments.get(f"{name}.{field.name}", "").replace("|", "\\|")
                lines.append(f"| `{field.json_name}` | `{_type_name(field)}` | {meaning} |")
            payload = json_format.MessageToDict(example)
            lines += ["", "```json", json.dumps(payload, indent=2, sort_keys=True), "```"]
    return "\n".join(lines) + "\n"


def asyncapi_document() -> str:
    """``docs/asyncapi.yaml``: an AsyncAPI 3.0.0 document of the topics and messages."""
    headers = {
        "type": "object",
        "required": [H_SPECVERSION, H_ID, H_SOURCE, H_TYPE, "content-type"],
        "properties": {name: {"type": "string", "description": what} for name, _, what in _HEADERS},
    }
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for topic in TOPICS.values():
        specs = _specs_of(topic.name)
        if not specs:
            continue
        channel_id = topic.name.replace(".", "_")
        refs = {}
        for spec in specs:
            message_id = spec.type.removeprefix("driftloop.").replace(".", "_")
            messages[message_id] = {
                "name": spec.type,
                "title": spec.message_name,
                "contentType": JSON,
                "headers": headers,
                "payload": _schema(spec.message.DESCRIPTOR),
                "examples": [{"payload": _sorted(json_format.MessageToDict(spec.example()))}],
            }
            refs[message_id] = {"$ref": f"#/components/messages/{message_id}"}
        channels[channel_id] = {
            "address": topic.name,
            "description": topic.description,
            "messages": refs,
            "bindings": {"kafka": {"partitions": topic.partitions, "bindingVersion": "0.5.0"}},
        }
        operations[f"publish_{channel_id}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{channel_id}"},
            "messages": [{"$ref": f"#/channels/{channel_id}/messages/{m}"} for m in refs],
        }
    document = {
        "asyncapi": "3.0.0",
        "info": {
            "title": "driftloop events",
            "version": "1.0.0",
            "description": "Generated by `python -m driftloop_events.docs`; do not edit.",
        },
        "defaultContentType": JSON,
        "servers": {
            "embedded": {"host": "127.0.0.1:9092", "protocol": "kafka"},
        },
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages},
    }
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True)


def main(argv: list[str] | None = None) -> int:
    """Write (or with ``--check``, compare) ``docs/events.md`` and ``docs/asyncapi.yaml``."""
    parser = argparse.ArgumentParser(prog="python -m driftloop_events.docs")
    parser.add_argument("--check", action="store_true", help="exit 1 if a file is stale")
    args = parser.parse_args(argv)
    stale = []
    for path, text in ((EVENTS_MD, events_markdown()), (ASYNCAPI, asyncapi_document())):
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(path)
        else:
            path.write_text(text)
    for path in stale:
        print(f"stale: {path} (run python -m driftloop_events.docs)", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    raise SystemExit(main())
