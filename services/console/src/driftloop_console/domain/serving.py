"""Request and error rates by model version, from serving's Prometheus ``/metrics``.

Serving counts requests by model and route (the alias that answered:
``driftloop_serving_requests_total{model, route}``), the requests the routed version
failed to score (``driftloop_serving_request_failures_total{model, route}``), and which
version each alias holds (``driftloop_serving_model_version{model, alias}``); answers of
5xx are counted by HTTP status on the inference routes (``http_requests_total``), for
all models together.
A rate needs two scrapes: :func:`rates` compares the current one with the previous.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

__all__ = ["ServingSample", "VersionTraffic", "parse_metrics", "rates"]

_INFERENCE_ROUTES = ("/v2/models/", "/invocations", "/models/")
_READ = (
    "driftloop_serving_requests_total{",
    "driftloop_serving_request_failures_total{",
    "driftloop_serving_model_version{",
    "http_requests_total{",
)


@dataclass(frozen=True)
class ServingSample:
    """One scrape of serving's counters.

    Attributes:
        at: When it was taken (epoch seconds).
        requests: Requests answered, by ``(model, alias)``.
        failures: Requests the alias's version failed to score, by ``(model, alias)``.
        versions: The version each ``(model, alias)`` holds.
        inference_total: Inference calls, every status.
        inference_errors: Inference calls answered with a status of 500 or more.
    """

    at: float
    requests: dict[tuple[str, str], float] = field(default_factory=dict)
    failures: dict[tuple[str, str], float] = field(default_factory=dict)
    versions: dict[tuple[str, str], str] = field(default_factory=dict)
    inference_total: float = 0.0
    inference_errors: float = 0.0


@dataclass(frozen=True)
class VersionTraffic:
    """What one version of a model serves.

    Attributes:
        model: Model name.
        alias: The alias (route) it serves under.
        version: The version the alias holds.
        requests: Requests answered since serving started.
        rate: Requests per second since the previous scrape (None on the first).
        failures: Requests it failed to score since serving started.
        error_share: Failed share of its requests since the previous scrape, else since
            serving started (None with no request at all).
    """

    model: str
    alias: str
    version: str | None
    requests: float
    rate: float | None
    failures: float = 0.0
    error_share: float | None = None


def parse_metrics(text: str, *, at: float) -> ServingSample:
    """The counters the console shows, out of serving's exposition text."""
    requests: dict[tuple[str, str], float] = {}
    failures: dict[tuple[str, str], float] = {}
    versions: dict[tuple[str, str], str] = {}
    total = errors = 0.0
    # Only the four counters are read: the other lines (histogram buckets, most of the
    # text) are dropped before parsing, which costs a tenth of parsing them all.
    wanted = "\n".join(line for line in text.splitlines() if line.startswith(_READ))
    for family in text_string_to_metric_families(wanted):
        for sample in family.samples:
            labels = sample.labels
            if sample.name == "driftloop_serving_requests_total":
                key = (labels.get("model", ""), labels.get("route", ""))
                requests[key] = requests.get(key, 0.0) + sample.value
            elif sample.name == "driftloop_serving_request_failures_total":
                key = (labels.get("model", ""), labels.get("route", ""))
                failures[key] = failures.get(key, 0.0) + sample.value
            elif sample.name == "driftloop_serving_model_version":
                versions[(labels.get("model", ""), labels.get("alias", ""))] = f"{sample.value:g}"
            elif sample.name == "http_requests_total" and labels.get("route", "").startswith(
                _INFERENCE_ROUTES
            ):
                total += sample.value
                if labels.get("status", "").startswith("5"):
                    errors += sample.value
    return ServingSample(
        at=at,
        requests=requests,
        failures=failures,
        versions=versions,
        inference_total=total,
        inference_errors=errors,
    )


def rates(
    current: ServingSample, previous: ServingSample | None, *, model: str
) -> list[VersionTraffic]:
    """Traffic of each alias of ``model``, with its rate since ``previous`` when there is one."""
    elapsed = current.at - previous.at if previous is not None else 0.0
    found = []
    aliases = {
        alias
        for (name, alias) in (*current.requests, *current.failures, *current.versions)
        if name == model
    }
    for alias in sorted(aliases):
        count = current.requests.get((model, alias), 0.0)
        failed = current.failures.get((model, alias), 0.0)
        rate = None
        answered, refused = count, failed
        if previous is not None and elapsed > 0:
            before = previous.requests.get((model, alias), 0.0)
            rate = max(count - before, 0.0) / elapsed
            answered = max(count - before, 0.0)
            refused = max(failed - previous.failures.get((model, alias), 0.0), 0.0)
        share = refused / (answered + refused) if answered + refused > 0 else None
        found.append(
            VersionTraffic(
                model=model,
                alias=alias,
                version=current.versions.get((model, alias)),
                requests=count,
                rate=rate,
                failures=failed,
                error_share=share,
            )
        )
    return found


def error_ratio(current: ServingSample, previous: ServingSample | None) -> float | None:
    """Share of inference calls that failed (5xx): since ``previous``, else since start."""
    total, errors = current.inference_total, current.inference_errors
    if previous is not None:
        total -= previous.inference_total
        errors -= previous.inference_errors
    if total <= 0:
        return None
    return max(errors, 0.0) / total
