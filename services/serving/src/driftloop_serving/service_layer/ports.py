"""What the use cases need of the world, as protocols.

The real classes (:class:`~driftloop_serving.adapters.registry.RegistryClient`,
:class:`~driftloop_serving.adapters.features.FeaturesClient`,
:class:`~driftloop_serving.adapters.prediction_log.PredictionLog`,
:func:`~driftloop_serving.adapters.flavors.load_model`,
:class:`~driftloop_serving.service_layer.models.ModelManager`) and the test fakes
(``tests/fakes/serving.py``) both fit them, checked by mypy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from driftloop_events.envelope import KafkaRecord
from driftloop_serving.domain.entities import Entities, FeatureSource
from driftloop_serving.domain.models import Predictor, ServedModel, Slot, VersionInfo

__all__ = [
    "FeaturesPort",
    "ModelLoaderPort",
    "PredictionLogPort",
    "RegistryPort",
    "ServedModelsPort",
    "SlotsPort",
]


class RegistryPort(Protocol):
    """Where versions and their files come from (the registry service)."""

    async def by_alias(self, name: str, alias: str) -> VersionInfo:
        """The version ``alias`` points to now.

        Raises:
            RegistryError: The registry refused or could not answer.
        """
        ...

    async def version(self, name: str, version: int) -> VersionInfo:
        """A version by number (raises ``RegistryError`` as :meth:`by_alias`)."""
        ...

    async def download(self, info: VersionInfo) -> Path:
        """The version's files in a local folder, each checked against its SHA-256.

        Raises:
            RegistryError: A file cannot be downloaded or does not match.
        """
        ...


class ModelLoaderPort(Protocol):
    """Turns a downloaded MLflow model folder into a predictor (blocking: run in a thread)."""

    def __call__(self, folder: Path, /, *, model: str = "") -> Predictor:
        """The loaded model (a version of the registered ``model``).

        Raises:
            ModelLoadError: The folder cannot be served.
        """
        ...


class FeaturesPort(Protocol):
    """Where the features of a request with entity keys are read (the features service)."""

    async def get_online_features(
        self, *, source: FeatureSource, entities: Entities
    ) -> Mapping[str, Any]:
        """``/get-online-features``' answer for ``entities`` (Feast's full feature names).

        Raises:
            DriftloopError: With the status the request is answered (503, 502, 404, 400).
        """
        ...


class PredictionLogPort(Protocol):
    """Where prediction records go (the ``predictions`` topic, through a buffer)."""

    def record(self, record: KafkaRecord) -> None:
        """Queue one record; never blocks, never raises for a broker problem."""
        ...


class ServedModelsPort(Protocol):
    """The loaded versions, as the scorer reads them."""

    def get(self, name: str, alias: str) -> ServedModel | None:
        """The model serving ``alias`` now, if one is loaded."""
        ...


class SlotsPort(Protocol):
    """Which ``(model, alias)`` slots are loaded, changed while serving runs."""

    def want(self, slots: Sequence[Slot]) -> None:
        """Load these slots (in the background) and keep them in step with the registry."""
        ...

    def unwant(self, slots: Sequence[Slot]) -> None:
        """Stop loading and serving these slots."""
        ...
