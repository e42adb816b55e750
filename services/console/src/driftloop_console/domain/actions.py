"""The actions a viewer may take, each checked before it is confirmed and sent upstream.

An action is read from a posted form into a :class:`Action`: which service it goes to,
how (method, path, JSON body), and a sentence that says what it will do, shown on the
confirmation page. Anything wrong in the form is an :class:`ActionRefused` (a 400).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

__all__ = ["ACTIONS", "Action", "ActionRefused", "parse_action"]

#: A model name: any text without control characters (MLflow allows spaces, slashes...);
#: it is quoted into the upstream's path.
_NAME = re.compile(r"^[^\x00-\x1f\x7f]{1,256}$")
_ALIAS = re.compile(r"^[A-Za-z_][\w-]{0,62}$")
_WINDOW = re.compile(r"^[\w.:/@+-]{1,300}$")
#: Largest policy document accepted from the form.
MAX_POLICY_CHARS = 20_000
MAX_REASON_CHARS = 500


class ActionRefused(ValueError):
    """The form does not describe an action that can be sent."""


@dataclass(frozen=True)
class Action:
    """One action, ready to confirm and send.

    Attributes:
        kind: ``rollback``, ``train``, ``alias``, ``policy`` or ``report``.
        service: The upstream that does it.
        method: HTTP method.
        path: Path on the upstream.
        body: JSON body, if any.
        summary: What it does, in words, for the confirmation.
        model: The model it is about (the page to go back to), if any.
        fields: The form's fields, carried through the confirmation.
    """

    kind: str
    service: str
    method: str
    path: str
    summary: str
    body: Any = None
    model: str | None = None
    fields: dict[str, str] = field(default_factory=dict)


def _one(form: Mapping[str, list[str]], name: str, *, default: str | None = None) -> str:
    values = form.get(name)
    if not values:
        if default is not None:
            return default
        raise ActionRefused(f"the form lacks {name!r}")
    return values[0].strip()


def _model(form: Mapping[str, list[str]]) -> str:
    model = _one(form, "model")
    if not _NAME.match(model):
        raise ActionRefused(f"{model[:80]!r} is not a model name")
    return model


def _rollback(form: Mapping[str, list[str]]) -> Action:
    model = _model(form)
    return Action(
        kind="rollback",
        service="trainer",
        method="POST",
        path=f"/models/{quote(model, safe='')}/rollback",
        summary=f"Roll {model} back: champion returns to the previous version (they swap).",
        model=model,
        fields={"model": model},
    )


def _train(form: Mapping[str, list[str]]) -> Action:
    model = _model(form)
    reason = _one(form, "reason", default="") or "asked from the console"
    if len(reason) > MAX_REASON_CHARS:
        raise ActionRefused(f"the reason is longer than {MAX_REASON_CHARS} characters")
    force = _one(form, "force", default="") in ("on", "true", "1", "yes")
    return Action(
        kind="train",
        service="trainer",
        method="POST",
        path=f"/models/{quote(model, safe='')}/train",
        body={"reason": reason, "force": force},
        summary=(
            f"Train {model} now{' (skipping cooldown and debounce)' if force else ''}: {reason}"
        ),
        model=model,
        fields={"model": model, "reason": reason, "force": "on" if force else ""},
    )


def _alias(form: Mapping[str, list[str]]) -> Action:
    model = _model(form)
    alias = _one(form, "alias")
    if not _ALIAS.match(alias):
        raise ActionRefused(f"{alias[:80]!r} is not an alias name")
    version = _one(form, "version")
    if not version.isdigit() or not 1 <= int(version) <= 2**63 - 1:
        raise ActionRefused(f"{version[:40]!r} is not a version number")
    return Action(
        kind="alias",
        service="registry",
        method="POST",
        path="/api/2.0/mlflow/registered-models/alias",
        body={"name": model, "alias": alias, "version": version},
        summary=f"Move {model}@{alias} to version {version}.",
        model=model,
        fields={"model": model, "alias": alias, "version": version},
    )


def _policy(form: Mapping[str, list[str]]) -> Action:
    model = _model(form)
    text = _one(form, "policy")
    if len(text) > MAX_POLICY_CHARS:
        raise ActionRefused(f"the policy is longer than {MAX_POLICY_CHARS} characters")
    try:
        document = json.loads(text)
    except ValueError as error:
        raise ActionRefused(f"the policy is not JSON: {error}") from None
    if not isinstance(document, dict):
        raise ActionRefused("the policy must be a JSON object")
    document = {k: v for k, v in document.items() if v is not None}
    return Action(
        kind="policy",
        service="monitor",
        method="PUT",
        path=f"/policies/{quote(model, safe='')}",
        body=document,
        summary=f"Replace the monitor policy of {model} with the document below.",
        model=model,
        fields={"model": model, "policy": json.dumps(document, indent=2, sort_keys=True)},
    )


def _report(form: Mapping[str, list[str]]) -> Action:
    window = _one(form, "window_id")
    if not _WINDOW.match(window):
        raise ActionRefused("that is not a window id")
    return Action(
        kind="report",
        service="monitor",
        method="POST",
        path="/reports",
        body={"window_id": window},
        summary=f"Make the Evidently report of window {window}.",
        fields={"window_id": window},
    )


#: Every action, by the name in its URL (``/actions/<name>``).
ACTIONS = {
    "rollback": _rollback,
    "train": _train,
    "alias": _alias,
    "policy": _policy,
    "report": _report,
}


def parse_action(kind: str, form: Mapping[str, list[str]]) -> Action:
    """The action ``kind`` the form describes.

    Raises:
        ActionRefused: An unknown action, or a field missing or out of bounds.
    """
    build = ACTIONS.get(kind)
    if build is None:
        raise ActionRefused(f"no action {kind!r}; known: {', '.join(ACTIONS)}")
    return build(form)
