"""Liveness (``/healthz``) and readiness (``/readyz``) endpoints.

A readiness check is any ``async def check() -> None`` that raises when the
service cannot serve (database down, model not loaded). Checks run concurrently,
each under its own timeout, on every ``/readyz`` call.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from driftloop_kit.errors import DriftloopError

__all__ = [
    "DEFAULT_CHECK_TIMEOUT",
    "Check",
    "Health",
    "Readiness",
    "ReadinessReport",
    "health_router",
]

logger = logging.getLogger(__name__)

#: A readiness check: returns when ready, raises (with a useful message) when not.
Check = Callable[[], Awaitable[None]]

#: Seconds each check may take before it counts as failed.
DEFAULT_CHECK_TIMEOUT = 2.0


class Health(BaseModel):
    """Body of ``/healthz``."""

    status: Literal["ok"] = "ok"


class ReadinessReport(BaseModel):
    """Body of ``/readyz``."""

    status: Literal["ready", "not ready"]
    checks: dict[str, str] = Field(
        description='Outcome per check: "ok" or "error: <reason>".',
        examples=[{"database": "ok", "kafka": "error: connection refused"}],
    )
    details: dict[str, dict[str, str]] = Field(
        default_factory=dict,
        description="Information that does not decide readiness (e.g. a model version "
        "that failed to load while the previous one keeps serving).",
        examples=[{"models": {"iris@champion": "version 3: cannot load ...; serving 2"}}],
    )

    @property
    def ready(self) -> bool:
        """Whether every check passed."""
        return self.status == "ready"


class Readiness:
    """The set of readiness checks of one app; checks may be added at any time.

    Args:
        checks: Initial checks by name.
        timeout: Seconds each check may take.
    """

    def __init__(
        self, checks: Mapping[str, Check] | None = None, *, timeout: float = DEFAULT_CHECK_TIMEOUT
    ) -> None:
        self._checks: dict[str, Check] = dict(checks or {})
        self._details: dict[str, Callable[[], Mapping[str, str]]] = {}
        self.timeout = timeout

    @property
    def names(self) -> list[str]:
        """Names of the registered checks."""
        return list(self._checks)

    def add(self, name: str, check: Check) -> None:
        """Register (or replace) the check called ``name``."""
        self._checks[name] = check

    def add_details(self, name: str, provider: Callable[[], Mapping[str, str]]) -> None:
        """Report ``provider()`` under ``details[name]``; it never makes the app unready."""
        self._details[name] = provider

    def remove(self, name: str) -> None:
        """Drop the check called ``name`` if present."""
        self._checks.pop(name, None)

    async def run(self) -> ReadinessReport:
        """Run every check concurrently and report each outcome."""
        names = list(self._checks)
        outcomes = await asyncio.gather(*(self._run_one(n, self._checks[n]) for n in names))
        results = dict(zip(names, outcomes, strict=True))
        ready = all(outcome == "ok" for outcome in outcomes)
        details = {name: dict(provider()) for name, provider in self._details.items()}
        return ReadinessReport(
            status="ready" if ready else "not ready", checks=results, details=details
        )

    async def _run_one(self, name: str, check: Check) -> str:
        deadline = asyncio.timeout(self.timeout)
        try:
            async with deadline:
                await check()
        except TimeoutError as exc:
            expired = deadline.expired()
            outcome = f"error: timed out after {self.timeout:g}s" if expired else _describe(exc)
        except Exception as exc:
            logger.warning("readiness check %r failed: %r", name, exc)
            return _describe(exc)
        else:
            return "ok"
        logger.warning("readiness check %r failed: %s", name, outcome.removeprefix("error: "))
        return outcome


def _describe(exc: BaseException) -> str:
    """What ``/readyz`` says of a failed check: the message of the service's own errors,
    written for clients; only the type of anything else (a driver's message may hold a
    host, a user or a path; the log has it whole)."""
    if isinstance(exc, DriftloopError):
        return f"error: {exc.message}"
    return f"error: {type(exc).__name__}"


def health_router(readiness: Readiness) -> APIRouter:
    """Routes ``GET /healthz`` and ``GET /readyz`` backed by ``readiness``."""
    router = APIRouter(tags=["health"])

    @router.get("/healthz", summary="Liveness: the process is up")
    async def healthz() -> Health:
        return Health()

    @router.get(
        "/readyz",
        summary="Readiness: every dependency answers",
        response_model=ReadinessReport,
        responses={503: {"model": ReadinessReport, "description": "A check failed."}},
    )
    async def readyz() -> JSONResponse:
        report = await readiness.run()
        return JSONResponse(report.model_dump(), status_code=200 if report.ready else 503)

    return router
