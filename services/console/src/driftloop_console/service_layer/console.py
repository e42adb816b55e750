"""What each page shows, assembled from the upstreams: every part fetched at once, each
failing on its own (a panel with the message), every list asked for one bounded page."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from driftloop_console.adapters.upstream import Upstreams
from driftloop_console.domain.loop import AliasView, Cause, alias_views, cause_of_job
from driftloop_console.domain.serving import (
    ServingSample,
    VersionTraffic,
    error_ratio,
    parse_metrics,
    rates,
)
from driftloop_console.domain.values import Panel
from driftloop_console.service_layer.panels import gather_panels, panel

__all__ = ["Console", "ModelCard"]

MLFLOW = "/api/2.0/mlflow"


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
                "moves": self._trainer(credential, f"/models/{q(name)}/alias-moves"),
                "decision": self._trainer(credential, "/decisions", model=name, limit=1),
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
            last_decision=_first(decision, "decisions"),
            running_job=_first(running, "jobs"),
        )


def _first(found: Panel[Any], key: str) -> Panel[dict[str, Any] | None]:
    if not found.ok:
        return Panel(error=found.error, denied=found.denied)
    rows = (found.value or {}).get(key) or []
    return Panel(value=rows[0] if rows else None)
