"""``driftloop lineage``: where a model version came from and what happened to it since.

The registry keeps the lineage log; this module names what to ask it for
(``MODEL``, ``MODEL@ALIAS`` or ``MODEL/VERSION``), finds it, asks, and prints the
answer as a timeline::

    2026-11-30T15:02:03.120Z  drift.detected  0f8e…  v1: 3/4 columns drifted (share 0.75) ...
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

#: Where the registry is when neither ``--registry-url`` nor ``up.json`` says.
DEFAULT_REGISTRY_URL = "http://127.0.0.1:5001"
#: The variable ``--registry-url`` is read from.
REGISTRY_URL_ENV = "DRIFTLOOP_REGISTRY_URL"
LINEAGE_PATH = "/api/2.0/driftloop/lineage"
#: What ``driftloop up`` writes in its home folder (the same name as ``driftloop_cli.up``).
UP_FILE = "up.json"

_ALIAS = re.compile(r"^[\w\-]+$")
_EXIT_USAGE = 2


class LineageError(Exception):
    """The lineage cannot be shown; ``exit_code`` 2 for a bad request, else 1."""

    def __init__(self, message: str, *, exit_code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


@dataclass(frozen=True)
class ModelRef:
    """What to show: a model's whole log, or one version's chain (by number or alias)."""

    name: str
    version: str | None = None
    alias: str | None = None

    def query(self) -> dict[str, str]:
        """The lineage endpoint's query parameters."""
        params = {"name": self.name}
        if self.version is not None:
            params["version"] = self.version
        if self.alias is not None:
            params["alias"] = self.alias
        return params


def parse_model_ref(text: str) -> ModelRef:
    """``MODEL``, ``MODEL@ALIAS`` or ``MODEL/VERSION`` as a :class:`ModelRef`.

    Model names cannot hold ``/`` (so the first one starts a version) but may hold
    ``@``; aliases cannot (so the last one starts an alias).

    Raises:
        ValueError: With a message for the user, if ``text`` is none of those.
    """
    usage = "expected MODEL, MODEL@ALIAS or MODEL/VERSION"
    text = text.strip()
    if "/" in text:
        name, _, version = text.partition("/")
        if not name:
            raise ValueError(f"{text!r} names no model; {usage}")
        if not version.isdigit() or int(version) < 1:
            raise ValueError(f"version {version!r} in {text!r} is not a positive integer; {usage}")
        return ModelRef(name=name, version=str(int(version)))
    if "@" in text:
        name, _, alias = text.rpartition("@")
        if not name:
            raise ValueError(f"{text!r} names no model; {usage}")
        if not _ALIAS.match(alias):
            raise ValueError(
                f"alias {alias!r} in {text!r} is not an alias name (letters, digits, _ and -); "
                f"{usage}"
            )
        return ModelRef(name=name, alias=alias)
    if not text:
        raise ValueError(f"no model given; {usage}")
    if ":" in text:
        raise ValueError(f"{text!r} is not a model name (names cannot contain ':'); {usage}")
    return ModelRef(name=text)


def registry_url(explicit: str | None, home: Path) -> str:
    """The registry to ask: ``explicit``, else the one ``driftloop up`` announced, else local.

    Args:
        explicit: ``--registry-url`` (or ``DRIFTLOOP_REGISTRY_URL``), if given.
        home: The ``driftloop up`` home whose ``up.json`` lists the services.
    """
    if explicit:
        return explicit.rstrip("/")
    try:
        state = json.loads((home / UP_FILE).read_text())
        url = state["services"]["registry"]
    except (OSError, ValueError, KeyError, TypeError):
        return DEFAULT_REGISTRY_URL
    return str(url).rstrip("/") if isinstance(url, str) and url else DEFAULT_REGISTRY_URL


def fetch_lineage(
    base_url: str,
    ref: ModelRef,
    *,
    timeout: float = 30.0,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Ask the registry at ``base_url`` for ``ref``'s lineage.

    Raises:
        LineageError: The registry refused (its message; exit code 2 for a bad
            request, 1 for an unknown model, version or alias) or cannot be reached.
    """
    try:
        response = httpx.get(
            f"{base_url}{LINEAGE_PATH}", params=ref.query(), timeout=timeout, headers=headers
        )
    except httpx.HTTPError as exc:
        raise LineageError(f"cannot reach the registry at {base_url}: {exc}") from exc
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code == 200 and isinstance(body, dict):
        return body
    message = body.get("message") if isinstance(body, dict) else None
    if not message:
        message = f"the registry at {base_url} answered {response.status_code}"
        if response.status_code == 404:
            message += " (is it a driftloop registry with the lineage endpoint?)"
    code = _EXIT_USAGE if response.status_code == 400 else 1
    raise LineageError(str(message), exit_code=code)


# -- the timeline ----------------------------------------------------------------------


def short_type(event_type: str) -> str:
    """``driftloop.monitor.drift.detected`` → ``drift.detected``."""
    parts = event_type.split(".")
    if parts[0] == "driftloop" and len(parts) > 3:
        return ".".join(parts[2:])
    return event_type


def _num(value: Any, spec: str = ".2f") -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return format(value, spec) if math.isfinite(value) else str(value)
    return str(value)


def _version(value: Any) -> str:
    return f"v{value}" if value not in (None, "") else "v?"


def _report(summary: Mapping[str, Any]) -> str:
    url = summary.get("report_url") or summary.get("report_id")
    return f" report: {url}" if url else ""


def _created(s: Mapping[str, Any], version: str) -> str:
    text = f"{_version(s.get('version'))} registered"
    if s.get("run_id"):
        text += f" from run {s['run_id']}"
    if s.get("training_job_id"):
        text += f" by job {s['training_job_id']}"
    return text


def _alias_set(s: Mapping[str, Any], version: str) -> str:
    target = _version(s.get("version"))
    previous = s.get("previous_version")
    if previous is not None:
        text = f"{s.get('alias')}: {_version(previous)} → {target}"
    else:
        text = f"{s.get('alias')} → {target} (new)"
    if s.get("cause_event_id"):
        cause = short_type(str(s.get("cause_event_type", ""))) or "event"
        text += f" (cause {cause} {s['cause_event_id']})"
    return text


def _alias_deleted(s: Mapping[str, Any], version: str) -> str:
    return f"{s.get('alias')} deleted (was {_version(s.get('version'))})"


def _drift_detected(s: Mapping[str, Any], version: str) -> str:
    drifted: Sequence[str] = s.get("drifted_columns") or []
    text = (
        f"{version}: {len(drifted)}/{s.get('columns', '?')} columns drifted "
        f"(share {_num(s.get('drift_share', '?'))})"
    )
    if drifted:
        text += f" [{', '.join(drifted)}]"
    return text + _episode(s) + _report(s)


def _drift_cleared(s: Mapping[str, Any], version: str) -> str:
    share = _num(s.get("drift_share", "?"))
    return f"{version}: drift cleared (share {share})" + _episode(s) + _report(s)


def _performance_degraded(s: Mapping[str, Any], version: str) -> str:
    side = "below" if s.get("higher_is_better") else "above"
    return (
        f"{version}: {s.get('metric')} {_num(s.get('value'), '.4g')} {side} "
        f"{_num(s.get('threshold'), '.4g')} on {s.get('labelled_rows', 0)} labelled rows"
        + _episode(s)
        + _report(s)
    )


def _episode(s: Mapping[str, Any]) -> str:
    return f" (episode {s['episode_id']})" if s.get("episode_id") else ""


def _performance_recovered(s: Mapping[str, Any], version: str) -> str:
    return (
        f"{version}: {s.get('metric')} {_num(s.get('value'), '.4g')} meets "
        f"{_num(s.get('threshold'), '.4g')} again" + _episode(s)
    )


def _escalated(s: Mapping[str, Any], version: str) -> str:
    jobs: Sequence[str] = s.get("job_ids") or []
    return (
        f"retraining stopped, a person must look ({s.get('rule', '?')}): {s.get('reason', '')}"
        f"{_episode(s)}; jobs {', '.join(jobs) or '-'}"
    )


def _requested(s: Mapping[str, Any], version: str) -> str:
    text = f"job {s.get('job_id')}: {s.get('trigger_kind', 'unspecified')} trigger"
    if s.get("trigger_event_id"):
        text += f" {s['trigger_event_id']}"
    return text + (f": {s['reason']}" if s.get("reason") else "") + _episode(s)


def _started(s: Mapping[str, Any], version: str) -> str:
    text = f"job {s.get('job_id')} started (attempt {s.get('attempt', 1)})"
    return text + (f" run {s['run_id']}" if s.get("run_id") else "")


def _completed(s: Mapping[str, Any], version: str) -> str:
    text = f"job {s.get('job_id')}: {_version(s.get('model_version'))}"
    evaluation: Mapping[str, Any] = s.get("evaluation") or {}
    if evaluation.get("metric"):
        text += f" {evaluation['metric']} {_num(evaluation.get('challenger_score'), '.4g')}"
        if "champion_score" in evaluation:
            champion = _version(evaluation.get("champion_version"))
            text += f" vs champion {champion} {_num(evaluation['champion_score'], '.4g')}"
        if evaluation.get("evaluation_rows"):
            text += f" on {evaluation['evaluation_rows']} rows"
            if evaluation.get("holdout_start"):
                text += f" ({evaluation['holdout_start']} .. {evaluation.get('holdout_end')})"
        if evaluation.get("scored_by"):
            text += f", scored by the {evaluation['scored_by']}"
    if s.get("promoted"):
        return text + f", promoted to {s.get('alias') or 'champion'}"
    return text + ", not promoted"


def _failed(s: Mapping[str, Any], version: str) -> str:
    text = f"job {s.get('job_id')} failed in {s.get('stage', '?')}: "
    text += f"{s.get('error_type', '')}: {s.get('error', '')}"
    return text + (" (will retry)" if s.get("will_retry") else "")


_DESCRIBE: dict[str, Callable[[Mapping[str, Any], str], str]] = {
    "model_version.created": _created,
    "alias.set": _alias_set,
    "alias.deleted": _alias_deleted,
    "drift.detected": _drift_detected,
    "drift.cleared": _drift_cleared,
    "performance.degraded": _performance_degraded,
    "performance.recovered": _performance_recovered,
    "training.requested": _requested,
    "training.started": _started,
    "training.completed": _completed,
    "training.failed": _failed,
    "training.escalated": _escalated,
}


def describe(event: Mapping[str, Any]) -> str:
    """The key facts of one event of the lineage answer, in a line."""
    summary: Mapping[str, Any] = event.get("summary") or {}
    facts = _DESCRIBE.get(short_type(str(event.get("type", ""))))
    if facts is None:  # a type newer than this command
        return ", ".join(f"{k}={v}" for k, v in summary.items())
    return facts(summary, _version(event.get("version")))


def _header(body: Mapping[str, Any]) -> list[str]:
    name = body.get("name", "?")
    aliases: Sequence[Mapping[str, Any]] = body.get("aliases") or []
    version = body.get("version")
    if version is None:
        moves = ", ".join(f"{a.get('alias')} → v{a.get('version')}" for a in aliases)
        return [f"{name}" + (f" (aliases: {moves})" if moves else "")]
    held = [str(a.get("alias")) for a in aliases if str(a.get("version")) == str(version)]
    lines = [f"{name} v{version}" + (f" (@{', @'.join(held)})" if held else "")]
    lineage: Mapping[str, Any] = body.get("lineage") or {}
    rows: list[tuple[str, str]] = []
    if lineage.get("run_id"):
        experiment = lineage.get("experiment_id")
        rows.append(
            ("run", lineage["run_id"] + (f" (experiment {experiment})" if experiment else ""))
        )
    for key in ("metrics", "params"):
        values: Mapping[str, Any] = lineage.get(key) or {}
        if values:
            rows.append(
                (key, ", ".join(f"{k}={_num(v, '.4g')}" for k, v in sorted(values.items())))
            )
    for dataset in lineage.get("datasets") or []:
        context = f" ({dataset['context']})" if dataset.get("context") else ""
        described = f"{dataset.get('name', '')} digest {dataset.get('digest')}{context}"
        rows.append(("dataset", described))
    if lineage.get("feature_views"):
        rows.append(("features", ", ".join(lineage["feature_views"])))
    trigger: Mapping[str, Any] = lineage.get("triggering_event") or {}
    if trigger.get("id"):
        rows.append(("trigger", f"{short_type(str(trigger.get('type', '')))} {trigger['id']}"))
    if lineage.get("training_job_id"):
        rows.append(("job", lineage["training_job_id"]))
    width = max((len(label) for label, _ in rows), default=0)
    lines += [f"  {label.ljust(width)}  {value}" for label, value in rows]
    return lines


def _time(value: Any) -> str:
    """``2026-11-30T15:02:03.123456Z`` → ``2026-11-30T15:02:03.123Z``."""
    text = str(value or "")
    match = re.fullmatch(r"(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?Z", text)
    if match is None:
        return text
    return f"{match.group(1)}.{(match.group(2) or '').ljust(3, '0')[:3]}Z"


def format_lineage(body: Mapping[str, Any]) -> str:
    """The registry's lineage answer as text: a header, then one line per event."""
    lines = _header(body)
    events: Sequence[Mapping[str, Any]] = body.get("events") or []
    lines.append("")
    if not events:
        lines.append("no events recorded")
        return "\n".join(lines) + "\n"
    kinds = [short_type(str(e.get("type", ""))) for e in events]
    width = max(len(kind) for kind in kinds)
    lines += [
        f"{_time(event.get('time'))}  {kind.ljust(width)}  {event.get('id')}  {describe(event)}"
        for event, kind in zip(events, kinds, strict=True)
    ]
    return "\n".join(lines) + "\n"
