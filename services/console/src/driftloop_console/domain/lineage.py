"""The lineage picture: the registry's chain of a version as an SVG timeline, drawn
server-side (no script): feature views → run → version → alias moves → drift →
trigger → retraining → next version."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from driftloop_console.domain.loop import short_event_type
from driftloop_console.domain.values import iso_utc

__all__ = ["LineageNode", "lineage_nodes"]

#: Node colours by the part of the loop they belong to.
COLOURS = {
    "features": "#e0f2fe",
    "run": "#ede9fe",
    "registered": "#dcfae6",
    "alias": "#fef0c7",
    "drift": "#fee4e2",
    "training": "#e0e7ff",
    "version": "#dcfae6",
    "event": "#f2f4f7",
}


@dataclass(frozen=True)
class LineageNode:
    """One box of the picture.

    Attributes:
        kind: ``features``, ``run``, ``registered``, ``alias``, ``drift``, ``training``,
            ``version`` or ``event``.
        title: The box's first line.
        detail: Its second line.
        time: When (ISO UTC), if known.
        href: The console page it links to, if any.
    """

    kind: str
    title: str
    detail: str = ""
    time: str | None = None
    href: str | None = None

    @property
    def colour(self) -> str:
        """The box's fill."""
        return COLOURS.get(self.kind, COLOURS["event"])


def _model_path(name: str) -> str:
    return f"/models/{quote(name, safe='')}"


def lineage_nodes(chain: Mapping[str, Any]) -> list[LineageNode]:
    """The boxes of a version's chain (the registry's ``lineage`` answer), in order."""
    name = str(chain.get("name") or "")
    model = _model_path(name)
    nodes: list[LineageNode] = []
    lineage = chain.get("lineage") or {}
    views = lineage.get("feature_views") or []
    if views:
        nodes.append(LineageNode("features", "feature views", ", ".join(map(str, views))))
    run_id = lineage.get("run_id")
    if run_id:
        metrics = lineage.get("metrics") or {}
        shown = ", ".join(f"{k} {float(v):.3g}" for k, v in list(metrics.items())[:2])
        nodes.append(LineageNode("run", f"run {str(run_id)[:8]}", shown, href=f"/runs/{run_id}"))
    for event in chain.get("events") or []:
        nodes.append(_event_node(event, model))
    return nodes


def _event_node(event: Mapping[str, Any], model: str) -> LineageNode:
    kind = short_event_type(event.get("type"))
    summary = event.get("summary") or {}
    time = iso_utc(event.get("time"))
    version = summary.get("version") or summary.get("model_version") or event.get("version")
    job = summary.get("job_id")
    if kind == "model_version.created":
        return LineageNode(
            "registered",
            f"v{version} registered",
            f"run {str(summary.get('run_id', ''))[:8]}",
            time,
            f"{model}/versions/{version}",
        )
    if kind.startswith("alias."):
        alias = summary.get("alias", "")
        verb = "→" if kind == "alias.set" else "removed from"
        return LineageNode("alias", f"{alias} {verb} v{version}", kind, time)
    if kind.startswith(("drift.", "performance.")):
        columns = summary.get("drifted_columns") or summary.get("columns") or []
        detail = ", ".join(map(str, columns))[:40] if isinstance(columns, list) else ""
        return LineageNode("drift", kind, detail or f"v{version}", time, f"{model}/drift")
    if kind.startswith("training."):
        detail = str(summary.get("trigger_kind") or summary.get("reason") or "")[:40]
        if kind == "training.completed":
            detail = "promoted" if summary.get("promoted") else "not promoted"
            if summary.get("model_version"):
                detail = f"v{summary.get('model_version')} {detail}"
        return LineageNode(
            "training", kind, detail, time, f"/jobs/{quote(str(job), safe='')}" if job else None
        )
    return LineageNode("event", kind or "event", str(event.get("role") or ""), time)


def layout(nodes: Sequence[LineageNode], *, per_row: int = 5) -> list[dict[str, Any]]:
    """Positions of the boxes on a snake-shaped timeline (left to right, row by row)."""
    placed = []
    for index, node in enumerate(nodes):
        row, column = divmod(index, per_row)
        x = 20 + column * 200
        y = 20 + row * 110
        placed.append({"node": node, "x": x, "y": y, "index": index})
    return placed
