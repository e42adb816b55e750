"""driftloop events: the event contract and its CloudEvents Kafka envelope.

The contract lives in ``proto/`` and is generated into ``driftloop.<domain>.v1``
(``python -m driftloop_events.codegen``). This package adds:

- ``catalog``: every event type (``ce_type`` -> message, topic, key, subject, example);
- ``topics``: the Kafka topics and their dead-letter topics;
- ``envelope``: ``CloudEvent``, ``to_record`` / ``from_record`` and the envelope errors;
- ``values``: Python values <-> ``Value`` / ``Record``.
"""

from driftloop_events.catalog import CATALOG, EventSpec, entity_key, spec_for
from driftloop_events.envelope import (
    JSON,
    PROTOBUF,
    CloudEvent,
    KafkaRecord,
    from_record,
    to_record,
)
from driftloop_events.errors import (
    EnvelopeError,
    InvalidHeader,
    MissingHeader,
    UndecodablePayload,
    UnknownEventType,
    UnsupportedContentType,
)
from driftloop_events.topics import TOPICS, TopicSpec, all_topics, dlq_topic

__all__ = [
    "CATALOG",
    "JSON",
    "PROTOBUF",
    "TOPICS",
    "CloudEvent",
    "EnvelopeError",
    "EventSpec",
    "InvalidHeader",
    "KafkaRecord",
    "MissingHeader",
    "TopicSpec",
    "UndecodablePayload",
    "UnknownEventType",
    "UnsupportedContentType",
    "all_topics",
    "dlq_topic",
    "entity_key",
    "from_record",
    "spec_for",
    "to_record",
]
