"""The live feed as server-sent events."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from driftloop_console.adapters.feed import EventFeed
from driftloop_console.entrypoints.deps import FeedDep
from driftloop_kit.auth import READER
from driftloop_kit.errors import DriftloopError, NotFound


class Unavailable(DriftloopError):
    """The feed is not reading the topics (503)."""

    status_code = 503
    error_code = "TEMPORARILY_UNAVAILABLE"


router = APIRouter(tags=["live events"])

#: Seconds between keep-alive comments (proxies close idle streams).
HEARTBEAT_SECONDS = 15.0


@router.get(
    "/events/stream",
    dependencies=[READER],
    summary="The loop's events as they happen (text/event-stream)",
    response_class=StreamingResponse,
)
async def event_stream(request: Request, feed: FeedDep) -> StreamingResponse:
    """Every event published on the loop's topics from now on, one server-sent event
    each (`event: loop`, `data`: id, type, source, time, subject, topic, model, summary)."""
    if feed is None:
        raise NotFound("the event feed is off (DRIFTLOOP_CONSOLE_EVENT_FEED=false)")
    if not feed.running:
        raise Unavailable("the event feed is not running")
    return StreamingResponse(
        _stream(request, feed),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def _stream(request: Request, feed: EventFeed) -> AsyncIterator[str]:
    yield "retry: 2000\n\n"
    with feed.subscribe() as queue:
        while not await request.is_disconnected():
            try:
                event = await asyncio.wait_for(queue.get(), timeout=HEARTBEAT_SECONDS)
            except TimeoutError:
                yield ": keep-alive\n\n"
                continue
            yield f"id: {event.id}\nevent: loop\ndata: {event.as_json()}\n\n"
