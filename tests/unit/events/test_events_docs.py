"""docs/events.md and docs/asyncapi.yaml are generated from the contract and kept current."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
import yaml

from driftloop_events.catalog import CATALOG
from driftloop_events.docs import ASYNCAPI, EVENTS_MD, asyncapi_document, events_markdown
from driftloop_events.topics import TOPICS

pytestmark = pytest.mark.unit


def test_the_events_page_is_current_and_names_every_type_and_field() -> None:
    page = events_markdown()
    assert EVENTS_MD.read_text() == page, "stale: run python -m driftloop_events.docs"
    for spec in CATALOG.values():
        assert f"### `{spec.type}`" in page
        for field in spec.message.DESCRIPTOR.fields:
            assert f"| `{field.json_name}` |" in page, (spec.type, field.name)


def test_the_asyncapi_document_is_current_and_consistent() -> None:
    text = asyncapi_document()
    assert ASYNCAPI.read_text() == text, "stale: run python -m driftloop_events.docs"
    document: dict[str, Any] = yaml.safe_load(text)
    assert document["asyncapi"] == "3.0.0"
    channels, messages = document["channels"], document["components"]["messages"]
    topics_with_events = {spec.topic for spec in CATALOG.values()}
    assert {c["address"] for c in channels.values()} == topics_with_events <= set(TOPICS)
    assert {m["name"] for m in messages.values()} == set(CATALOG)
    for operation in document["operations"].values():
        channel_id = operation["channel"]["$ref"].removeprefix("#/channels/")
        assert channel_id in channels
        for ref in operation["messages"]:
            assert ref["$ref"].rsplit("/", 1)[-1] in channels[channel_id]["messages"]


@pytest.mark.parametrize("spec", list(CATALOG.values()), ids=list(CATALOG))
def test_every_example_payload_validates_against_its_message_schema(spec: Any) -> None:
    messages = yaml.safe_load(asyncapi_document())["components"]["messages"]
    (message,) = [m for m in messages.values() if m["name"] == spec.type]
    for example in message["examples"]:
        jsonschema.validate(example["payload"], message["payload"])
