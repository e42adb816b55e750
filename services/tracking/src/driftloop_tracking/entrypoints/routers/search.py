"""Run and experiment search (``POST /api/2.0/mlflow/runs/search``, ``.../experiments/search``).

MLflow's request and response shapes; the filter grammar is MLflow's plus ``OR``,
``NOT`` and parentheses (see :mod:`driftloop_tracking.domain.search`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, Query, Response
from pydantic import Field

from driftloop_kit.auth import READER
from driftloop_kit.responses import MlflowJSONResponse
from driftloop_tracking.domain.model import Model
from driftloop_tracking.domain.search import experiment_search, run_search
from driftloop_tracking.entrypoints.deps import ExperimentsDep, RunsDep
from driftloop_tracking.entrypoints.responses import json_response

router = APIRouter(
    prefix="/api/2.0/mlflow", tags=["search"], default_response_class=MlflowJSONResponse
)


def _render(key: str, items: Sequence[dict[str, Any]], token: str | None) -> Response:
    """The page, rendered once (a page can hold thousands of runs; see ``responses``)."""
    body: dict[str, Any] = {key: items}
    if token:
        body["next_page_token"] = token
    return json_response(body)


class SearchRuns(Model):
    """MLflow's ``SearchRuns`` request."""

    experiment_ids: list[str | int] = Field(default_factory=list)
    filter: str | None = None
    run_view_type: str | int | None = None
    max_results: int | None = None
    order_by: list[str] = Field(default_factory=list)
    page_token: str | None = None


class SearchExperiments(Model):
    """MLflow's ``SearchExperiments`` request."""

    filter: str | None = None
    view_type: str | int | None = None
    max_results: int | None = None
    order_by: list[str] = Field(default_factory=list)
    page_token: str | None = None


@router.post("/runs/search", dependencies=[READER])
async def post_search_runs(body: SearchRuns, runs: RunsDep) -> Response:
    """Runs of the given experiments matching a filter, ordered, one page at a time.

    Returns ``{"runs": [...], "next_page_token": ...}``; the token is left out on the
    last page. A malformed filter or order_by is a 400 ``INVALID_PARAMETER_VALUE``.
    """
    search = run_search(
        experiment_ids=body.experiment_ids,
        filter_=body.filter,
        view_type=body.run_view_type,
        max_results=body.max_results,
        order_by=body.order_by,
        page_token=body.page_token,
    )
    found, token = await runs.search(search)
    return _render("runs", found, token)


async def _search_experiments(body: SearchExperiments, experiments: ExperimentsDep) -> Response:
    search = experiment_search(
        filter_=body.filter,
        view_type=body.view_type,
        max_results=body.max_results,
        order_by=body.order_by,
        page_token=body.page_token,
    )
    found, token = await experiments.search(search)
    items = [e.model_dump(exclude_none=True, by_alias=True) for e in found]
    return _render("experiments", items, token)


@router.post("/experiments/search", dependencies=[READER])
async def post_search_experiments(body: SearchExperiments, experiments: ExperimentsDep) -> Response:
    """Experiments matching a filter on name, tags and times, ordered, one page at a time."""
    return await _search_experiments(body, experiments)


@router.get("/experiments/search", dependencies=[READER])
async def get_search_experiments(
    *,
    experiments: ExperimentsDep,
    filter: str | None = None,
    view_type: str | None = None,
    max_results: int | None = None,
    order_by: list[str] = Query(default_factory=list),  # noqa: B008 - FastAPI's idiom
    page_token: str | None = None,
) -> Response:
    """The same search with query parameters, as MLflow's server also accepts."""
    body = SearchExperiments(
        filter=filter,
        view_type=view_type,
        max_results=max_results,
        order_by=order_by,
        page_token=page_token,
    )
    return await _search_experiments(body, experiments)
