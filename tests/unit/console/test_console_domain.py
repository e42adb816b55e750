"""The console's view models: instants, pages, aliases and their causes, drift series,
serving's traffic, lineage boxes, and the actions a form describes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from driftloop_console.domain.actions import ActionRefused, parse_action
from driftloop_console.domain.drift import drift_chart
from driftloop_console.domain.lineage import layout, lineage_nodes
from driftloop_console.domain.loop import alias_views, cause_of_job, short_event_type
from driftloop_console.domain.serving import error_ratio, parse_metrics, rates
from driftloop_console.domain.values import Page, as_utc, iso_utc

pytestmark = pytest.mark.unit


def test_instants_from_milliseconds_seconds_and_iso_text_are_the_same_utc_instant() -> None:
    moment = datetime(2026, 12, 4, 14, 50, 17, tzinfo=UTC)
    assert as_utc(1796395817000) == moment  # MLflow's milliseconds
    assert as_utc(1796395817) == moment  # epoch seconds
    assert as_utc("2026-12-04T14:50:17Z") == moment
    assert as_utc("2026-12-04T14:50:17") == moment  # naive text is UTC
    assert as_utc("2026-12-04T15:50:17+01:00") == moment
    assert iso_utc(moment) == "2026-12-04T14:50:17Z"
    assert iso_utc("2026-12-04T14:50:17.922000Z") == "2026-12-04T14:50:17.922Z"


@pytest.mark.parametrize("value", [None, "", "yesterday", True, [], 10**30])
def test_what_is_no_instant_renders_as_none(value: object) -> None:
    assert as_utc(value) is None
    assert iso_utc(value) is None


def test_a_page_of_rows_fetched_one_past_its_end_knows_whether_a_next_exists() -> None:
    rows = list(range(11))
    first = Page.of(rows, number=1, size=5)
    assert first.items == [0, 1, 2, 3, 4]
    assert first.has_next
    assert not first.has_previous
    third = Page.of(rows, number=3, size=5)
    assert third.items == [10]
    assert not third.has_next
    assert third.has_previous


MOVES = [  # latest first, as the trainer lists them
    {"alias": "champion", "version": 2, "previous_version": 1, "action": "promotion",
     "job_id": "job-2", "moved_at": "2026-12-04T14:50:17Z"},
    {"alias": "previous", "version": 1, "previous_version": None, "action": "promotion",
     "job_id": "job-2", "moved_at": "2026-12-04T14:50:17Z"},
    {"alias": "champion", "version": 1, "previous_version": None, "action": "promotion",
     "job_id": "job-1", "moved_at": "2026-12-04T14:49:13Z"},
]  # fmt: skip


def test_each_alias_shows_its_latest_move_and_the_job_that_made_it() -> None:
    views = alias_views(
        [{"alias": "champion", "version": "2"}, {"alias": "previous", "version": "1"}], MOVES
    )
    by_alias = {v.alias: v for v in views}
    assert [v.alias for v in views][:3] == ["champion", "challenger", "previous"]
    assert by_alias["champion"].version == "2"
    assert by_alias["champion"].job_id == "job-2"
    assert by_alias["champion"].previous_version == "1"
    assert by_alias["challenger"].version is None
    assert by_alias["previous"].moved_at == "2026-12-04T14:50:17Z"


def test_a_move_to_another_version_than_the_alias_names_now_is_not_shown_as_its_cause() -> None:
    # Moved by hand in the registry since the trainer's last move: no job is its cause.
    views = alias_views([{"alias": "champion", "version": "3"}], MOVES)
    champion = next(v for v in views if v.alias == "champion")
    assert champion.version == "3"
    assert champion.job_id is None
    assert champion.moved_at is None


def test_a_job_triggered_by_a_drift_alert_names_the_alert_as_its_cause() -> None:
    cause = cause_of_job(
        {
            "trigger": {
                "kind": "drift",
                "reason": "4 of 4 columns drifted",
                "event_id": "5f2c",
                "event_type": "driftloop.monitor.drift.detected",
                "version": 1,
                "requested_by": "trainer-policy",
            }
        }
    )
    assert cause is not None
    assert cause.is_drift_alert
    assert cause.event_type == "drift.detected"
    assert cause.version == "1"
    manual = cause_of_job({"trigger": {"kind": "manual", "reason": "first model"}})
    assert manual is not None
    assert not manual.is_drift_alert
    assert cause_of_job({}) is None
    assert short_event_type("driftloop.registry.alias.set") == "alias.set"


METRICS = """\
# TYPE driftloop_serving_requests_total counter
driftloop_serving_requests_total{model="iris",route="champion"} 100.0
driftloop_serving_requests_total{model="iris",route="challenger"} 10.0
driftloop_serving_requests_total{model="other",route="champion"} 7.0
# TYPE driftloop_serving_request_failures_total counter
driftloop_serving_request_failures_total{model="iris",route="challenger"} 2.0
# TYPE driftloop_serving_model_version gauge
driftloop_serving_model_version{alias="champion",model="iris"} 2.0
driftloop_serving_model_version{alias="challenger",model="iris"} 3.0
# TYPE http_requests_total counter
http_requests_total{route="/v2/models/{name}/infer",service="serving",status="200"} 105.0
http_requests_total{route="/v2/models/{name}/infer",service="serving",status="503"} 5.0
http_requests_total{method="GET",route="/healthz",service="serving",status="500"} 9.0
"""


def test_traffic_by_version_and_its_rate_come_from_two_scrapes_of_servings_counters() -> None:
    before = parse_metrics(METRICS, at=100.0)
    after = parse_metrics(METRICS.replace("} 100.0", "} 130.0"), at=110.0)
    first = {t.alias: t for t in rates(before, None, model="iris")}
    assert first["champion"].version == "2"
    assert first["challenger"].version == "3"
    assert first["champion"].requests == 100.0
    assert first["champion"].rate is None  # one look is no rate
    later = {t.alias: t for t in rates(after, before, model="iris")}
    assert later["champion"].rate == pytest.approx(3.0)
    assert later["challenger"].rate == 0.0
    # Only inference routes count; /healthz's 500s are not errors of predictions.
    assert error_ratio(before, None) == pytest.approx(5 / 110)
    assert error_ratio(after, before) is None  # no inference call between the two


def test_each_version_has_its_own_error_share_from_servings_failure_counter() -> None:
    before = parse_metrics(METRICS, at=100.0)
    first = {t.alias: t for t in rates(before, None, model="iris")}
    # Since start: the challenger (v3) answered 10 and failed to score 2; v2 failed none.
    assert first["challenger"].failures == 2.0
    assert first["challenger"].error_share == pytest.approx(2 / 12)
    assert first["champion"].error_share == 0.0
    after = parse_metrics(
        METRICS.replace('route="challenger"} 2.0', 'route="challenger"} 6.0').replace(
            'route="challenger"} 10.0', 'route="challenger"} 14.0'
        ),
        at=110.0,
    )
    later = {t.alias: t for t in rates(after, before, model="iris")}
    # Between the two looks: 4 answered and 4 failed.
    assert later["challenger"].error_share == pytest.approx(0.5)
    assert later["champion"].error_share is None  # no request between the two looks


def window(window_id: int, columns: list[tuple[str, float, bool]]) -> dict[str, object]:
    return {
        "id": window_id,
        "window_id": f"iris/1/{window_id}",
        "version": 1,
        "start_time": "2026-12-04T14:00:00",
        "end_time": f"2026-12-04T14:{window_id:02d}:00",
        "status": "drift" if any(d for _, _, d in columns) else "tested",
        "rows": 150,
        "drift_share": sum(d for _, _, d in columns) / len(columns),
        "dataset_drift": any(d for _, _, d in columns),
        "report_id": None,
        "columns": [
            {"column": n, "score": s, "threshold": 0.05, "drifted": d, "stattest": "ks"}
            for n, s, d in columns
        ],
    }


def test_the_drift_chart_has_one_series_per_column_oldest_window_first() -> None:
    history = [  # newest first, as the monitor answers
        window(3, [("petal", 0.001, True), ("sepal", 0.5, False), ("new", 0.2, False)]),
        window(2, [("petal", 0.2, False), ("sepal", 0.4, False)]),
        window(1, [("petal", 0.3, False), ("sepal", 0.6, False)]),
    ]
    chart = drift_chart(history)
    assert [c.name for c in chart.columns] == ["new", "petal", "sepal"]
    assert [w["id"] for w in chart.windows] == [1, 2, 3]
    petal = next(c for c in chart.columns if c.name == "petal")
    assert petal.scores == [0.3, 0.2, 0.001]
    assert petal.thresholds == [0.05, 0.05, 0.05]
    assert petal.drifted
    assert petal.drifted_windows == 1
    assert not next(c for c in chart.columns if c.name == "sepal").drifted
    # A column first tested later has no score in the earlier windows.
    assert next(c for c in chart.columns if c.name == "new").scores == [None, None, 0.2]
    data = chart.as_data()
    assert len(data["columns"]) == 3
    assert len(data["labels"]) == 3
    assert all(len(c["scores"]) == 3 for c in data["columns"])


def test_the_lineage_picture_runs_from_the_feature_views_to_the_next_version() -> None:
    chain = {
        "name": "iris",
        "version": "2",
        "lineage": {"run_id": "r2", "feature_views": ["iris_features"], "metrics": {"acc": 0.97}},
        "events": [
            {"type": "driftloop.monitor.drift.detected", "time": "2026-12-04T14:49:37Z",
             "summary": {"version": 1, "drifted_columns": ["petal"]}},
            {"type": "driftloop.trainer.training.requested", "time": "2026-12-04T14:49:40Z",
             "summary": {"job_id": "job-2", "trigger_kind": "drift"}},
            {"type": "driftloop.registry.model_version.created", "time": "2026-12-04T14:50:03Z",
             "summary": {"version": 2, "run_id": "r2"}},
            {"type": "driftloop.registry.alias.set", "time": "2026-12-04T14:50:17Z",
             "summary": {"alias": "champion", "version": 2}},
        ],
    }  # fmt: skip
    nodes = lineage_nodes(chain)
    assert [n.kind for n in nodes] == [
        "features", "run", "drift", "training", "registered", "alias",
    ]  # fmt: skip
    assert nodes[1].href == "/runs/r2"
    assert nodes[3].href == "/jobs/job-2"
    assert nodes[4].href == "/models/iris/versions/2"
    assert nodes[5].title == "champion → v2"
    placed = layout(nodes, per_row=4)
    assert (placed[4]["x"], placed[4]["y"]) == (placed[0]["x"], placed[0]["y"] + 110)


def test_an_action_form_becomes_the_upstream_call_it_describes() -> None:
    train = parse_action("train", {"model": ["iris"], "reason": ["labels came"], "force": ["on"]})
    assert (train.service, train.method, train.path) == ("trainer", "POST", "/models/iris/train")
    assert train.body == {"reason": "labels came", "force": True}
    alias = parse_action("alias", {"model": ["iris"], "alias": ["champion"], "version": ["3"]})
    assert alias.body == {"name": "iris", "alias": "champion", "version": "3"}
    policy = parse_action("policy", {"model": ["iris"], "policy": ['{"window_rows": 200}']})
    assert (policy.method, policy.path, policy.body) == (
        "PUT", "/policies/iris", {"window_rows": 200},
    )  # fmt: skip
    rollback = parse_action("rollback", {"model": ["a b/../c"]})
    assert rollback.path == "/models/a%20b%2F..%2Fc/rollback"  # one path segment, quoted


@pytest.mark.parametrize(
    ("kind", "form", "message"),
    [
        ("delete", {"model": ["iris"]}, "no action"),
        ("train", {}, "lacks 'model'"),
        ("train", {"model": ["iris"], "reason": ["x" * 501]}, "longer than 500"),
        ("alias", {"model": ["iris"], "alias": ["champion"], "version": ["two"]}, "version"),
        ("alias", {"model": ["iris"], "alias": ["a b"], "version": ["2"]}, "alias name"),
        ("policy", {"model": ["iris"], "policy": ["{not json"]}, "not JSON"),
        ("policy", {"model": ["iris"], "policy": ["[1]"]}, "JSON object"),
        ("policy", {"model": ["iris"], "policy": ['{"a": "' + "x" * 20_000 + '"}']}, "longer"),
        ("rollback", {"model": ["x" * 300]}, "not a model name"),
        ("rollback", {"model": ["iris\r\nX-Header: 1"]}, "not a model name"),
    ],
)
def test_a_form_that_describes_no_sendable_action_is_refused_with_the_reason(
    kind: str, form: dict[str, list[str]], message: str
) -> None:
    with pytest.raises(ActionRefused, match=message):
        parse_action(kind, form)


def test_a_feed_line_names_its_event_briefly_and_links_the_model_it_is_about() -> None:
    from driftloop_console.domain.events import feed_event
    from driftloop_events.catalog import spec_for
    from driftloop_events.envelope import CloudEvent

    alias_set = spec_for("driftloop.registry.alias.set")
    line = feed_event(CloudEvent.new(alias_set.example()), topic="registry.models")
    assert line.type == "alias.set"
    assert line.model == alias_set.example().name
    assert line.time.endswith("Z")
    assert len(line.summary) <= 240
    run_created = spec_for("driftloop.tracking.run.created")
    run_line = feed_event(CloudEvent.new(run_created.example()), topic="tracking.runs")
    assert run_line.type == "run.created"
    assert run_line.model == ""  # a run's name is no model


def test_driftloop_up_wires_the_console_to_every_service_it_reads() -> None:
    from driftloop_cli.up import wiring_env
    from driftloop_kit.service import SERVICE_NAMES, load_service

    ports = {name: 20_000 + index for index, name in enumerate(SERVICE_NAMES)}
    env = wiring_env({"console": load_service("console")}, ports)
    assert env["DRIFTLOOP_CONSOLE_PORT"] == str(ports["console"])
    for upstream in ("tracking", "registry", "trainer", "monitor", "serving"):
        variable = f"DRIFTLOOP_CONSOLE_{upstream.upper()}_URL"
        assert env[variable] == f"http://127.0.0.1:{ports[upstream]}"
