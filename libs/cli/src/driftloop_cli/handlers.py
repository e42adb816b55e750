"""What each service reacts to, as a Markdown table per service, from the code.

Every service exports its consumers' dispatch table (``entrypoints/consumers.py``
``HANDLERS``) in its :class:`~driftloop_kit.service.ServiceDefinition`; this renders
them for ``docs/architecture.md`` (``driftloop handlers --markdown``), and a test keeps
that page in step with the tables.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable

from driftloop_events.catalog import spec_for
from driftloop_kit.service import ServiceDefinition


def _first_line(handler: object) -> str:
    doc = inspect.getdoc(handler) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


def handler_tables(definitions: Iterable[ServiceDefinition]) -> str:
    """One Markdown section per service: event type, topic, handler and what it does."""
    out: list[str] = []
    for definition in definitions:
        out.append(f"### {definition.name}\n")
        if not definition.handlers:
            out.append("Handles no event.\n")
            continue
        out.append("| event type | topic | handler | what it does |")
        out.append("|---|---|---|---|")
        rows = []
        for key, handlers in definition.handlers.items():
            spec = spec_for(key)
            for handler in handlers:
                name = f"{handler.__module__}.{handler.__qualname__}"
                rows.append(
                    f"| `{spec.type}` | `{spec.topic}` | `{name}` | {_first_line(handler)} |"
                )
        out.extend(rows)
        out.append("")
    return "\n".join(out)
