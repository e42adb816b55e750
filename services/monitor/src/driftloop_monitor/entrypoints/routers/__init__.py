"""The monitor's REST resources."""

from __future__ import annotations

from fastapi import APIRouter

from driftloop_monitor.entrypoints.routers import drift, policies, references, reports

ROUTERS: list[APIRouter] = [drift.router, reports.router, policies.router, references.router]
