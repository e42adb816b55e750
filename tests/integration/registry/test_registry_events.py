"""Registry events on the real broker: exactly one ``alias.set`` per move, across an outage."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow
import pytest
from mlflow import MlflowClient
from sklearn.datasets import load_iris  # type: ignore[import-untyped]
from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]

from driftloop_bus.embedded import EmbeddedBroker
from driftloop_events.envelope import from_record
from tests.fakes.common import unique

from ..bus.helpers import eventually, read_topic, relay_failed_since, relay_failures
from ..stack import Stack, reset_mlflow_uris, start_stack

pytestmark = pytest.mark.integration


async def model_events(bootstrap: str, name: str) -> list[Any]:
    records = await read_topic(bootstrap, "registry.models", expected=10_000, timeout=3)
    events = [from_record(r.value, r.headers) for r in records]
    return [e for e in events if e.key == name]


def register(name: str, runs: int) -> None:
    features, labels = load_iris(return_X_y=True)
    for _ in range(runs):
        with mlflow.start_run():
            mlflow.sklearn.log_model(
                LogisticRegression(max_iter=200).fit(features, labels),
                name="model",
                registered_model_name=name,
                pip_requirements=["scikit-learn"],
            )


async def test_registering_and_moving_aliases_publish_one_event_each(
    mlflow_at: Stack, broker: EmbeddedBroker
) -> None:
    name = unique("evented")
    register(name, runs=2)
    client = MlflowClient()
    client.set_registered_model_alias(name, "champion", "1")
    client.set_registered_model_alias(name, "champion", "2")
    client.set_registered_model_alias(name, "champion", "2")  # no move, no event
    client.delete_registered_model_alias(name, "champion")

    async def all_four() -> list[Any] | None:
        found = await model_events(broker.bootstrap_servers, name)
        return found if len(found) >= 5 else None

    await eventually(all_four, timeout=30)
    events = await model_events(broker.bootstrap_servers, name)
    assert [e.type.rsplit(".", 2)[-2:] for e in events] == [
        ["model_version", "created"],
        ["model_version", "created"],
        ["alias", "set"],
        ["alias", "set"],
        ["alias", "deleted"],
    ]
    created = events[0].data
    assert created.version == 1
    assert "MLmodel" in created.artifact_checksums
    assert len(created.artifact_checksums["MLmodel"]) == 64
    first, second = events[2].data, events[3].data
    assert (first.version, first.HasField("previous_version")) == (1, False)
    assert (second.version, second.previous_version) == (2, 1)
    assert (events[4].data.alias, events[4].data.version) == ("champion", 2)
    # Who did it is the subject of the token the client sent (tests/conftest.py).
    assert [e.data.user_id for e in events] == ["tests"] * 5


async def test_an_alias_moved_while_the_broker_is_down_is_published_once_it_returns(
    database_url: str, tmp_path: Path, own_broker: EmbeddedBroker
) -> None:
    stack, servers = start_stack(
        home=tmp_path / "home",
        registry_database=database_url,
        bootstrap_servers=own_broker.bootstrap_servers,
    )
    name = unique("outage")
    mlflow.set_tracking_uri(stack.tracking_url)
    mlflow.set_registry_uri(stack.registry_url)
    try:
        register(name, runs=2)
        client = MlflowClient()
        client.set_registered_model_alias(name, "champion", "1")

        async def published_before() -> list[Any] | None:
            found = await model_events(own_broker.bootstrap_servers, name)
            return found if len(found) >= 3 else None

        await eventually(published_before, timeout=30)  # nothing left in the outbox
        failures = relay_failures("registry")
        own_broker.stop()  # in memory: what it held is gone when it returns
        client.set_registered_model_alias(name, "champion", "2")  # stored now, published later
        assert client.get_model_version_by_alias(name, "champion").version == "2"
        # The broker stays away until the relay has given up on it. (A tansu restarted
        # while a send is retried takes the send into a topic it auto-creates with its
        # own partitions, and loses it; Kafka's topics outlive a broker restart.)
        await eventually(lambda: relay_failed_since("registry", failures), timeout=60)
        own_broker.start()

        async def the_move() -> list[Any] | None:
            found = await model_events(own_broker.bootstrap_servers, name)
            return found or None

        await eventually(the_move, timeout=60)
        events = await model_events(own_broker.bootstrap_servers, name)  # later passes too
    finally:
        reset_mlflow_uris()
        for server in reversed(servers):
            server.stop()

    # One event: delivery is at least once, so a send the broker took just as the relay
    # gave up may arrive twice, with the same id, which consumers deduplicate.
    assert {e.type for e in events} == {"driftloop.registry.alias.set"}
    assert len({e.id for e in events}) == 1
    assert (events[0].data.version, events[0].data.previous_version) == (2, 1)
