"""The registry's compare-and-set promotion, through the trainer's registry client: two
deciders that read the same champion never both promote (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import os

import pytest
from mlflow import MlflowClient

from driftloop_bus.embedded import EmbeddedBroker
from driftloop_kit.auth import Role, ServiceAuth, TokenSigner
from driftloop_kit.errors import Conflict
from driftloop_trainer.adapters.registry import RegistryClient
from tests.fakes.common import unique

from ..stack import Stack
from .test_registry_events import model_events, register

pytestmark = pytest.mark.integration


async def started(stack: Stack) -> RegistryClient:
    """The trainer's registry client, with the trainer's role (deployer)."""
    auth = ServiceAuth(
        TokenSigner(os.environ["DRIFTLOOP_SECRET_KEY"]),
        subject="service:trainer",
        role=Role.DEPLOYER,
    )
    client = RegistryClient(stack.registry_url, auth=auth)
    await client.start()
    return client


async def test_a_promotion_moves_champion_and_previous_together_and_only_from_what_was_read(
    mlflow_at: Stack, broker: EmbeddedBroker
) -> None:
    name = unique("promoted")
    register(name, runs=3)
    MlflowClient().set_registered_model_alias(name, "champion", "1")
    registry = await started(mlflow_at)
    try:
        await registry.promote(name, "champion", 2, expected=1, previous_alias="previous")
        assert await registry.alias_version(name, "champion") == 2
        assert await registry.alias_version(name, "previous") == 1

        with pytest.raises(Conflict, match="points to version 2, not version 1"):
            await registry.promote(name, "champion", 3, expected=1, previous_alias="previous")
        assert await registry.alias_version(name, "champion") == 2
        assert await registry.alias_version(name, "previous") == 1
    finally:
        await registry.stop()
    moves = [
        (e.data.alias, e.data.version)
        for e in await model_events(broker.bootstrap_servers, name)
        if e.type.endswith("alias.set")
    ]
    assert moves[-2:] == [("previous", 1), ("champion", 2)]


@pytest.mark.parametrize("first", [None, 1], ids=["no-champion-yet", "champion-1"])
async def test_of_two_promotions_that_read_the_same_champion_exactly_one_moves_it(
    mlflow_at: Stack, first: int | None
) -> None:
    name = unique("raced")
    register(name, runs=3)
    if first is not None:
        MlflowClient().set_registered_model_alias(name, "champion", str(first))
    registry = await started(mlflow_at)
    try:
        outcomes = await asyncio.gather(
            *(
                registry.promote(name, "champion", v, expected=first, previous_alias="previous")
                for v in (2, 3)
            ),
            return_exceptions=True,
        )
        winners = [v for v, o in zip((2, 3), outcomes, strict=True) if o is None]
        assert len(winners) == 1, outcomes
        assert all(isinstance(o, Conflict) for o in outcomes if o is not None)
        assert await registry.alias_version(name, "champion") == winners[0]
        assert await registry.alias_version(name, "previous") == first
    finally:
        await registry.stop()
