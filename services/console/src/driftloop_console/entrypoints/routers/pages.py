"""The console's pages (HTML)."""

from __future__ import annotations

import re
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from driftloop_console.adapters.upstream import UpstreamError
from driftloop_console.entrypoints.deps import ConsoleDep, CredentialDep, FeedDep, PageDep
from driftloop_console.entrypoints.templating import render
from driftloop_kit.auth import READER
from driftloop_kit.errors import DriftloopError, InvalidInput

router = APIRouter(tags=["pages"], default_response_class=HTMLResponse)

#: An upstream's opaque page token (MLflow's), passed back as it came.
PageToken = Annotated[str | None, Query(max_length=2048, description="Next page's token.")]
#: Most runs compared at once, and points per metric history.
MAX_COMPARED = 10
MAX_POINTS = 1000
RUN_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
REPORT_SANDBOX = "sandbox allow-scripts allow-popups allow-downloads"


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


Name = Annotated[str, Path(min_length=1, max_length=256, description="Registered model name.")]
Id = Annotated[str, Path(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$")]


@router.get("/models/{name}", dependencies=[READER], summary="A model")
async def model_page(
    *,
    request: Request,
    name: Name,
    console: ConsoleDep,
    credential: CredentialDep,
    page: PageDep = 1,
    history_page: PageDep = 1,
) -> HTMLResponse:
    """Versions with the gate's figures, the alias history, the trigger policy, decisions
    (`page` pages the versions, `history_page` the alias moves and the decisions)."""
    found = await console.model(credential, name, page=page, history_page=history_page)
    return render(request, "model.html", found)


@router.get("/models/{name}/versions/{version}", dependencies=[READER], summary="A version")
async def version_page(
    *,
    request: Request,
    name: Name,
    version: Annotated[int, Path(ge=1, le=2**63 - 1)],
    console: ConsoleDep,
    credential: CredentialDep,
) -> HTMLResponse:
    """One version: where it came from, its gate, what the monitor counted."""
    found = await console.version(credential, name, str(version))
    return render(request, "version.html", found)


@router.get("/models/{name}/drift", dependencies=[READER], summary="Drift of a model")
async def drift_page(
    *,
    request: Request,
    name: Name,
    console: ConsoleDep,
    credential: CredentialDep,
    version: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    before_id: Annotated[int | None, Query(ge=0, le=2**63 - 1)] = None,
) -> HTMLResponse:
    """Each column's drift score and threshold over the windows, drifted columns marked,
    the share of drifted columns, performance once labels joined, the reports."""
    found = await console.drift(credential, name, version=version, before_id=before_id)
    return render(request, "drift.html", found)


@router.get("/window-report", dependencies=[READER], summary="The report of a window")
async def window_report(
    console: ConsoleDep,
    credential: CredentialDep,
    window_id: Annotated[str, Query(min_length=1, max_length=300, pattern=r"^[\w.:/@+-]+$")],
) -> RedirectResponse:
    """The monitor makes (or finds) the window's Evidently report, then the page shows it.
    Making one is the monitor's `writer` call, made with the viewer's credential."""
    try:
        report_id = await console.report_of_window(credential, window_id)
    except UpstreamError as error:
        raise DriftloopError(str(error), status_code=error.status or 502) from None
    return RedirectResponse(f"/reports/{quote(report_id, safe='')}", status_code=303)


@router.get("/reports/{report_id}", dependencies=[READER], summary="A window's report")
async def report_page(
    report_id: Id, console: ConsoleDep, credential: CredentialDep
) -> HTMLResponse:
    """The monitor's (Evidently's) report of a window, fetched with the viewer's credential."""
    try:
        page = await console.report(credential, report_id)
    except UpstreamError as error:
        raise DriftloopError(str(error), status_code=error.status or 502) from None
    # Another service's HTML, scripts included: run it in an opaque origin, where it can
    # neither send the viewer's cookie nor post a form the console would accept.
    return HTMLResponse(page, headers={"Content-Security-Policy": REPORT_SANDBOX})


@router.get("/jobs/{job_id}", dependencies=[READER], summary="A job")
async def job_page(
    *,
    request: Request,
    job_id: Id,
    console: ConsoleDep,
    credential: CredentialDep,
    tail: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> HTMLResponse:
    """Stages with times, logs, the run it logged, the version, the gate's decision."""
    found = await console.job(credential, job_id, tail=tail)
    return render(request, "job.html", found)


@router.get("/experiments", dependencies=[READER], summary="Experiments")
async def experiments_page(
    request: Request, console: ConsoleDep, credential: CredentialDep, page_token: PageToken = None
) -> HTMLResponse:
    """A page of experiments, each linked to its runs."""
    found = await console.experiments(credential, page_token=page_token)
    return render(request, "experiments.html", {"experiments": found, "page_token": page_token})


@router.get("/experiments/{experiment_id}/runs", dependencies=[READER], summary="Runs")
async def runs_page(
    *,
    request: Request,
    experiment_id: Id,
    console: ConsoleDep,
    credential: CredentialDep,
    filter: Annotated[str, Query(max_length=1000, description="Tracking's filter grammar.")] = "",
    page_token: PageToken = None,
) -> HTMLResponse:
    """An experiment's runs, searched with the tracking filter grammar
    (`metrics.accuracy > 0.9 and params.estimator = 'rf'`); pick some to compare."""
    found = await console.runs(
        credential, experiment_id, filter_string=filter, page_token=page_token
    )
    return render(request, "runs.html", found)


@router.get("/runs/compare", dependencies=[READER], summary="Runs compared")
async def compare_page(
    request: Request,
    console: ConsoleDep,
    credential: CredentialDep,
    run_ids: Annotated[str, Query(max_length=2000, description="Comma-separated run ids.")] = "",
) -> HTMLResponse:
    """Runs side by side and a chart of each metric by step."""
    ids = [r.strip() for r in run_ids.split(",") if r.strip()]
    if not 1 <= len(ids) <= MAX_COMPARED:
        raise InvalidInput(f"name 1 to {MAX_COMPARED} runs in run_ids (comma-separated)")
    if any(not RUN_ID.fullmatch(r) for r in ids):
        raise InvalidInput("a run id has letters, digits, '-' and '_' only")
    found = await console.compare(credential, list(dict.fromkeys(ids)), max_points=MAX_POINTS)
    return render(request, "compare.html", found)


@router.get("/runs/{run_id}", dependencies=[READER], summary="A run")
async def run_page(
    request: Request, run_id: Id, console: ConsoleDep, credential: CredentialDep
) -> HTMLResponse:
    """A run's info, metrics, params and tags."""
    found = await console.run(credential, run_id)
    return render(request, "run.html", found)


@router.get("/models/{name}/lineage", dependencies=[READER], summary="Lineage of a version")
async def lineage_page(
    request: Request,
    name: Name,
    console: ConsoleDep,
    credential: CredentialDep,
    version: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
) -> HTMLResponse:
    """Feature views → run → version → alias moves → drift → trigger → retraining → next
    version, as a picture (the champion's chain unless a version is named)."""
    found = await console.lineage(credential, name, version=str(version) if version else None)
    return render(request, "lineage.html", found)
