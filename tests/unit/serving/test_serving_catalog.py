"""What serving serves, changed by model documents while it runs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from driftloop_kit.declarations import ModelDeclaration
from driftloop_serving.domain.models import Slot
from driftloop_serving.service_layer.catalog import Catalog
from driftloop_serving.settings import ServingSettings

pytestmark = pytest.mark.unit


class Slots:
    """A ``SlotsPort`` that records what it was told."""

    def __init__(self) -> None:
        self.wanted: list[Slot] = []
        self.let_go: list[Slot] = []

    def want(self, slots: Sequence[Slot]) -> None:
        self.wanted.extend(slots)

    def unwant(self, slots: Sequence[Slot]) -> None:
        self.let_go.extend(slots)


def declared(name: str, **serving: Any) -> ModelDeclaration:
    return ModelDeclaration.model_validate(
        {
            "apiVersion": "driftloop/v1",
            "kind": "Model",
            "metadata": {"name": name},
            "spec": {
                "label": "y",
                "features": {"features": ["churn:tenure", "churn:plan"]},
                "serving": serving,
            },
        }
    )


def test_a_declared_model_is_served_with_its_policy_and_feature_source(tmp_path: Any) -> None:
    slots = Slots()
    catalog = Catalog(ServingSettings(home=tmp_path, models="iris"), slots)

    assert catalog.declare(declared("churn", canary_percent=10), 1)

    assert catalog.names() == ["iris", "churn"]
    assert slots.wanted == [("churn", "champion"), ("churn", "challenger")]
    assert catalog.policy("churn").canary_percent == 10
    # No serving.feature_service: the model's own features.
    assert catalog.feature_source("churn") == ["churn:tenure", "churn:plan"]
    assert catalog.get("churn").revision == 1  # type: ignore[union-attr]


def test_a_challenger_without_traffic_is_let_go_and_a_disabled_model_is_not_served(
    tmp_path: Any,
) -> None:
    slots = Slots()
    catalog = Catalog(ServingSettings(home=tmp_path), slots)
    catalog.declare(declared("churn", shadow=True, feature_service="churn_v2"), 1)
    assert catalog.feature_source("churn") == "churn_v2"

    catalog.declare(declared("churn"), 2)
    assert slots.let_go == [("churn", "challenger")]
    assert catalog.wanted() == [("churn", "champion")]

    catalog.declare(declared("churn", enabled=False), 3)
    assert catalog.names() == []
    assert slots.let_go[-1] == ("churn", "champion")


def test_an_older_revision_delivered_late_changes_nothing(tmp_path: Any) -> None:
    catalog = Catalog(ServingSettings(home=tmp_path), Slots())
    catalog.declare(declared("churn", canary_percent=20), 4)

    assert not catalog.declare(declared("churn", canary_percent=50), 3)
    assert catalog.policy("churn").canary_percent == 20
