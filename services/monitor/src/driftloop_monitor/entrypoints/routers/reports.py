"""Reports: Evidently's HTML view and JSON, and reports made on request for a window."""

from __future__ import annotations

import html
import json
from typing import Annotated, Any

from fastapi import APIRouter, Path
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, Field

from driftloop_kit.auth import READER, WRITER
from driftloop_kit.errors import NotFound
from driftloop_kit.public_urls import PublicBaseUrlDep
from driftloop_monitor.entrypoints.deps import MonitorDep, StoreDep

router = APIRouter(prefix="/reports", tags=["reports"])

ReportId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_.-]{1,64}$", description="A report id.")]


class ReportRequest(BaseModel):
    """Ask for the full report of a decided window."""

    window_id: str = Field(
        min_length=1, description="The window, as in the drift history.", examples=["iris/3/..."]
    )


class ReportLink(BaseModel):
    """Where a report is."""

    report_id: str
    url: str
    json_url: str


@router.post(
    "",
    status_code=201,
    summary="Make (or find) the Evidently report of a window",
    dependencies=[WRITER],
)
async def request_report(
    body: ReportRequest, monitor: MonitorDep, base_url: PublicBaseUrlDep
) -> ReportLink:
    report_id = await monitor.reports.for_window(body.window_id)
    base = monitor.reports.url(report_id, base_url=base_url)
    return ReportLink(report_id=report_id, url=base, json_url=f"{base}/json")


@router.get(
    "/{report_id}",
    response_class=HTMLResponse,
    summary="The report as HTML (Evidently's own view for drift reports)",
    dependencies=[READER],
)
async def report_html(report_id: ReportId, store: StoreDep, monitor: MonitorDep) -> Response:
    row = await _report(store, report_id)
    if row["has_html"]:
        page = await monitor.files.read_html(report_id)
        if page is not None:
            return HTMLResponse(page)
    return HTMLResponse(_plain_html(report_id, json.loads(row["body"])))


@router.get(
    "/{report_id}/json",
    summary="The report as JSON (Evidently's snapshot for drift)",
    dependencies=[READER],
)
async def report_json(report_id: ReportId, store: StoreDep) -> Response:
    row = await _report(store, report_id)
    return Response(row["body"], media_type="application/json")


async def _report(store: Any, report_id: str) -> dict[str, Any]:
    row: dict[str, Any] | None = await store.get_report(report_id)
    if row is None:
        raise NotFound(f"no report {report_id!r}")
    return row


def _plain_html(report_id: str, body: dict[str, Any]) -> str:
    rows = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>"
        for k, v in body.items()
    )
    return (
        f"<!doctype html><html><head><title>{html.escape(report_id)}</title></head>"
        f"<body><h1>{html.escape(report_id)}</h1><table>{rows}</table></body></html>"
    )
