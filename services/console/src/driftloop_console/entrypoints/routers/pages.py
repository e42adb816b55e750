"""The console's pages (HTML)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from driftloop_console.entrypoints.deps import ConsoleDep, CredentialDep, FeedDep
from driftloop_console.entrypoints.templating import render
from driftloop_kit.auth import READER

router = APIRouter(tags=["pages"], default_response_class=HTMLResponse)

#: An upstream's opaque page token (MLflow's), passed back as it came.
PageToken = Annotated[str | None, Query(max_length=2048, description="Next page's token.")]


@router.get("/", dependencies=[READER], summary="The loop overview")
async def overview(
    request: Request,
    console: ConsoleDep,
    credential: CredentialDep,
    feed: FeedDep,
    page_token: PageToken = None,
) -> HTMLResponse:
    """Per model: who is champion, challenger and previous, since when and why; the last
    drift decision; the running job; serving's traffic by version; the live feed."""
    found = await console.overview(credential, page_token=page_token)
    recent = list(reversed(feed.recent)) if feed is not None else []
    return render(
        request,
        "overview.html",
        {**found, "recent_events": recent[:50], "feed_on": feed is not None},
    )
