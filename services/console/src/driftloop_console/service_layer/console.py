"""What each page shows, assembled from the upstreams: every part fetched at once, each
failing on its own (a panel with the message), every list asked for one bounded page."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from driftloop_console.adapters.upstream import Upstreams
from driftloop_console.domain.actions import Action
from driftloop_console.domain.drift import drift_chart
from driftloop_console.domain.lineage import layout, lineage_nodes
from driftloop_console.domain.loop import AliasView, Cause, alias_views, cause_of_job
from driftloop_console.domain.serving import (
    ServingSample,
    VersionTraffic,
    error_ratio,
    parse_metrics,
    rates,
)
from driftloop_console.domain.values import Page, Panel
from driftloop_console.service_layer.panels import gather_panels, panel

__all__ = ["Console", "ModelCard", "Pages", "send_action"]

MLFLOW = "/api/2.0/mlflow"
#: Alias moves read per model card.
CARD_MOVES = 20
#: Most rows an upstream list gives at once (the trainer's and MLflow's bound).
UPSTREAM_MAX_ROWS = 1000
#: Decisions read per model card, to find the latest on a drift alert.
CARD_DECISIONS = 10
#: Metrics charted in a comparison (each a history call per run).
MAX_METRICS = 8


def q(value: str) -> str:
    """A path segment, quoted."""
    return quote(value, safe="")


@dataclass
class ModelCard:
    """One model on the overview."""

    name: str
    aliases: Panel[list[AliasView]]
    cause: Panel[Cause | None]
    cause_job: dict[str, Any] | None
    last_decision: Panel[dict[str, Any] | None]
    running_job: Panel[dict[str, Any] | None]
    traffic: list[VersionTraffic] = field(default_factory=list)

    @property
    def champion(self) -> AliasView | None:
        """The champion alias, if set."""
        if not self.aliases.ok or not self.aliases.value:
            return None
        return next((a for a in self.aliases.value if a.alias == "champion"), None)


class Console:
    """The console's use cases: one method per page, given the viewer's credential.

    Args:
        upstreams: The other services.
        page_size: Rows per page of every list.
    """

    def __init__(self, upstreams: Upstreams, *, page_size: int) -> None:
        self.upstreams = upstreams
        self.page_size = page_size
        self._serving_samples: tuple[ServingSample | None, ServingSample | None] = (None, None)

    # -- shared reads ------------------------------------------------------------------

    async def registered_models(
        self, credential: str | None, *, page_token: str | None, size: int
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One page of registered models and the token of the next."""
        body = await self.upstreams.get_json(
            "registry",
            f"{MLFLOW}/registered-models/search",
            credential=credential,
            params={"max_results": size, "page_token": page_token or None},
        )
        return list(body.get("registered_models", [])), body.get("next_page_token") or None

    async def serving_sample(self, credential: str | None) -> ServingSample:
        """Serving's counters now; the previous scrape is kept for rates."""
        text = await self.upstreams.get_text("serving", "/metrics", credential=credential)
        sample = parse_metrics(text, at=time.time())
        previous, latest = self._serving_samples
        # Keep the older sample unless it is older than a minute: rates over a short span.
        if latest is not None and sample.at - latest.at >= 1.0:
            previous = latest
        self._serving_samples = (previous, sample)
        return sample

    def previous_sample(self, current: ServingSample) -> ServingSample | None:
        """The scrape before ``current`` (None on the first)."""
        previous, _ = self._serving_samples
        if previous is None or previous.at >= current.at:
            return None
        return previous

    async def _trainer(self, credential: str | None, path: str, **params: Any) -> Any:
        return await self.upstreams.get_json("trainer", path, credential=credential, params=params)

    # -- overview ----------------------------------------------------------------------

    async def overview(self, credential: str | None, *, page_token: str | None) -> dict[str, Any]:
        """The loop overview: a card per model of this page, serving's traffic."""
        size = max(5, self.page_size // 2)
        parts = await gather_panels(
            {
                "models": self.registered_models(credential, page_token=page_token, size=size),
                "serving": self.serving_sample(credential),
            }
        )
        models_panel = parts["models"]
        serving: Panel[ServingSample] = parts["serving"]
        cards: list[ModelCard] = []
        next_token = None
        if models_panel.ok and models_panel.value is not None:
            models, next_token = models_panel.value
            cards = list(await asyncio.gather(*(self._card(credential, model) for model in models)))
        error_share = None
        if serving.ok and serving.value is not None:
            sample = serving.value
            previous = self.previous_sample(sample)
            error_share = error_ratio(sample, previous)
            for card in cards:
                card.traffic = rates(sample, previous, model=card.name)
        return {
            "models": models_panel,
            "cards": cards,
            "next_token": next_token,
            "page_token": page_token,
            "serving": serving,
            "error_share": error_share,
        }

    async def _card(self, credential: str | None, model: dict[str, Any]) -> ModelCard:
        name = str(model.get("name"))
        parts = await gather_panels(
            {
                # The latest moves say what moved each alias now set (a few aliases).
                "moves": self._trainer(
                    credential, f"/models/{q(name)}/alias-moves", limit=CARD_MOVES
                ),
                "decision": self._trainer(
                    credential, "/decisions", model=name, limit=CARD_DECISIONS
                ),
                "running": self._trainer(
                    credential, "/jobs", model=name, status="running", limit=1
                ),
            }
        )
        moves = parts["moves"]
        aliases: Panel[list[AliasView]]
        if moves.ok:
            aliases = Panel(
                value=alias_views(
                    model.get("aliases", []), (moves.value or {}).get("alias_moves", [])
                )
            )
        else:
            aliases = Panel(
                value=alias_views(model.get("aliases", []), []),
                error=moves.error,
                denied=moves.denied,
            )
        champion = next((a for a in aliases.value or [] if a.alias == "champion"), None)
        cause: Panel[Cause | None] = Panel(value=None)
        cause_job = None
        if champion is not None and champion.job_id:
            job = await panel(self._trainer(credential, f"/jobs/{q(champion.job_id)}"))
            if job.ok and job.value is not None:
                cause_job = job.value.get("job")
                cause = Panel(value=cause_of_job(cause_job or {}))
            else:
                cause = Panel(error=job.error, denied=job.denied)
        decision = parts["decision"]
        running = parts["running"]
        return ModelCard(
            name=name,
            aliases=aliases,
            cause=cause,
            cause_job=cause_job,
            last_decision=_last_drift_decision(decision),
            running_job=_first(running, "jobs"),
        )


def _last_drift_decision(found: Panel[Any]) -> Panel[dict[str, Any] | None]:
    """The latest decision on a drift (or performance) alert among the latest few; the
    latest decision of any kind when none of them was on an alert."""
    if not found.ok:
        return Panel(error=found.error, denied=found.denied)
    rows = (found.value or {}).get("decisions") or []
    alerts = [d for d in rows if d.get("kind") in ("drift", "performance")]
    return Panel(value=(alerts or rows or [None])[0])


def _first(found: Panel[Any], key: str) -> Panel[dict[str, Any] | None]:
    if not found.ok:
        return Panel(error=found.error, denied=found.denied)
    rows = (found.value or {}).get(key) or []
    return Panel(value=rows[0] if rows else None)


class Pages(Console):
    """The pages beyond the overview."""

    # -- model ---------------------------------------------------------------------

    async def model(
        self, credential: str | None, name: str, *, page: int, history_page: int = 1
    ) -> dict[str, Any]:
        """A model: versions (a page) with the gate's figures, alias history, policy,
        recent decisions."""
        size = self.page_size
        parts = await gather_panels(
            {
                "registered": self.upstreams.get_json(
                    "registry",
                    f"{MLFLOW}/registered-models/get",
                    credential=credential,
                    params={"name": name},
                ),
                "versions": self.upstreams.get_json(
                    "registry",
                    f"{MLFLOW}/model-versions/search",
                    credential=credential,
                    params={
                        "filter": f"name='{_quote_filter(name)}'",
                        "max_results": _bounded(page * size + 1),
                        "order_by": "version_number DESC",
                    },
                ),
                "moves": self._trainer(
                    credential,
                    f"/models/{q(name)}/alias-moves",
                    limit=_bounded(history_page * size + 1),
                ),
                "policy": self._trainer(credential, f"/models/{q(name)}"),
                "decisions": self._trainer(
                    credential, "/decisions", model=name, limit=_bounded(history_page * size + 1)
                ),
                "jobs": self._trainer(credential, "/jobs", model=name, limit=min(200, 4 * size)),
                "monitor_policy": self.upstreams.get_json(
                    "monitor", f"/policies/{q(name)}", credential=credential
                ),
            }
        )
        versions = Panel[Page[dict[str, Any]]](error=parts["versions"].error)
        if parts["versions"].ok:
            rows = list((parts["versions"].value or {}).get("model_versions", []))
            versions = Panel(value=Page.of(rows, number=page, size=size))
        jobs_by_version: dict[str, dict[str, Any]] = {}
        if parts["jobs"].ok:
            for job in (parts["jobs"].value or {}).get("jobs", []):
                if job.get("model_version") is not None:
                    jobs_by_version.setdefault(str(job["model_version"]), job)
        if versions.ok and versions.value is not None:
            # Older versions than the latest jobs: each one's own job, by the id it records.
            missing = {
                str(v.get("version")): job_id
                for v in versions.value.items
                if str(v.get("version")) not in jobs_by_version and (job_id := _job_of_version(v))
            }
            if missing:
                # One call for the page's older jobs, however many versions it shows.
                found = await gather_panels(
                    {
                        "jobs": self._trainer(
                            credential, "/jobs", id=sorted(set(missing.values())), limit=1000
                        )
                    }
                )
                records = (found["jobs"].value or {}).get("jobs", []) if found["jobs"].ok else []
                by_id = {str(record.get("id")): record for record in records}
                for version, job_id in missing.items():
                    if job_id in by_id:
                        jobs_by_version[version] = by_id[job_id]
        moves = parts["moves"]
        return {
            "name": name,
            "registered": _value(parts["registered"], "registered_model"),
            "versions": versions,
            "jobs_by_version": jobs_by_version,
            "jobs": parts["jobs"],
            "moves": _paged(_value(moves, "alias_moves"), history_page, size),
            "policy": parts["policy"],
            "decisions": _paged(_value(parts["decisions"], "decisions"), history_page, size),
            "history_page": history_page,
            "monitor_policy": parts["monitor_policy"],
        }

    async def version(self, credential: str | None, name: str, version: str) -> dict[str, Any]:
        """One version: the registry's record, its job and gate, the monitor's counters."""
        parts = await gather_panels(
            {
                "version": self.upstreams.get_json(
                    "registry",
                    f"{MLFLOW}/model-versions/get",
                    credential=credential,
                    params={"name": name, "version": version},
                ),
                "counters": self.upstreams.get_json(
                    "monitor", f"/models/{q(name)}/versions", credential=credential
                ),
            }
        )
        found = _value(parts["version"], "model_version")
        job: Panel[Any] = Panel(value=None)
        record = found.value or {}
        job_id = _job_of_version(record)
        if job_id:
            job = _value(await panel(self._trainer(credential, f"/jobs/{q(job_id)}")), "job")
        counters = parts["counters"]
        mine: Panel[Any] = counters
        if counters.ok:
            mine = Panel(
                value=next(
                    (c for c in counters.value or [] if str(c.get("version")) == str(version)),
                    None,
                )
            )
        return {"name": name, "number": version, "version": found, "job": job, "counters": mine}

    # -- drift ---------------------------------------------------------------------

    async def drift(
        self,
        credential: str | None,
        name: str,
        *,
        version: int | None,
        before_id: int | None,
    ) -> dict[str, Any]:
        """A page of drift windows (newest first from ``before_id``), and performance."""
        size = max(self.page_size, 50)
        parts = await gather_panels(
            {
                "drift": self.upstreams.get_json(
                    "monitor",
                    f"/models/{q(name)}/drift",
                    credential=credential,
                    params={"version": version, "limit": size + 1, "before_id": before_id},
                ),
                "performance": self.upstreams.get_json(
                    "monitor",
                    f"/models/{q(name)}/performance",
                    credential=credential,
                    params={"version": version, "limit": self.page_size},
                ),
                "counters": self.upstreams.get_json(
                    "monitor", f"/models/{q(name)}/versions", credential=credential
                ),
            }
        )
        history = parts["drift"]
        rows: list[dict[str, Any]] = list(history.value or []) if history.ok else []
        has_older = len(rows) > size
        rows = rows[:size]
        return {
            "name": name,
            "version": version,
            "history": history,
            "rows": rows,
            "chart": drift_chart(rows),
            "older_than": rows[-1]["id"] if has_older and rows else None,
            "before_id": before_id,
            "performance": parts["performance"],
            "counters": parts["counters"],
        }

    async def report(self, credential: str | None, report_id: str) -> str:
        """A window's report as the monitor renders it (Evidently's HTML)."""
        return await self.upstreams.get_text(
            "monitor", f"/reports/{q(report_id)}", credential=credential
        )

    async def report_of_window(self, credential: str | None, window_id: str) -> str:
        """The id of a window's report, made by the monitor if it has none yet."""
        response = await self.upstreams.request(
            "monitor", "POST", "/reports", credential=credential, json={"window_id": window_id}
        )
        return str(response.json()["report_id"])

    # -- jobs ----------------------------------------------------------------------

    async def job(self, credential: str | None, job_id: str, *, tail: int) -> dict[str, Any]:
        """A job: stages, logs, its run, its version, the gate."""
        parts = await gather_panels(
            {
                "job": self._trainer(credential, f"/jobs/{q(job_id)}"),
                "logs": self.upstreams.get_text(
                    "trainer",
                    f"/jobs/{q(job_id)}/logs",
                    credential=credential,
                    params={"tail": tail},
                ),
            }
        )
        job = _value(parts["job"], "job")
        record = job.value or {}
        return {
            "job_id": job_id,
            "job": job,
            "logs": parts["logs"],
            "tail": tail,
            "stages": job_stages(record),
            "cause": cause_of_job(record) if record else None,
        }

    # -- runs ----------------------------------------------------------------------

    async def experiments(self, credential: str | None, *, page_token: str | None) -> Any:
        """A page of experiments."""
        return await panel(
            self.upstreams.get_json(
                "tracking",
                f"{MLFLOW}/experiments/search",
                credential=credential,
                params={"max_results": self.page_size, "page_token": page_token or None},
            )
        )

    async def runs(
        self,
        credential: str | None,
        experiment_id: str,
        *,
        filter_string: str,
        page_token: str | None,
    ) -> dict[str, Any]:
        """A page of an experiment's runs matching ``filter_string`` (tracking's grammar)."""
        body = {
            "experiment_ids": [experiment_id],
            "filter": filter_string,
            "max_results": self.page_size,
            "order_by": ["attributes.start_time DESC"],
            "page_token": page_token or None,
        }
        parts = await gather_panels(
            {
                "experiment": self.upstreams.get_json(
                    "tracking",
                    f"{MLFLOW}/experiments/get",
                    credential=credential,
                    params={"experiment_id": experiment_id},
                ),
                "runs": self._post_json("tracking", f"{MLFLOW}/runs/search", credential, body),
            }
        )
        runs = parts["runs"]
        rows = [run_row(r) for r in (runs.value or {}).get("runs", [])] if runs.ok else []
        metric_keys = sorted({k for r in rows for k in r["metrics"]})[:8]
        param_keys = sorted({k for r in rows for k in r["params"]})[:6]
        return {
            "experiment_id": experiment_id,
            "experiment": _value(parts["experiment"], "experiment"),
            "runs": runs,
            "rows": rows,
            "metric_keys": metric_keys,
            "param_keys": param_keys,
            "filter": filter_string,
            "next_token": (runs.value or {}).get("next_page_token") if runs.ok else None,
            "page_token": page_token,
        }

    async def run(self, credential: str | None, run_id: str) -> dict[str, Any]:
        """One run: info, metrics, params, tags."""
        found = await panel(
            self.upstreams.get_json(
                "tracking", f"{MLFLOW}/runs/get", credential=credential, params={"run_id": run_id}
            )
        )
        run = _value(found, "run")
        return {"run_id": run_id, "run": run, "row": run_row(run.value) if run.value else None}

    async def compare(
        self, credential: str | None, run_ids: list[str], *, max_points: int
    ) -> dict[str, Any]:
        """Runs side by side, and each shared metric's history by step."""
        found = await asyncio.gather(*(self.run(credential, r) for r in run_ids))
        rows = [f["row"] for f in found if f["row"]]
        errors = [f["run"].error for f in found if not f["run"].ok]
        keys = sorted({k for r in rows for k in r["metrics"]})[:MAX_METRICS]
        histories = await gather_panels(
            {
                f"{r['run_id']}\x00{k}": self.upstreams.get_json(
                    "tracking",
                    f"{MLFLOW}/metrics/get-history",
                    credential=credential,
                    params={"run_id": r["run_id"], "metric_key": k, "max_results": max_points},
                )
                for r in rows
                for k in keys
                if k in r["metrics"]
            }
        )
        series: dict[str, list[dict[str, Any]]] = {k: [] for k in keys}
        for handle, history in histories.items():
            run_id, key = handle.split("\x00")
            if not history.ok:
                errors.append(history.error or "")
                continue
            points = sorted(
                (
                    (m.get("step", 0), m.get("value"))
                    for m in (history.value or {}).get("metrics", [])
                ),
                key=lambda p: p[0],
            )
            series[key].append(
                {"run_id": run_id, "points": [{"x": s, "y": v} for s, v in points[:max_points]]}
            )
        return {"run_ids": run_ids, "rows": rows, "keys": keys, "series": series, "errors": errors}

    # -- lineage -------------------------------------------------------------------

    async def lineage(
        self, credential: str | None, name: str, *, version: str | None
    ) -> dict[str, Any]:
        """A version's chain (the champion's by default) from the registry's lineage API."""
        params = (
            {"name": name, "version": version} if version else {"name": name, "alias": "champion"}
        )
        found = await panel(
            self.upstreams.get_json(
                "registry", "/api/2.0/driftloop/lineage", credential=credential, params=params
            )
        )
        chain = found.value or {}
        nodes = lineage_nodes(chain) if found.ok else []
        return {
            "name": name,
            "version": chain.get("version") or version,
            "aliases": chain.get("aliases") or [],
            "lineage": found,
            "placed": layout(nodes),
            "nodes": nodes,
        }

    # -- writes (actions) ----------------------------------------------------------

    async def _post_json(
        self, service: str, path: str, credential: str | None, body: Any, method: str = "POST"
    ) -> Any:
        response = await self.upstreams.request(
            service, method, path, credential=credential, json=body
        )
        if not response.content:
            return {}
        try:
            return response.json()
        except ValueError:
            return {"answer": response.text[:300]}


def _bounded(rows: int) -> int:
    """Rows asked of an upstream list: the upstreams answer at most 1000 at once."""
    return min(rows, UPSTREAM_MAX_ROWS)


def _paged(found: Panel[Any], number: int, size: int) -> Panel[Any]:
    if not found.ok:
        return found
    return Panel(value=Page.of(list(found.value or []), number=number, size=size))


def _quote_filter(value: str) -> str:
    return value.replace("'", "''")


def _value(found: Panel[Any], key: str) -> Panel[Any]:
    if not found.ok:
        return found
    return Panel(value=(found.value or {}).get(key))


def _job_of_version(record: dict[str, Any]) -> str | None:
    user = str(record.get("user_id") or "")
    if user.startswith("job:"):
        return user[4:]
    for tag in record.get("tags") or []:
        if tag.get("key") in ("driftloop.training_job_id", "driftloop.job_id"):
            return str(tag.get("value"))
    return None


def job_stages(job: dict[str, Any]) -> list[dict[str, Any]]:
    """The stages of a job with their times: requested, started, finished (or failed)."""
    stages = [
        {"name": "requested", "at": job.get("created_at")},
        {"name": "started", "at": job.get("started_at")},
    ]
    end = "failed" if job.get("status") == "failed" else "finished"
    stages.append({"name": end, "at": job.get("finished_at")})
    return stages


def run_row(run: dict[str, Any]) -> dict[str, Any]:
    """A run as a table row: info, metrics and params as dicts."""
    info = run.get("info") or {}
    data = run.get("data") or {}
    return {
        "run_id": info.get("run_id") or info.get("run_uuid"),
        "name": info.get("run_name") or "",
        "experiment_id": info.get("experiment_id"),
        "status": info.get("status"),
        "user": info.get("user_id"),
        "start_time": info.get("start_time"),
        "end_time": info.get("end_time"),
        "metrics": {m["key"]: m.get("value") for m in data.get("metrics") or []},
        "params": {p["key"]: p.get("value") for p in data.get("params") or []},
        "tags": {t["key"]: t.get("value") for t in data.get("tags") or []},
    }


async def send_action(upstreams: Upstreams, action: Action, credential: str | None) -> Any:
    """Send a confirmed action upstream with the viewer's credential; its JSON answer.

    Raises:
        UpstreamError: The upstream refused it (a 403 for a role too low) or did not answer.
    """
    response = await upstreams.request(
        action.service, action.method, action.path, credential=credential, json=action.body
    )
    if not response.content:
        return {}
    try:
        return response.json()
    except ValueError:
        return {"answer": response.text[:300]}
