"""The demo's world: iris flowers measured in the field, then at a new site.

Flowers are drawn per species from normal distributions with the means and spreads
of Fisher's iris table. At ``shift`` the suite starts receiving flowers from a new
site where plants grow half as large again: every measurement is 1.5 times larger,
the species still the truth. A model trained on the old site calls most of the new
site's versicolor flowers virginica; one retrained on recent data learns both sites.

Pure functions; the demo pushes the measurements to the features service, writes the
labels where the training job reads them, and asks serving for predictions.
"""

from __future__ import annotations

import csv
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

FEATURES = ("sepal_length", "sepal_width", "petal_length", "petal_width")
LABEL = "species"
ENTITY = "flower_id"
TIMESTAMP = "event_timestamp"
CREATED = "created"

#: Per species, (mean, standard deviation) of each feature in Fisher's iris table (cm).
SPECIES: dict[str, tuple[tuple[float, float], ...]] = {
    "setosa": ((5.006, 0.352), (3.428, 0.379), (1.462, 0.174), (0.246, 0.105)),
    "versicolor": ((5.936, 0.516), (2.770, 0.314), (4.260, 0.470), (1.326, 0.198)),
    "virginica": ((6.588, 0.636), (2.974, 0.322), (5.552, 0.552), (2.026, 0.275)),
}

#: How much larger the new site's flowers are.
SHIFT_SCALE = 1.5


@dataclass(frozen=True)
class Flower:
    """One measured flower and its true species."""

    flower_id: int
    species: str
    measurements: tuple[float, ...]
    site: str
    measured_at: datetime

    @property
    def features(self) -> dict[str, float]:
        """Feature name → value."""
        return dict(zip(FEATURES, self.measurements, strict=True))


class Field:
    """Where flowers come from: a seeded generator of flowers with increasing ids."""

    def __init__(self, seed: int = 7, first_id: int = 1) -> None:
        self._random = random.Random(seed)
        self._next_id = first_id

    def flowers(self, count: int, *, shifted: bool, at: Sequence[datetime]) -> list[Flower]:
        """``count`` flowers, species in equal shares, measured at the given times."""
        if len(at) != count:
            raise ValueError(f"{count} flowers need {count} times, got {len(at)}")
        names = list(SPECIES)
        scale = SHIFT_SCALE if shifted else 1.0
        found = []
        for i in range(count):
            species = names[self._random.randrange(len(names))]
            values = tuple(
                round(max(0.05, self._random.gauss(mean, spread)) * scale, 3)
                for mean, spread in SPECIES[species]
            )
            found.append(
                Flower(
                    flower_id=self._next_id,
                    species=species,
                    measurements=values,
                    site="new-site" if shifted else "home",
                    measured_at=at[i],
                )
            )
            self._next_id += 1
        return found


def push_body(flowers: Sequence[Flower], push_source: str = "iris_push") -> dict[str, object]:
    """The features service's ``POST /push`` body for these flowers (online and offline)."""
    written = datetime.now(UTC).isoformat()
    columns: dict[str, list[object]] = {ENTITY: [], TIMESTAMP: [], CREATED: [], "site": []}
    columns.update({name: [] for name in FEATURES})
    for flower in flowers:
        columns[ENTITY].append(flower.flower_id)
        columns[TIMESTAMP].append(flower.measured_at.isoformat())
        columns[CREATED].append(written)
        columns["site"].append(flower.site)
        for name, value in flower.features.items():
            columns[name].append(value)
    return {"push_source_name": push_source, "df": columns, "to": "online_and_offline"}


def v2_request(flower: Flower, request_id: str) -> dict[str, object]:
    """A V2 inference request for one flower: one FP64 tensor per feature."""
    return {
        "id": request_id,
        "inputs": [
            {"name": name, "shape": [1], "datatype": "FP64", "data": [value]}
            for name, value in flower.features.items()
        ],
    }


class LabelsFile:
    """The labelled entity rows the training job reads (``labels_source``): a CSV file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("w", newline="") as handle:
            csv.writer(handle).writerow([ENTITY, TIMESTAMP, LABEL])

    def append(self, flowers: Sequence[Flower]) -> None:
        """Add the flowers' true species, timestamped when they were measured."""
        with self.path.open("a", newline="") as handle:
            writer = csv.writer(handle)
            for flower in flowers:
                writer.writerow([flower.flower_id, flower.measured_at.isoformat(), flower.species])

    def rows(self) -> Iterator[dict[str, str]]:
        """The rows written so far."""
        with self.path.open(newline="") as handle:
            yield from csv.DictReader(handle)
