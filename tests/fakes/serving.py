"""Fakes of the serving service's ports (``driftloop_serving.service_layer.ports``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from driftloop_events.envelope import KafkaRecord
from driftloop_serving.domain.entities import Entities, FeatureSource
from driftloop_serving.domain.models import (
    ModelLoadError,
    NotRegisteredYet,
    Predictor,
    RegistryError,
    ServedModel,
    VersionInfo,
)


class FakePredictionLog:
    """Keeps what the scorer queues (a ``PredictionLogPort``)."""

    def __init__(self) -> None:
        self.records: list[KafkaRecord] = []

    def record(self, record: KafkaRecord) -> None:
        self.records.append(record)


class FakeServedModels:
    """One served model for every name, as its champion (a ``ServedModelsPort``)."""

    def __init__(self, model: ServedModel | None) -> None:
        self.model = model

    def get(self, name: str, alias: str) -> ServedModel | None:
        return self.model if alias == "champion" else None


class FakeFeatures:
    """Answers every online lookup with ``answer`` and keeps what was asked (a ``FeaturesPort``)."""

    def __init__(self, answer: Mapping[str, Any]) -> None:
        self.answer = answer
        self.asked: list[tuple[FeatureSource, Entities]] = []

    async def get_online_features(
        self, *, source: FeatureSource, entities: Entities
    ) -> Mapping[str, Any]:
        self.asked.append((source, entities))
        return self.answer


class FakeRegistry:
    """Versions by number and aliases, as set by the test (a ``RegistryPort``).

    Args:
        folder: Where "downloaded" versions are said to be (``<folder>/<name>/<version>``).
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.versions: dict[tuple[str, int], VersionInfo] = {}
        self.aliases: dict[tuple[str, str], int] = {}

    def register(self, name: str, version: int, *, alias: str | None = None) -> VersionInfo:
        """Add a version (and point ``alias`` at it)."""
        info = VersionInfo(name=name, version=version, run_id=f"run-{version}", files={})
        self.versions[name, version] = info
        if alias is not None:
            self.aliases[name, alias] = version
        return info

    async def by_alias(self, name: str, alias: str) -> VersionInfo:
        if (name, alias) not in self.aliases:
            raise NotRegisteredYet(f"no alias {name}@{alias}")
        return await self.version(name, self.aliases[name, alias])

    async def version(self, name: str, version: int) -> VersionInfo:
        if (name, version) not in self.versions:
            raise RegistryError(f"no version {name}/{version}")
        return self.versions[name, version]

    async def download(self, info: VersionInfo) -> Path:
        return self.folder / info.name / str(info.version)


class FakeLoader:
    """Loads a "folder" into a predictor answering its version number (a ``ModelLoaderPort``).

    A folder whose version is in ``broken`` cannot be loaded.
    """

    def __init__(self, make: Callable[[int], Predictor]) -> None:
        self.make = make
        self.broken: set[int] = set()
        self.loaded: list[Path] = []

    def __call__(self, folder: Path, /, *, model: str = "") -> Predictor:
        version = int(folder.name)
        if version in self.broken:
            raise ModelLoadError(f"version {version} is broken")
        self.loaded.append(folder)
        return self.make(version)
