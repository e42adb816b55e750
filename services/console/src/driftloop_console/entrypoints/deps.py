"""FastAPI dependencies of the console's routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request

from driftloop_console.adapters.feed import EventFeed
from driftloop_console.service_layer.console import Pages

__all__ = ["ConsoleDep", "CredentialDep", "FeedDep", "PageDep"]


def get_console(request: Request) -> Pages:
    """The app's :class:`Pages`."""
    console: Pages = request.app.state.console
    return console


def get_feed(request: Request) -> EventFeed | None:
    """The app's event feed (None when ``event_feed`` is off)."""
    feed: EventFeed | None = request.app.state.feed
    return feed


def get_credential(request: Request) -> str | None:
    """The viewer's ``Authorization`` header (from the cookie or sent as is), forwarded
    to every upstream call."""
    return request.headers.get("authorization")


ConsoleDep = Annotated[Pages, Depends(get_console)]
FeedDep = Annotated[EventFeed | None, Depends(get_feed)]
CredentialDep = Annotated[str | None, Depends(get_credential)]
#: A 1-based page number of a list (bounded: the upstreams are asked for one page).
PageDep = Annotated[int, Query(ge=1, le=1000, description="Page of the list, from 1.")]
