"""Alias events move the served versions: the new one is swapped in once loaded.

The handlers of ``entrypoints/consumers.py`` on a :class:`ModelManager` whose registry
and loader are fakes.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from driftloop.registry.v1 import events_pb2 as registry
from driftloop_events.envelope import CloudEvent
from driftloop_serving.domain.models import Predictor
from driftloop_serving.entrypoints.consumers import HANDLERS, on_alias_deleted, on_alias_set
from driftloop_serving.service_layer.models import ModelManager, served_slots
from driftloop_serving.settings import ServingSettings, TrafficPolicy
from tests.fakes.serving import FakeLoader, FakeRegistry

pytestmark = pytest.mark.unit


def answering(version: int) -> Predictor:
    return Predictor(flavor="sklearn", columns=(), predict=lambda m: np.full(len(m), version))


async def settled(models: ModelManager) -> None:
    while models._tasks:
        await asyncio.gather(*models._tasks)


@pytest.fixture
def world(tmp_path: Path) -> tuple[FakeRegistry, FakeLoader, ModelManager]:
    settings = ServingSettings(
        home=tmp_path, models="iris", traffic={"iris": TrafficPolicy(canary_percent=10)}
    )
    fake_registry = FakeRegistry(tmp_path / "models")
    fake_registry.register("iris", 1, alias="champion")
    fake_registry.register("iris", 2, alias="challenger")
    loader = FakeLoader(answering)
    models = ModelManager(fake_registry, loader, served_slots(settings), reconcile_interval=3600)
    return fake_registry, loader, models


def test_the_table_names_every_alias_event() -> None:
    assert {
        registry.AliasSet: [on_alias_set],
        registry.AliasDeleted: [on_alias_deleted],
    } == HANDLERS


def test_a_challenger_slot_is_served_only_with_a_traffic_policy(tmp_path: Path) -> None:
    plain = ServingSettings(home=tmp_path, models="iris,fraud")
    shadowed = ServingSettings(
        home=tmp_path, models="iris", traffic={"iris": TrafficPolicy(shadow=True)}
    )
    assert served_slots(plain) == [("iris", "champion"), ("fraud", "champion")]
    assert served_slots(shadowed) == [("iris", "champion"), ("iris", "challenger")]


async def test_alias_set_swaps_in_the_new_version_once_it_loaded(
    world: tuple[FakeRegistry, FakeLoader, ModelManager],
) -> None:
    fake_registry, loader, models = world
    await models.reconcile()
    champion = models.get("iris", "champion")
    assert champion is not None
    assert champion.version == 1
    fake_registry.register("iris", 3)

    await on_alias_set(
        models, CloudEvent.new(registry.AliasSet(name="iris", alias="champion", version=3))
    )
    assert models.get("iris", "champion") is champion  # the old one serves while loading
    await settled(models)

    swapped = models.get("iris", "champion")
    assert swapped is not None
    assert swapped.version == 3
    assert swapped.run_id == "run-3"
    assert list(swapped.predictor.predict(np.ones((2, 1)))) == [3, 3]
    assert loader.loaded[-1] == fake_registry.folder / "iris" / "3"


async def test_each_load_of_a_version_is_timed_per_model_and_alias(
    world: tuple[FakeRegistry, FakeLoader, ModelManager],
) -> None:
    from prometheus_client import REGISTRY

    fake_registry, _, models = world
    labels = {"model": "iris", "alias": "champion"}
    before = REGISTRY.get_sample_value("driftloop_serving_model_load_seconds_count", labels) or 0
    await models.reconcile()
    fake_registry.register("iris", 3)

    await on_alias_set(
        models, CloudEvent.new(registry.AliasSet(name="iris", alias="champion", version=3))
    )
    await settled(models)

    after = REGISTRY.get_sample_value("driftloop_serving_model_load_seconds_count", labels)
    assert after == before + 2


async def test_a_version_that_fails_to_load_is_never_swapped_in(
    world: tuple[FakeRegistry, FakeLoader, ModelManager],
) -> None:
    fake_registry, loader, models = world
    await models.reconcile()
    fake_registry.register("iris", 4)
    loader.broken.add(4)

    await on_alias_set(
        models, CloudEvent.new(registry.AliasSet(name="iris", alias="champion", version=4))
    )
    await settled(models)

    served = models.get("iris", "champion")
    assert served is not None
    assert served.version == 1
    assert "version 4 is broken; still serving version 1" in models.errors["iris", "champion"]


async def test_an_alias_of_a_slot_not_served_is_ignored(
    world: tuple[FakeRegistry, FakeLoader, ModelManager],
) -> None:
    _, loader, models = world
    await on_alias_set(
        models, CloudEvent.new(registry.AliasSet(name="fraud", alias="champion", version=1))
    )
    await settled(models)
    assert models.get("fraud", "champion") is None
    assert loader.loaded == []


async def test_a_deleted_challenger_stops_serving_and_a_deleted_champion_keeps_serving(
    world: tuple[FakeRegistry, FakeLoader, ModelManager],
) -> None:
    _, _, models = world
    await models.reconcile()
    assert models.get("iris", "challenger") is not None

    await on_alias_deleted(
        models, CloudEvent.new(registry.AliasDeleted(name="iris", alias="challenger"))
    )
    await on_alias_deleted(
        models, CloudEvent.new(registry.AliasDeleted(name="iris", alias="champion"))
    )

    assert models.get("iris", "challenger") is None
    champion = models.get("iris", "champion")
    assert champion is not None
    assert champion.version == 1


async def test_a_declared_model_without_a_version_waits_quietly_and_is_served_once_registered(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = ServingSettings(home=tmp_path, models="fraud")
    fake_registry = FakeRegistry(tmp_path / "models")
    models = ModelManager(
        fake_registry, FakeLoader(answering), served_slots(settings), reconcile_interval=3600
    )
    with caplog.at_level("INFO", logger="driftloop_serving"):
        for _ in range(3):
            await models.reconcile()

    assert models.get("fraud", "champion") is None
    assert "waiting for the first version" in models.errors["fraud", "champion"]
    assert [r.levelname for r in caplog.records] == ["INFO"]  # said once, not an error

    fake_registry.register("fraud", 1, alias="champion")
    await models.reconcile()
    served = models.get("fraud", "champion")
    assert served is not None
    assert served.version == 1
    assert ("fraud", "champion") not in models.errors
