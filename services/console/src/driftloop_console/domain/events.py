"""An event of the topics as the live feed shows it."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from google.protobuf.json_format import MessageToDict

from driftloop_console.domain.loop import short_event_type
from driftloop_console.domain.values import iso_utc

__all__ = ["FeedEvent", "feed_event"]

#: Most characters of an event's payload shown in the feed.
SUMMARY_CHARS = 240


@dataclass(frozen=True)
class FeedEvent:
    """One line of the live feed.

    Attributes:
        id: The event's ``ce_id``.
        type: Its type without the ``driftloop.<service>.`` prefix (``alias.set``).
        source: ``ce_source``.
        time: ``ce_time``, ISO 8601 in UTC.
        subject: ``ce_subject`` (``models/iris/aliases/champion``), if any.
        topic: The topic it came from.
        model: The model it is about, when the payload names one.
        summary: The payload as compact JSON, cut short.
    """

    id: str
    type: str
    source: str
    time: str
    subject: str
    topic: str
    model: str
    summary: str

    def as_json(self) -> str:
        """The event as the feed's server-sent ``data``."""
        return json.dumps(asdict(self), separators=(",", ":"))


def feed_event(event: Any, *, topic: str) -> FeedEvent:
    """A decoded :class:`~driftloop_events.envelope.CloudEvent` as a feed line."""
    try:
        payload = MessageToDict(event.data, preserving_proto_field_name=True)
    except (TypeError, AttributeError):
        payload = {}
    model = payload.get("model") or payload.get("model_name") or ""
    if not model and topic == "registry.models":  # the registry's payloads name the model `name`
        model = payload.get("name") or ""
    summary = json.dumps(payload, separators=(",", ":"), default=str)
    if len(summary) > SUMMARY_CHARS:
        summary = summary[: SUMMARY_CHARS - 1] + "…"
    return FeedEvent(
        id=str(event.id),
        type=short_event_type(event.type),
        source=str(event.source),
        time=iso_utc(event.time) or "",
        subject=str(event.subject or ""),
        topic=topic,
        model=str(model),
        summary=summary,
    )
