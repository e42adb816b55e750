"""Builds the console's parts once, for its app."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from driftloop_bus.security import configure
from driftloop_console.adapters.feed import EventFeed
from driftloop_console.adapters.upstream import Upstreams
from driftloop_console.service_layer.console import Pages
from driftloop_console.settings import ConsoleSettings

__all__ = ["Container", "bootstrap"]


@dataclass
class Container:
    """The console's parts."""

    upstreams: Upstreams
    console: Pages
    feed: EventFeed | None


def bootstrap(
    settings: ConsoleSettings, *, transport: httpx.AsyncBaseTransport | None = None
) -> Container:
    """The console's parts, built without connecting (the app's lifespan starts them)."""
    upstreams = Upstreams(
        {
            "tracking": settings.tracking_url,
            "registry": settings.registry_url,
            "trainer": settings.trainer_url,
            "monitor": settings.monitor_url,
            "serving": settings.serving_url,
        },
        timeout=settings.upstream_timeout_seconds,
        transport=transport,
    )
    feed = None
    if settings.event_feed:
        configure(settings)
        feed = EventFeed(settings.kafka_bootstrap_servers, buffer=settings.event_feed_buffer)
    return Container(
        upstreams=upstreams,
        console=Pages(upstreams, page_size=settings.page_size),
        feed=feed,
    )
