"""The console's routers."""

from __future__ import annotations

from driftloop_console.entrypoints.routers import actions, events, pages, session, static

ROUTERS = [session.router, static.router, events.router, pages.router, actions.router]

__all__ = ["ROUTERS"]
