"""Settings of the console (``DRIFTLOOP_CONSOLE_*``)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from driftloop_kit.settings import ServiceSettings


class ConsoleSettings(ServiceSettings):
    """The console: web pages that read the other services and the event topics.

    It owns no data (its ``database_url`` is never opened) and holds no privilege of
    its own: every upstream call carries the viewer's credential.
    """

    service_name: ClassVar[str] = "console"
    default_port: ClassVar[int] = 8090

    tracking_url: str = Field(
        default="http://127.0.0.1:5000", description="Base URL of the tracking service."
    )
    registry_url: str = Field(
        default="http://127.0.0.1:5001", description="Base URL of the registry."
    )
    trainer_url: str = Field(
        default="http://127.0.0.1:8008", description="Base URL of the trainer."
    )
    monitor_url: str = Field(
        default="http://127.0.0.1:8006", description="Base URL of the monitor."
    )
    serving_url: str = Field(
        default="http://127.0.0.1:8080", description="Base URL of serving (its /metrics)."
    )
    upstream_timeout_seconds: float = Field(
        default=3.0,
        gt=0,
        le=60,
        description=(
            "Seconds one upstream call may take before its panel shows that the service "
            "did not answer (the rest of the page renders)."
        ),
    )
    actions_enabled: bool = Field(
        default=False,
        description=(
            "Show the actions (roll back, train now, move an alias, edit a monitor policy). "
            "Each is sent upstream with the viewer's credential, so the upstream's role "
            "check applies and records the acting user."
        ),
    )
    page_size: int = Field(default=25, ge=5, le=200, description="Rows per page of every list.")
    event_feed: bool = Field(
        default=True,
        description=(
            "Follow the event topics (read-only, from the latest offsets, no consumer "
            "group) for the live feed."
        ),
    )
    event_feed_buffer: int = Field(
        default=200,
        ge=10,
        le=10_000,
        description="Recent events kept in memory for a feed that (re)connects.",
    )
    cookie_secure: bool = Field(
        default=False,
        description="Mark the login cookie `Secure` (set it when served over HTTPS).",
    )
