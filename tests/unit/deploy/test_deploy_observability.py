"""The Grafana dashboard and the alert rules name only metrics the services export.

The metric names come from the processes' own Prometheus registry: every module of the
libs and services that uses ``prometheus_client`` is imported (which registers its
metrics, as it does in a running service) and the registry is read as ``/metrics``
would be, with each type's sample suffixes (``_total``, ``_bucket``, ...).
"""

from __future__ import annotations

import functools
import importlib
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY

from driftloop_kit.metrics import http_metrics

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[3]
DASHBOARD = ROOT / "deploy" / "observability" / "grafana-dashboard.json"
RULES = ROOT / "deploy" / "observability" / "prometheus-rules.yaml"
PROMETHEUS_RULE = ROOT / "deploy" / "k8s" / "monitoring" / "prometheus-rule.yaml"

#: Series Prometheus itself makes for every target (not exported by a service).
PROMETHEUS_OWN = {"up", "scrape_duration_seconds"}
#: PromQL words that are not metric names (functions are recognised by their "(").
KEYWORDS = {
    "and",
    "or",
    "unless",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "offset",
    "inf",
    "nan",
}
SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
    "info": ("_info",),
}


def _metric_modules() -> list[str]:
    """Every module of the libs and services that creates Prometheus metrics."""
    modules = []
    for src in sorted([*ROOT.glob("libs/*/src"), *ROOT.glob("services/*/src")]):
        for path in sorted(src.rglob("*.py")):
            if "from prometheus_client import" in path.read_text():
                modules.append(".".join(path.relative_to(src).with_suffix("").parts))
    return modules


@functools.cache
def exported_names() -> frozenset[str]:
    """The sample names the suite's processes expose on ``/metrics``."""
    for module in _metric_modules():
        importlib.import_module(module)
    http_metrics()
    names: set[str] = set()
    for family in REGISTRY.collect():
        names.update(family.name + suffix for suffix in SUFFIXES.get(family.type, ("",)))
    return frozenset(names)


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)  # label values
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # ranges
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for match in re.finditer(r"[a-zA-Z_:][a-zA-Z0-9_:]*", text):
        rest = text[match.end() :].lstrip()
        if rest.startswith("(") or match.group().lower() in KEYWORDS:
            continue
        names.add(match.group())
    return names


def _dashboard_exprs() -> list[str]:
    dashboard: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]


def _rule_exprs() -> list[str]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule["expr"] for group in groups for rule in group["rules"]]


def test_the_expression_parser_finds_metric_names_and_skips_functions_and_labels() -> None:
    expr = (
        'histogram_quantile(0.9, sum by (le, model) (rate(a_seconds_bucket{x="y z"}[5m])))'
        " > 1 and on (service) b_total == 0"
    )

    assert metric_names(expr) == {"a_seconds_bucket", "b_total"}


@pytest.mark.parametrize(
    "name",
    [
        "driftloop_consumer_lag",
        "driftloop_monitor_drift_score",
        "driftloop_serving_model_load_seconds_bucket",
        "driftloop_trainer_jobs_finished_total",
        "driftloop_trainer_job_duration_seconds_bucket",
    ],
)
def test_the_metrics_issue_21_asks_for_are_exported(name: str) -> None:
    assert name in exported_names()


@pytest.mark.parametrize("source", ["dashboard", "rules"])
def test_every_metric_the_dashboard_and_the_rules_name_is_exported(source: str) -> None:
    exprs = _dashboard_exprs() if source == "dashboard" else _rule_exprs()
    named = set().union(*(metric_names(e) for e in exprs))

    assert named, f"the {source} names no metric"
    assert named - exported_names() - PROMETHEUS_OWN == set()


def test_the_dashboard_shows_lag_drift_load_time_and_jobs() -> None:
    named = set().union(*(metric_names(e) for e in _dashboard_exprs()))

    assert {
        "driftloop_consumer_lag",
        "driftloop_monitor_drift_score",
        "driftloop_serving_model_load_seconds_bucket",
        "driftloop_trainer_jobs_finished_total",
        "driftloop_trainer_job_duration_seconds_bucket",
    } <= named


def test_the_prometheus_rule_for_kubernetes_carries_the_plain_rules() -> None:
    resource = yaml.safe_load(PROMETHEUS_RULE.read_text())

    assert resource["apiVersion"] == "monitoring.coreos.com/v1"
    assert resource["kind"] == "PrometheusRule"
    assert resource["metadata"]["namespace"] == "driftloop"
    assert resource["spec"]["groups"] == yaml.safe_load(RULES.read_text())["groups"]


def test_every_alert_has_a_severity_and_a_summary() -> None:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    rules = [rule for group in groups for rule in group["rules"]]

    assert all(rule["labels"]["severity"] in {"info", "warning", "critical"} for rule in rules)
    assert all(rule["annotations"]["summary"] for rule in rules)
