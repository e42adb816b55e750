"""The demo's worlds: where cases come from, what their truth is, and how they change.

A world is a model and the data it lives on: its document (``driftloop apply``), a
generator of cases (an entity's features at a moment, and the truth about it), and a
shift after which the cases come from somewhere else. The demo pushes each case's
features to the features service, asks serving for a prediction, and sends the truth
through the features service's label route (``POST /labels``) when it becomes known:
the suite owns the labels, there is no labels file.

- ``iris``: flowers measured in the field, then at a new site where every measurement
  is 1.5 times larger (the species still the truth).
- ``churn``: subscribers of a service, with two categorical columns (plan tier, region,
  integer-coded), whether they leave as a binary label known seconds after the
  prediction; at the shift prices rise by 30 and a new region grows, and why people
  leave changes with it (tenure no longer keeps them).

Pure functions and data; the demo (``run.py``) does the I/O.
"""

from __future__ import annotations

import abc
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

TIMESTAMP = "event_timestamp"
CREATED = "created"


@dataclass(frozen=True)
class Case:
    """One entity observed at a moment, and the truth about it.

    Attributes:
        entity_id: The entity's key value.
        label: The truth (known later than the prediction).
        features: Feature name → value, what the model is given.
        measured_at: When the features were observed (the label's event time too).
        extra: Other columns of the feature view (not model inputs).
    """

    entity_id: int
    label: str
    features: Mapping[str, float]
    measured_at: datetime
    extra: Mapping[str, Any] = field(default_factory=dict)


class World(abc.ABC):
    """A model and the data it lives on (subclasses fill in the particulars).

    Attributes:
        name: The world's name (``driftloop demo --world NAME``).
        model: The registered model.
        entity: The entity's join key.
        push_source: The Feast push source of its features.
        features: The model's input columns.
        label_delay: Seconds (low, high) between a prediction and its label.
        home: How the cases before the shift are described.
        shift: How the shift is described.
        repo: The Feast repo the features service serves for this world: a folder of
            ``driftloop_cli/demo/repos``, or empty for the service's example repo.
    """

    name = ""
    model = ""
    entity = ""
    push_source = ""
    features: tuple[str, ...] = ()
    label_delay: tuple[float, float] = (0.0, 0.0)
    home = ""
    shift = ""
    repo = ""

    def __init__(self, seed: int = 7, first_id: int = 1) -> None:
        self.random = random.Random(seed)
        self._next_id = first_id

    @abc.abstractmethod
    def document(self, *, window_rows: int) -> dict[str, Any]:
        """The model's document (``driftloop apply``)."""

    @abc.abstractmethod
    def draw(self, *, shifted: bool) -> tuple[str, dict[str, float], dict[str, Any]]:
        """One case's label, features and other columns."""

    def cases(self, count: int, *, shifted: bool, at: Sequence[datetime]) -> list[Case]:
        """``count`` cases observed at the given times."""
        if len(at) != count:
            raise ValueError(f"{count} cases need {count} times, got {len(at)}")
        found = []
        for moment in at:
            label, features, extra = self.draw(shifted=shifted)
            found.append(Case(self._next_id, label, features, moment, extra))
            self._next_id += 1
        return found

    def delay(self) -> float:
        """Seconds until the next label is known."""
        low, high = self.label_delay
        return self.random.uniform(low, high)

    def push_body(self, cases: Sequence[Case]) -> dict[str, object]:
        """The features service's ``POST /push`` body (online and offline)."""
        written = datetime.now(UTC).isoformat()
        columns: dict[str, list[object]] = {self.entity: [], TIMESTAMP: [], CREATED: []}
        for case in cases:
            columns[self.entity].append(case.entity_id)
            columns[TIMESTAMP].append(case.measured_at.isoformat())
            columns[CREATED].append(written)
            for name, value in {**case.features, **case.extra}.items():
                columns.setdefault(name, []).append(value)
        return {"push_source_name": self.push_source, "df": columns, "to": "online_and_offline"}

    def labels_body(self, cases: Sequence[Case], request_ids: Sequence[str]) -> dict[str, Any]:
        """The features service's ``POST /labels`` body: each case's truth, keyed by the
        prediction's request id and the entity, at the time it was observed."""
        return {
            "labels": [
                {
                    "model_name": self.model,
                    "request_id": request_id,
                    "entity_keys": {self.entity: case.entity_id},
                    "ground_truth": case.label,
                    "event_time": case.measured_at.isoformat(),
                }
                for case, request_id in zip(cases, request_ids, strict=True)
            ]
        }

    def v2_request(self, case: Case, request_id: str) -> dict[str, object]:
        """A V2 inference request for one case: one FP64 tensor per feature."""
        return {
            "id": request_id,
            "inputs": [
                {"name": name, "shape": [1], "datatype": "FP64", "data": [float(value)]}
                for name, value in case.features.items()
            ],
        }


# -- iris --------------------------------------------------------------------------------

#: Per species, (mean, standard deviation) of each feature in Fisher's iris table (cm).
SPECIES: dict[str, tuple[tuple[float, float], ...]] = {
    "setosa": ((5.006, 0.352), (3.428, 0.379), (1.462, 0.174), (0.246, 0.105)),
    "versicolor": ((5.936, 0.516), (2.770, 0.314), (4.260, 0.470), (1.326, 0.198)),
    "virginica": ((6.588, 0.636), (2.974, 0.322), (5.552, 0.552), (2.026, 0.275)),
}

#: How much larger the new site's flowers are.
SHIFT_SCALE = 1.5


class Iris(World):
    """Flowers drawn per species from normal distributions with the means and spreads of
    Fisher's iris table; at the shift every measurement is 1.5 times larger. A model
    trained on the old site calls most of the new site's versicolor flowers virginica;
    one retrained on recent data learns both sites."""

    name = "iris"
    model = "iris-classifier"
    entity = "flower_id"
    push_source = "iris_push"
    features = ("sepal_length", "sepal_width", "petal_length", "petal_width")
    label_delay = (0.0, 1.0)
    home = "flowers measured at the home site"
    shift = "flowers now come from a new site where they grow 1.5 times larger"

    def draw(self, *, shifted: bool) -> tuple[str, dict[str, float], dict[str, Any]]:
        names = list(SPECIES)
        species = names[self.random.randrange(len(names))]
        scale = SHIFT_SCALE if shifted else 1.0
        values = [
            round(max(0.05, self.random.gauss(mean, spread)) * scale, 3)
            for mean, spread in SPECIES[species]
        ]
        features = dict(zip(self.features, values, strict=True))
        return species, features, {"site": "new-site" if shifted else "home"}

    def document(self, *, window_rows: int) -> dict[str, Any]:
        """The job reads the label store's labels joined with each flower's features as
        of its label; a retraining looks at the last day (the live traffic), the first
        model at the whole history (its trigger's parameters say so). A burst of alerts
        starts one job (debounce); the cooldown is short so the first model does not
        hold the drift-triggered retraining back; it waits (a minute at most) for 100
        labels of the new site's flowers first. A retrained model's reference sample
        comes from the rows since the shift began, so it is watched against the new
        site's data it was trained for. Petal length and width move together with the
        mix of species in a window, so the monitor adjusts the columns' p-values
        together (Benjamini-Hochberg) before two of them count as drift."""
        return {
            "apiVersion": "driftloop/v1",
            "kind": "Model",
            "metadata": {
                "name": self.model,
                "description": "Which iris species a measured flower is (the demo's world).",
                "labels": {"world": self.name},
            },
            "spec": {
                "label": "species",
                "features": {
                    "feature_service": "iris_classifier",
                    "feature_views": ["iris_features"],
                },
                "training": {
                    "parameters": {
                        "estimator": "random_forest",
                        "n_estimators": "60",
                        "random_state": "0",
                    },
                    "training_window_days": 1,
                    "evaluation_fraction": 0.2,
                    "timeout_seconds": 300,
                },
                "trigger": {
                    "debounce_seconds": 10,
                    "cooldown_seconds": 5,
                    "dedup_seconds": 3600,
                    "min_new_labels": 100,
                    "label_wait_seconds": 60,
                },
                "monitor": {
                    "window_rows": window_rows,
                    "multiple_testing": "benjamini_hochberg",
                    "performance_metric": "accuracy",
                    "performance_threshold": 0.8,
                    "performance_window_rows": window_rows,
                },
            },
        }


# -- churn -------------------------------------------------------------------------------

PLAN_TIERS = (0, 0, 1, 1, 2)  # basic, standard, premium (basic and standard more common)
REGIONS = (0, 1, 2, 3)


class Churn(World):
    """Subscribers: tenure, monthly charges, support calls, plan tier and region; the
    label is whether they leave (``yes``/``no``), known seconds after the prediction.

    Before the shift people leave when charges are high for them, support calls pile up
    or they are on the basic plan, and a long tenure keeps them. At the shift prices
    rise by 30 and region 3 becomes most of the new customers; tenure no longer keeps
    anyone and region 3 leaves more. A model of the old market answers about two in
    three right on the new one; a model retrained on recent labels about six in seven.
    """

    name = "churn"
    model = "churn-classifier"
    entity = "customer_id"
    push_source = "churn_push"
    features = ("tenure_months", "monthly_charges", "support_calls", "plan_tier", "region")
    label_delay = (1.0, 8.0)
    repo = "churn"
    home = "subscribers of the old market"
    shift = "prices rise by 30 and region 3 grows; tenure no longer keeps subscribers"

    def draw(self, *, shifted: bool) -> tuple[str, dict[str, float], dict[str, Any]]:
        draw = self.random
        tenure = round(draw.uniform(1, 72), 1)
        charges = round(draw.gauss(65, 15) + (30 if shifted else 0), 2)
        calls = min(10, int(draw.expovariate(1 / 1.5)))
        tier = draw.choice(PLAN_TIERS)
        weights = (1, 1, 1, 7) if shifted else (3, 3, 3, 1)
        region = draw.choices(REGIONS, weights=weights)[0]
        basic = 1.2 * (tier == 0)
        if shifted:
            score = 0.06 * (charges - 95) + 0.7 * (calls - 1.5) + basic + (region == 3) - 0.9
        else:
            score = 0.06 * (charges - 65) - 0.05 * (tenure - 30) + 0.7 * (calls - 1.5) + basic - 0.4
        label = "yes" if score + draw.gauss(0, 0.4) > 0 else "no"
        features = {
            "tenure_months": tenure,
            "monthly_charges": charges,
            "support_calls": float(calls),
            "plan_tier": float(tier),
            "region": float(region),
        }
        return label, features, {}

    def document(self, *, window_rows: int) -> dict[str, Any]:
        """Plan tier and region are categorical: one-hot encoded by the reference
        pipeline, tested with Evidently's categorical stattests by the monitor. Those
        tests (chi-square against the reference's proportions) take a small reference
        sample's noise for drift, so the monitor adjusts the columns' p-values together
        (Benjamini-Hochberg) and wants a column to move by 0.1 at least (half a standard
        deviation, or a total variation of 0.1), and the reference sample is the
        pipeline's default 500 rows."""
        references = [f"churn_features:{name}" for name in self.features]
        return {
            "apiVersion": "driftloop/v1",
            "kind": "Model",
            "metadata": {
                "name": self.model,
                "description": "Will a subscriber leave? (the demo's second world)",
                "labels": {"world": self.name},
            },
            "spec": {
                "label": "churned",
                "features": {"features": references, "feature_views": ["churn_features"]},
                "training": {
                    "parameters": {
                        "estimator": "random_forest",
                        "n_estimators": "60",
                        "random_state": "0",
                        "categorical": "plan_tier,region",
                    },
                    "training_window_days": 1,
                    "evaluation_fraction": 0.2,
                    "timeout_seconds": 300,
                },
                "trigger": {
                    "debounce_seconds": 10,
                    "cooldown_seconds": 5,
                    "dedup_seconds": 3600,
                    "min_new_labels": 100,
                    "label_wait_seconds": 60,
                },
                "monitor": {
                    "window_rows": window_rows,
                    "column_types": {"plan_tier": "cat", "region": "cat"},
                    "drift_share": 0.3,
                    "multiple_testing": "benjamini_hochberg",
                    "min_effect_size": 0.1,
                    "performance_metric": "accuracy",
                    "performance_threshold": 0.75,
                    "performance_window_rows": window_rows,
                },
            },
        }


#: Every world, by name.
WORLDS: dict[str, type[World]] = {world.name: world for world in (Iris, Churn)}


def world_named(name: str, seed: int = 7) -> World:
    """The world called ``name``.

    Raises:
        ValueError: No such world.
    """
    found = WORLDS.get(name)
    if found is None:
        raise ValueError(f"no world {name!r}; the worlds are {', '.join(WORLDS)}")
    return found(seed=seed)
