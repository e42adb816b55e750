"""Actions: a form, a confirmation, then the call upstream with the viewer's credential.

The console adds no privilege: its routes need ``reader`` (to see the confirmation);
the upstream's own role check (``deployer`` to roll back, train, move an alias or change
a policy, ``writer`` for a report) decides, and records the viewer as the one who acted.
A refusal is shown as the upstream gave it. All of it is off unless
``DRIFTLOOP_CONSOLE_ACTIONS_ENABLED=true``.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from driftloop_console.adapters.upstream import UpstreamError
from driftloop_console.domain.actions import ACTIONS, ActionRefused, parse_action
from driftloop_console.entrypoints.deps import ConsoleDep, CredentialDep
from driftloop_console.entrypoints.templating import render
from driftloop_console.service_layer.console import send_action
from driftloop_kit.auth import READER
from driftloop_kit.errors import InvalidInput, NotFound

router = APIRouter(prefix="/actions", tags=["actions"], default_response_class=HTMLResponse)

#: Largest action form accepted (a policy document is the largest field).
MAX_FORM_BYTES = 64 * 1024

Kind = Annotated[str, Path(pattern="^(" + "|".join(ACTIONS) + ")$", description="The action.")]


async def _form(request: Request) -> dict[str, list[str]]:
    size = 0
    chunks = []
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_FORM_BYTES:
            raise InvalidInput(f"the form is larger than {MAX_FORM_BYTES} bytes")
        chunks.append(chunk)
    return parse_qs(b"".join(chunks).decode(errors="replace"), keep_blank_values=True)


@router.post(
    "/{kind}",
    dependencies=[READER],
    summary="Confirm an action, then send it upstream with the viewer's credential",
)
async def act(
    request: Request, kind: Kind, console: ConsoleDep, credential: CredentialDep
) -> Response:
    """Without `confirm=yes`: the confirmation page. With it: the call upstream, then the
    outcome (the upstream's refusal, a 403 for a role too low, shown as it came)."""
    if not request.app.state.settings.actions_enabled:
        raise NotFound("actions are off (DRIFTLOOP_CONSOLE_ACTIONS_ENABLED=true turns them on)")
    form = await _form(request)
    try:
        action = parse_action(kind, form)
    except ActionRefused as error:
        raise InvalidInput(str(error)) from None
    if (form.get("confirm") or [""])[0] != "yes":
        return render(request, "confirm.html", {"action": action})
    try:
        answer = await send_action(console.upstreams, action, credential)
    except UpstreamError as error:
        return render(
            request,
            "action_done.html",
            {"action": action, "error": str(error), "denied": error.denied, "answer": None},
            status_code=error.status if error.status and error.status < 500 else 502,
        )
    if action.kind == "report" and isinstance(answer, dict) and answer.get("report_id"):
        return RedirectResponse(f"/reports/{quote(str(answer['report_id']), safe='')}", 303)
    return render(
        request,
        "action_done.html",
        {"action": action, "error": None, "denied": False, "answer": answer},
    )
