"""The console after a real closed loop, in a real browser (issue 23).

``driftloop demo --keep-running`` (iris, free ports, the console among the services
``driftloop up`` starts) runs once for the module: v1 trained and promoted, the inputs
shifted, a drift alert, a retraining, the gate, v2 promoted. The pages are then read as
a user reads them: who is champion and why, the drift chart, the job's gate, the runs
compared. Every page visited leaves a full-page screenshot in ``test-artifacts/console/``
and fails the test on a console error or a failed request.

Marker e2e: the demo's loop costs minutes (5 to 8 on a 2-core machine under a load
average of 6 to 11), which ``make test``'s budget has no room for; ``make test-e2e``
runs it.
``DRIFTLOOP_BROWSER_LOOP=DIR`` reuses a loop left running by
``python -m tests.browser.loop DIR`` (seconds instead of minutes while working on a page).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page

from tests.browser.chromium import ARTIFACTS, RecordedPage
from tests.browser.conftest import OpenConsole
from tests.browser.loop import ClosedLoop, attach_closed_loop, start_closed_loop

# The first test's setup runs the demo's loop (minutes): the budget of the demo's own e2e test.
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

COLUMNS = ["petal_length", "petal_width", "sepal_length", "sepal_width"]


@pytest.fixture(scope="module")
def loop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClosedLoop]:
    given = os.environ.get("DRIFTLOOP_BROWSER_LOOP")
    if given:
        yield attach_closed_loop(Path(given))
        return
    running = start_closed_loop(tmp_path_factory.mktemp("console-loop"))
    print(f"the demo's loop closed in {running.seconds:.0f} s")
    try:
        assert "console" in running.urls, f"driftloop up started no console: {running.urls}"
        yield running
    finally:
        running.stop()


@pytest.fixture
def console(loop: ClosedLoop, open_console: OpenConsole) -> RecordedPage:
    page = open_console(loop.console_url)
    page.login(loop.token)
    return page


def _first(loop: ClosedLoop, kind: str, **facts: object) -> dict[str, Any]:
    found = loop.events(kind, **facts)
    assert found, f"no {kind} {facts} in the demo's timeline"
    return found[0]


def _retraining(loop: ClosedLoop) -> tuple[dict[str, Any], dict[str, Any]]:
    """The job that made the new champion, and the alert that started it."""
    completed = _first(
        loop, "trainer.training.completed", version=loop.result["new_version"], promoted=True
    )
    requested = _first(loop, "trainer.training.requested", job_id=completed["job_id"])
    alerts = [e for e in loop.result["timeline"] if e.get("event_id") == requested["trigger"]]
    assert alerts, f"the retraining's trigger {requested['trigger']} is not in the timeline"
    return completed, alerts[0]


def _painted(page: Page, canvas: str) -> bool:
    """Whether the canvas has any non-transparent pixel (Chart.js drew on it)."""
    return bool(
        page.evaluate(
            """(selector) => {
                const canvas = document.querySelector(selector);
                const pixels = canvas.getContext("2d")
                    .getImageData(0, 0, canvas.width, canvas.height).data;
                for (let i = 3; i < pixels.length; i += 4) { if (pixels[i] !== 0) return true; }
                return false;
            }""",
            canvas,
        )
    )


def test_the_overview_shows_v2_as_champion_with_the_drift_alert_as_its_cause(
    loop: ClosedLoop, console: RecordedPage
) -> None:
    model, v1, v2 = loop.result["model"], loop.result["first_version"], loop.result["new_version"]
    completed, alert = _retraining(loop)
    page = console.visit("/")
    card = page.locator(f'[data-testid="model-card"][data-model="{model}"]')
    assert card.get_by_test_id("alias-champion").get_attribute("data-version") == str(v2)
    assert card.get_by_test_id("alias-previous").get_attribute("data-version") == str(v1)
    cause = card.get_by_test_id("champion-cause")
    # The chain: champion v2 <- the job that made it <- the monitor's alert on v1.
    assert cause.get_by_role("link", name=f"v{v2}").is_visible()
    job_link = cause.locator(f'a[href="/jobs/{completed["job_id"]}"]')
    assert job_link.count() == 1, cause.inner_text()
    event = cause.get_by_test_id("cause-event").inner_text()
    # The alert's kind as the timeline names it (monitor.drift.detected), as the page does.
    assert event.endswith(alert["kind"].removeprefix("monitor.")), (event, alert["kind"])
    if alert["kind"] == "monitor.drift.detected":
        assert f"drift alert on v{v1}" in cause.inner_text()
    assert page.get_by_test_id("panel-error").count() == 0, page.get_by_test_id(
        "panel-error"
    ).all_inner_texts()
    # A request rate needs two looks at serving's counters: a first visit's "…" turns
    # into a figure by itself, without a reload.
    # (The card is swapped in anew by then: the cell is looked up at each try.)
    rate = (
        f'[data-testid="model-card"][data-model="{model}"] [data-testid="traffic"] '
        f'tr[data-version="{v2}"] [data-testid="version-rate"]'
    )
    page.wait_for_function(
        "(s) => /^[0-9]/.test((document.querySelector(s) || {}).textContent || '')",
        arg=rate,
        timeout=10_000,
    )
    if not os.environ.get("DRIFTLOOP_BROWSER_LOOP"):
        # The README's picture of the console: this page after a real closed loop.
        shutil.copyfile(console.screenshot("rates"), ARTIFACTS / "console-overview.png")


def test_the_drift_page_draws_one_series_per_column_and_marks_the_drifted_ones(
    loop: ClosedLoop, console: RecordedPage
) -> None:
    model, v1 = loop.result["model"], loop.result["first_version"]
    alert = next(
        e
        for e in loop.events("monitor.drift.detected", version=v1)
        if e["time"] >= loop.result["shift_time"]
    )
    console.visit("/")
    page = console.page
    page.locator(f'[data-testid="model-card"][data-model="{model}"]').get_by_role(
        "link", name="drift"
    ).click()
    page.wait_for_selector('[data-testid="drift-chart"][data-ready="true"]')
    console.screenshot("drift")
    data = json.loads(page.locator("#drift-data").inner_text())
    assert sorted(c["name"] for c in data["columns"]) == COLUMNS
    assert len(data["labels"]) >= 2, "the chart needs the windows before and after the shift"
    # The chart Chart.js drew: one series per column, each with a point per window.
    series = page.evaluate(
        """() => window.driftloopCharts.drift.data.datasets.map(
            (d) => ({label: d.label, points: d.data.length}))"""
    )
    assert len(series) == len(COLUMNS)
    assert {s["label"].removesuffix(" (drifted)") for s in series} == set(COLUMNS)
    assert all(s["points"] == len(data["labels"]) for s in series), series
    assert _painted(page, '[data-testid="drift-chart"]')
    # Every window's point lies inside the plot (p-values of 1e-90 once left the log axis
    # without a range and no line was drawn at all).
    outside = page.evaluate(
        """() => { const chart = window.driftloopCharts.drift, area = chart.chartArea;
            return chart.data.datasets.flatMap((d, i) => chart.getDatasetMeta(i).data
                .filter((p, j) => d.data[j] !== null)
                .filter((p) => !(p.y >= area.top - 1 && p.y <= area.bottom + 1))
                .map((p) => d.label)); }"""
    )
    assert outside == []
    # The columns the alert named are marked drifted, in the chart and in its legend.
    marked = page.locator('[data-testid="drift-columns"] tr[data-drifted="true"]')
    drifted = sorted(marked.evaluate_all("(rows) => rows.map((r) => r.dataset.column)"))
    assert set(alert["columns"]) <= set(drifted), (alert["columns"], drifted)
    labelled = sorted(s["label"] for s in series if s["label"].endswith(" (drifted)"))
    assert labelled == [f"{c} (drifted)" for c in drifted]
    assert page.locator('[data-testid="drift-windows"] tr[data-drifted="true"]').count() >= 1


def test_the_job_page_shows_the_gates_figures(loop: ClosedLoop, console: RecordedPage) -> None:
    completed, _ = _retraining(loop)
    # The demo's line: "job ...: v2 accuracy 0.978 vs champion v1 0.667 on 445 rows: promoted"
    figures = re.search(
        r"(\w+) ([0-9.]+) vs champion v(\d+) ([0-9.]+) on (\d+) rows", completed["summary"]
    )
    assert figures is not None, completed["summary"]
    metric, challenger, champion_version, champion, rows = figures.groups()
    page = console.visit(f"/jobs/{completed['job_id']}")
    gate = page.get_by_test_id("gate")
    assert page.get_by_test_id("job-status").inner_text() == "succeeded"
    assert gate.get_by_test_id("gate-decision").inner_text() == "passed"
    assert metric in gate.inner_text()
    shown_challenger = float(gate.get_by_test_id("gate-challenger").inner_text().split()[0])
    shown_champion = float(gate.get_by_test_id("gate-champion").inner_text().split()[0])
    assert shown_challenger == pytest.approx(float(challenger), abs=5e-4)
    assert shown_champion == pytest.approx(float(champion), abs=5e-4)
    assert gate.get_by_role("link", name=f"v{champion_version}").is_visible()
    assert rows in gate.inner_text()
    assert page.get_by_test_id("job-version").inner_text() == f"v{loop.result['new_version']}"


def test_the_runs_comparison_draws_a_metric_chart(loop: ClosedLoop, console: RecordedPage) -> None:
    runs = [
        _first(loop, "registry.model_version.created", version=v)["run_id"]
        for v in (loop.result["first_version"], loop.result["new_version"])
    ]
    # From the new version's run to its experiment's runs; pick both runs; compare.
    page = console.visit(f"/runs/{runs[1]}")
    page.get_by_test_id("run-summary").locator('a[href^="/experiments/"]').click()
    page.wait_for_selector('[data-testid="runs"]')
    console.screenshot("runs")
    for run in runs:
        page.locator(f'input.pick[value="{run}"]').check()
    page.click("#compare-submit")
    page.wait_for_selector('[data-testid="metric-chart"][data-ready="true"]')
    console.screenshot("compare")
    assert set(page.url.split("run_ids=")[1].replace("%2C", ",").split(",")) == set(runs)
    drawn = page.evaluate(
        """() => window.driftloopCharts.metric.data.datasets.map((d) => d.data.length)"""
    )
    assert len(drawn) == 2, drawn
    assert all(points >= 1 for points in drawn), drawn
    assert _painted(page, '[data-testid="metric-chart"]')


def test_every_other_page_renders_cleanly_with_its_instants_in_the_viewers_zone(
    loop: ClosedLoop, console: RecordedPage
) -> None:
    model, v2 = loop.result["model"], loop.result["new_version"]
    # The model page, the version page, the lineage and the experiments list, each reached
    # by its link as a user would; the fixture fails the test on any console error or
    # failed request, and keeps each page's screenshot.
    page = console.visit(f"/models/{model}")
    assert page.get_by_role("link", name=f"v{v2}").first.is_visible()
    page = console.visit(f"/models/{model}/versions/{v2}")
    assert f"v{v2}" in page.inner_text("h1")
    page = console.visit(f"/models/{model}/lineage")
    drawn = page.locator("svg text[data-datetime]")
    assert drawn.count() >= 3  # the alert, the job, the alias move at least
    # Drawn in the viewer's zone (the browser's is UTC+05:30): no instant is left in UTC.
    texts = drawn.evaluate_all(
        "(nodes) => nodes.map((n) => [n.dataset.local, n.textContent, n.dataset.datetime])"
    )
    assert all(local == "true" and not text.endswith("Z") for local, text, _ in texts), texts
    page = console.visit("/experiments")
    page.locator('a[href^="/experiments/"]').first.click()
    page.wait_for_selector('[data-testid="runs"]')
    console.screenshot("experiment-runs")
