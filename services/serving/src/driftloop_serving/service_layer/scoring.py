"""Scoring a request: pick the version (champion, canary, pinned), predict, log, shadow.

The prediction record (:mod:`driftloop_serving.domain.events`) is built and queued
here, after the answer is computed;
queueing is a memory append, so logging never slows a request down. A request that
sends entity keys instead of features has its features read from the features
service first (:meth:`Scorer.online_matrix`); its record holds the features used,
the entity keys and the features' event times.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from prometheus_client import Counter, Histogram

from driftloop_kit.errors import DriftloopError, InvalidInput, Unavailable
from driftloop_serving.domain.entities import (
    Entities,
    FeatureSource,
    OnlineFeatures,
    feature_matrix,
)
from driftloop_serving.domain.events import PredictionEvents
from driftloop_serving.domain.models import ServedModel
from driftloop_serving.domain.signature import Batch
from driftloop_serving.service_layer.batching import MicroBatcher
from driftloop_serving.service_layer.catalog import Catalog
from driftloop_serving.service_layer.ports import (
    FeaturesPort,
    PredictionLogPort,
    ServedModelsPort,
)
from driftloop_serving.settings import ServingSettings

__all__ = ["Answer", "ModelRefused", "Scorer", "UnknownModel"]

REQUESTS = Counter(
    "driftloop_serving_requests_total", "Scored requests by model and route.", ["model", "route"]
)
FAILURES = Counter(
    "driftloop_serving_request_failures_total",
    "Requests the routed version failed to score (the model raised), by model and route.",
    ["model", "route"],
)
LATENCY = Histogram(
    "driftloop_serving_predict_seconds",
    "Time to score a request (model only).",
    ["model"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
)

FEATURE_LOOKUP = Histogram(
    "driftloop_serving_feature_lookup_seconds",
    "Time to read a request's online features from the features service.",
    ["model"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0),
)
FEATURE_LOOKUP_ERRORS = Counter(
    "driftloop_serving_feature_lookup_errors_total",
    "Requests with entity keys refused or failed, by model and status answered.",
    ["model", "status"],
)


class UnknownModel(LookupError):
    """The model (or version) asked for is not served here."""


class ModelRefused(InvalidInput):
    """The model raised on the request's inputs (400, as MLflow's scoring server
    answers it); nothing is logged."""


@dataclass(frozen=True)
class Answer:
    """What answered a request, and the answer.

    Attributes:
        probabilities: The class probabilities, when the request asked for them.
    """

    model: ServedModel
    route: str
    predictions: np.ndarray[Any, Any]
    request_id: str
    probabilities: np.ndarray[Any, Any] | None = None


def _refused(model: ServedModel, inputs: Any, error: Exception) -> DriftloopError:
    """Why the model could not score ``inputs``: a null in a float matrix (named by
    column and row), else the model's own error."""
    if isinstance(inputs, np.ndarray) and inputs.dtype.kind == "f":
        nulls = np.argwhere(np.isnan(inputs))
        if len(nulls):
            row, index = (int(i) for i in nulls[0])
            columns = model.predictor.columns
            name = columns[index].name if index < len(columns) else f"f{index}"
            return InvalidInput(
                f"column {name!r}, row {row}: null, and the model takes a number there"
            )
    return ModelRefused(
        f"version {model.version} of {model.name} cannot score the input: "
        f"{type(error).__name__}: {error}"
    )


@dataclass(frozen=True)
class _Scored:
    """A request's answer from its model, before it is counted and logged."""

    name: str
    model: ServedModel
    route: str
    matrix: np.ndarray[Any, Any] | Batch
    predictions: np.ndarray[Any, Any]
    probabilities: np.ndarray[Any, Any] | None
    started: float


class Scorer:
    """Answers scoring requests with the served models and logs every answer.

    Args:
        settings: Which models, which aliases, which traffic policies.
        models: The loaded versions.
        log: Where prediction records go.
        features: Where requests with entity keys get their features (none: such
            requests are answered 503).
        catalog: The served models and their policies (default: the settings' models).
    """

    def __init__(
        self,
        settings: ServingSettings,
        models: ServedModelsPort,
        log: PredictionLogPort,
        features: FeaturesPort | None = None,
        catalog: Catalog | None = None,
    ) -> None:
        self.settings = settings
        self.catalog = catalog if catalog is not None else Catalog(settings)
        self.models = models
        self.log = log
        self.features = features
        self._random = random.Random()
        self._batcher = MicroBatcher(self._predict)
        self._events = PredictionEvents()
        # Per served model, worked out once: its metric children (prometheus' labels()
        # is a dictionary look-up and a lock on every call).
        self._latency: dict[str, Any] = {}
        self._requests: dict[tuple[str, str], Any] = {}

    def names(self) -> list[str]:
        """The served model names."""
        return self.catalog.names()

    def columns(self, name: str) -> tuple[str, ...]:
        """The input columns of ``name``'s champion (empty when it has no signature)."""
        model = self.resolve(name, None)
        return tuple(column.name for column in model.predictor.columns)

    def resolve(self, name: str, version: int | None) -> ServedModel:
        """The champion of ``name``, or a pinned version that is loaded.

        Raises:
            UnknownModel: If the model is not served, or that version is not loaded.
        """
        if self.catalog.get(name) is None:
            raise UnknownModel(f"Model {name!r} is not served here")
        policy = self.catalog.policy(name)
        slots = (self.settings.alias, policy.challenger_alias)
        loaded = [m for m in (self.models.get(name, alias) for alias in slots) if m is not None]
        if version is None:
            champion = self.models.get(name, self.settings.alias)
            if champion is None:
                raise UnknownModel(f"Model {name!r} has no version loaded yet")
            return champion
        for model in loaded:
            if model.version == version:
                return model
        raise UnknownModel(f"Version {version} of model {name!r} is not loaded")

    def versions(self, name: str) -> list[int]:
        """The loaded versions of ``name`` (champion first)."""
        policy = self.catalog.policy(name)
        found = [
            self.models.get(name, alias) for alias in (self.settings.alias, policy.challenger_alias)
        ]
        return list(dict.fromkeys(m.version for m in found if m is not None))

    def feature_source(self, name: str, requested: str | None) -> FeatureSource | None:
        """Where ``name``'s features come from for a request with entity keys.

        Args:
            name: The model.
            requested: The feature service the request names, if any (it wins).

        Returns:
            The feature service or references, or ``None`` when neither the request nor
            the model's document or the ``feature_services`` setting names one (the
            request carries features).
        """
        if requested is not None:
            return requested
        return self.catalog.feature_source(name)

    async def online_matrix(
        self,
        name: str,
        *,
        source: FeatureSource,
        entities: Entities,
        columns: Sequence[str],
    ) -> OnlineFeatures:
        """The feature matrix of ``entities``, read from the features service.

        Returns:
            The matrix, in ``columns``' order (or the source's when ``columns`` is
            empty), its column names and the features' event times.

        Raises:
            DriftloopError: Unavailable (503) or failing (502) features service,
                unknown feature service or entity (404), keys or values that cannot
                be scored (400, 422).
        """
        started = time.perf_counter()
        try:
            if self.features is None:
                raise Unavailable("no features service is configured")
            answer = await self.features.get_online_features(source=source, entities=entities)
            found = feature_matrix(answer, columns=columns, entities=entities, source=source)
        except DriftloopError as error:
            FEATURE_LOOKUP_ERRORS.labels(name, str(error.status_code)).inc()
            raise
        FEATURE_LOOKUP.labels(name).observe(time.perf_counter() - started)
        return found

    def score(
        self,
        name: str,
        matrix: np.ndarray[Any, Any] | Batch,
        *,
        version: int | None = None,
        request_id: str | None = None,
        entities: Entities | None = None,
        feature_names: Sequence[str] | None = None,
        feature_times: Sequence[Sequence[str | None]] | None = None,
        probabilities: bool = False,
    ) -> Answer:
        """Predict with the version the policy picks; log the answer (and a shadow's).

        Args:
            name: The model.
            matrix: The features, one row per prediction: a float matrix in the model's
                column order, or the batch typed by its signature (a typed model).
            version: A loaded version to answer with, instead of the policy's pick.
            request_id: The client's request id (default: a random one).
            entities: The entity keys the features were read for, logged with them.
            feature_names: The matrix's column names, when read for entity keys.
            feature_times: Per row, those features' event times (logged with them).
            probabilities: Answer the class probabilities too (``predict_proba``).

        Raises:
            UnknownModel: As :meth:`resolve`.
            InvalidInput: Too many rows, no ``predict_proba``, or inputs the model
                refused (:class:`ModelRefused`); nothing is logged.
        """
        self._check_rows(matrix)
        started = time.perf_counter()
        model, route, challenger = self._route(name, version)
        try:
            predictions, proba = self._predict(model, matrix, probabilities)
        except Exception:
            FAILURES.labels(name, route).inc()
            raise
        shadow = None
        if challenger is not None:
            shadow_started = time.perf_counter()
            try:
                shadowed = np.asarray(challenger.predictor.predict(matrix))
            except Exception:
                FAILURES.labels(name, "shadow").inc()
                raise
            shadow = (challenger, shadowed, time.perf_counter() - shadow_started)
        return self._answered(
            _Scored(name, model, route, matrix, predictions, proba, started),
            request_id=request_id,
            entities=entities,
            feature_names=feature_names,
            feature_times=feature_times,
            shadow=shadow,
        )

    async def infer(
        self,
        name: str,
        matrix: np.ndarray[Any, Any] | Batch,
        *,
        version: int | None = None,
        request_id: str | None = None,
        entities: Entities | None = None,
        feature_names: Sequence[str] | None = None,
        feature_times: Sequence[Sequence[str | None]] | None = None,
        probabilities: bool = False,
    ) -> Answer:
        """:meth:`score`, in a micro-batch with concurrent requests when the model's
        ``batching`` policy is on (:mod:`~driftloop_serving.service_layer.batching`).

        The request keeps its own answer, error and prediction record. Requests with
        entity keys are scored alone (their records carry their own feature names).
        """
        batching = self.catalog.batching(name)
        if not batching.enabled or entities is not None:
            return self.score(
                name,
                matrix,
                version=version,
                request_id=request_id,
                entities=entities,
                feature_names=feature_names,
                feature_times=feature_times,
                probabilities=probabilities,
            )
        self._check_rows(matrix)
        started = time.perf_counter()
        model, route, challenger = self._route(name, version)
        try:
            predictions, proba = await self._batcher.submit(
                model, matrix, policy=batching, probabilities=probabilities
            )
        except Exception:
            FAILURES.labels(name, route).inc()
            raise
        shadow = None
        if challenger is not None:
            shadow_started = time.perf_counter()
            try:
                shadowed, _ = await self._batcher.submit(challenger, matrix, policy=batching)
            except Exception:
                FAILURES.labels(name, "shadow").inc()
                raise
            shadow = (challenger, shadowed, time.perf_counter() - shadow_started)
        return self._answered(
            _Scored(name, model, route, matrix, predictions, proba, started),
            request_id=request_id,
            entities=None,
            feature_names=feature_names,
            feature_times=None,
            shadow=shadow,
        )

    def _check_rows(self, matrix: np.ndarray[Any, Any] | Batch) -> None:
        if len(matrix) > self.settings.max_rows_per_request:
            raise InvalidInput(
                f"{len(matrix)} rows in one request; at most {self.settings.max_rows_per_request} "
                "(DRIFTLOOP_SERVING_MAX_ROWS_PER_REQUEST)"
            )

    def _route(self, name: str, version: int | None) -> tuple[ServedModel, str, ServedModel | None]:
        """The version that answers, its route, and the challenger that shadows it."""
        model, route = self.resolve(name, version), "champion"
        policy = self.catalog.policy(name)
        challenger = (
            self.models.get(name, policy.challenger_alias)
            if version is None and (policy.canary_percent or policy.shadow)
            else None
        )
        if (
            challenger is not None
            and policy.canary_percent
            and self._random.random() * 100 < policy.canary_percent
        ):
            return challenger, "canary", None
        return model, route, challenger if policy.shadow else None

    def _predict(
        self, model: ServedModel, inputs: np.ndarray[Any, Any] | Batch, probabilities: bool
    ) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any] | None]:
        try:
            predictions = np.asarray(model.predictor.predict(inputs))
            proba = self._probabilities(model, inputs) if probabilities else None
        except DriftloopError:
            raise
        except Exception as error:
            raise _refused(model, inputs, error) from error
        return predictions, proba

    def _answered(
        self,
        scored: _Scored,
        *,
        request_id: str | None,
        entities: Entities | None,
        feature_names: Sequence[str] | None,
        feature_times: Sequence[Sequence[str | None]] | None,
        shadow: tuple[ServedModel, np.ndarray[Any, Any], float] | None,
    ) -> Answer:
        """Count and log a scored request (and its shadow's answer); its answer."""
        name, model, route = scored.name, scored.model, scored.route
        # 32 random hex digits, like uuid4().hex (which is slower to make).
        request_id = request_id or os.urandom(16).hex()
        elapsed = time.perf_counter() - scored.started
        self._latency_of(name).observe(elapsed)
        self._requests_of(name, route).inc()
        self.log.record(
            self._events.logged(
                model=model,
                route=route,
                request_id=request_id,
                matrix=scored.matrix,
                predictions=scored.predictions,
                elapsed=elapsed,
                entities=entities,
                feature_names=feature_names,
                feature_times=feature_times,
            )
        )
        if shadow is not None:
            challenger, shadowed, shadow_elapsed = shadow
            self._requests_of(name, "shadow").inc()
            self.log.record(
                self._events.logged(
                    model=challenger,
                    route="shadow",
                    request_id=request_id,
                    matrix=scored.matrix,
                    predictions=shadowed,
                    elapsed=shadow_elapsed,
                    entities=entities,
                    feature_names=feature_names,
                    feature_times=feature_times,
                )
            )
        return Answer(
            model=model,
            route=route,
            predictions=scored.predictions,
            request_id=request_id,
            probabilities=scored.probabilities,
        )

    @staticmethod
    def _probabilities(model: ServedModel, inputs: Any) -> np.ndarray[Any, Any]:
        predict_proba = model.predictor.predict_proba
        if predict_proba is None:
            raise InvalidInput(
                f"version {model.version} of {model.name} offers no predict_proba "
                f"(its loader: {model.predictor.loader or model.predictor.flavor})"
            )
        return np.asarray(predict_proba(inputs), dtype=np.float64)

    def _latency_of(self, name: str) -> Any:
        child = self._latency.get(name)
        if child is None:
            child = self._latency[name] = LATENCY.labels(name)
        return child

    def _requests_of(self, name: str, route: str) -> Any:
        child = self._requests.get((name, route))
        if child is None:
            child = self._requests[name, route] = REQUESTS.labels(name, route)
        return child
