"""What serving serves: the models, each one's traffic policy and feature source.

The ``models``, ``traffic`` and ``feature_services`` settings declare the first models;
a model's document applied with ``driftloop apply`` (the ``model.declared`` event,
``entrypoints/consumers.py``) adds a model or changes one while serving runs: its
``serving`` section says whether it is served, how requests are split between champion
and challenger, and where a keyed request's features come from. The
:class:`~driftloop_serving.service_layer.models.ModelManager` is told which
``(model, alias)`` slots to load or let go.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from driftloop_kit.declarations import BatchingPolicy, ModelDeclaration, TrafficPolicy
from driftloop_serving.domain.entities import FeatureSource
from driftloop_serving.domain.models import Slot
from driftloop_serving.service_layer.ports import SlotsPort
from driftloop_serving.settings import ServingSettings

__all__ = ["Catalog", "Served"]

log = logging.getLogger(__name__)

_NO_BATCHING = BatchingPolicy()


@dataclass(frozen=True)
class Served:
    """How one model is served.

    Attributes:
        traffic: The split between champion and challenger.
        feature_source: Where a keyed request's features come from (None: requests
            carry their features).
        revision: The revision of the model's document; 0 for the settings' models.
        batching: Whether (and how) concurrent requests are scored in one call.
    """

    traffic: TrafficPolicy
    feature_source: FeatureSource | None = None
    revision: int = 0
    batching: BatchingPolicy = field(default_factory=BatchingPolicy)


class Catalog:
    """The served models, changed by model documents while serving runs.

    Args:
        settings: The models declared by settings, and the champion's alias.
        slots: Told which slots to load and which to let go.
    """

    def __init__(self, settings: ServingSettings, slots: SlotsPort | None = None) -> None:
        self.alias = settings.alias
        self.slots = slots
        self._served: dict[str, Served] = {
            name: Served(
                settings.policy(name),
                settings.feature_services.get(name),
                batching=settings.batching_of(name),
            )
            for name in settings.model_names
        }

    def names(self) -> list[str]:
        """The served model names."""
        return list(self._served)

    def get(self, name: str) -> Served | None:
        """How ``name`` is served (None: it is not)."""
        return self._served.get(name)

    def policy(self, name: str) -> TrafficPolicy:
        """The traffic policy of ``name`` (champion only for a model not served)."""
        found = self._served.get(name)
        return found.traffic if found is not None else TrafficPolicy()

    def batching(self, name: str) -> BatchingPolicy:
        """The micro-batching policy of ``name`` (off for a model not served)."""
        found = self._served.get(name)
        return found.batching if found is not None else _NO_BATCHING

    def feature_source(self, name: str) -> FeatureSource | None:
        """Where ``name``'s keyed requests get their features."""
        found = self._served.get(name)
        return found.feature_source if found is not None else None

    def wanted(self) -> list[Slot]:
        """The ``(model, alias)`` slots to load: every champion, and a challenger that
        gets traffic."""
        return [slot for name in self._served for slot in self._slots_of(name)]

    def _slots_of(self, name: str) -> list[Slot]:
        served = self._served.get(name)
        if served is None:
            return []
        slots = [(name, self.alias)]
        if served.traffic.canary_percent or served.traffic.shadow:
            slots.append((name, served.traffic.challenger_alias))
        return slots

    def declare(self, declaration: ModelDeclaration, revision: int) -> bool:
        """Take up a model's document; False when an older revision than the one held
        arrived (a redelivery), which changes nothing."""
        name = declaration.name
        current = self._served.get(name)
        if current is not None and current.revision > revision:
            return False
        before = self._slots_of(name)
        spec = declaration.spec
        if spec.serving.enabled:
            traffic = TrafficPolicy.model_validate(
                spec.serving.model_dump(include=set(TrafficPolicy.model_fields))
            )
            self._served[name] = Served(
                traffic, spec.serving_features(), revision, batching=spec.serving.batching
            )
        else:
            self._served.pop(name, None)
        after = self._slots_of(name)
        if self.slots is not None:
            gone = [slot for slot in before if slot not in after]
            if gone:
                self.slots.unwant(gone)
            if after:
                self.slots.want(after)
        log.info(
            "model %s revision %d: %s",
            name,
            revision,
            "served" if after else "not served",
            extra={"model": name, "revision": revision, "slots": [a for _, a in after]},
        )
        return True
