"""Errors raised while wrapping or unwrapping events.

Every message says exactly what was wrong, because consumers copy it into the
dead-letter headers of the record that caused it.
"""

from __future__ import annotations


class EnvelopeError(ValueError):
    """A Kafka record is not a valid driftloop CloudEvent (base class)."""


class MissingHeader(EnvelopeError):
    """A required CloudEvents header is absent.

    Attributes:
        header: The missing header name, e.g. ``"ce_type"``.
    """

    def __init__(self, header: str, present: list[str]) -> None:
        self.header = header
        super().__init__(
            f"missing required header {header!r} (CloudEvents Kafka binding, binary mode); "
            f"headers present: {sorted(present)}"
        )


class InvalidHeader(EnvelopeError):
    """A CloudEvents header is present but its value is not acceptable.

    Attributes:
        header: The offending header name, e.g. ``"ce_time"``.
    """

    def __init__(self, header: str, reason: str) -> None:
        self.header = header
        super().__init__(f"invalid header {header!r}: {reason}")


class UnknownEventType(EnvelopeError):
    """No event of this type (or message class) is in the catalog.

    Attributes:
        event_type: The ``ce_type`` or message name that was looked up.
    """

    def __init__(self, event_type: str, known: list[str] | None = None) -> None:
        self.event_type = event_type
        hint = f"; known types: {', '.join(sorted(known))}" if known else ""
        super().__init__(f"unknown event type {event_type!r}{hint}")


class UnsupportedContentType(EnvelopeError):
    """The ``content-type`` is neither protobuf nor JSON.

    Attributes:
        content_type: The content type as received.
    """

    def __init__(self, content_type: str, supported: list[str]) -> None:
        self.content_type = content_type
        super().__init__(
            f"unsupported content-type {content_type!r}; expected one of {', '.join(supported)}"
        )


class UndecodablePayload(EnvelopeError):
    """The record value cannot be decoded as the message its ``ce_type`` names."""
