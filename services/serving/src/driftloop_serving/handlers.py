"""Scoring a request: pick the version (champion, canary, pinned), predict, log, shadow.

The prediction record is built and queued here, after the answer is computed;
queueing is a memory append, so logging never slows a request down.
"""

from __future__ import annotations

import random
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
from google.protobuf.timestamp_pb2 import Timestamp
from prometheus_client import Counter, Histogram

from driftloop.common.v1 import common_pb2 as common
from driftloop.serving.v1 import events_pb2 as serving
from driftloop_events.envelope import CloudEvent, to_record
from driftloop_serving.adapters.models import ModelManager, ServedModel
from driftloop_serving.adapters.prediction_log import PredictionLog
from driftloop_serving.settings import ServingSettings

REQUESTS = Counter(
    "driftloop_serving_requests_total", "Scored requests by model and route.", ["model", "route"]
)
LATENCY = Histogram(
    "driftloop_serving_predict_seconds",
    "Time to score a request (model only).",
    ["model"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
)

ROUTES = {
    "champion": serving.ROUTE_CHAMPION,
    "canary": serving.ROUTE_CANARY,
    "shadow": serving.ROUTE_SHADOW,
}


class UnknownModel(LookupError):
    """The model (or version) asked for is not served here."""


@dataclass(frozen=True)
class Answer:
    """What answered a request, and the answer."""

    model: ServedModel
    route: str
    predictions: np.ndarray[Any, Any]
    request_id: str


def _value(number: Any) -> common.Value:
    if isinstance(number, bool | np.bool_):
        return common.Value(bool_value=bool(number))
    if isinstance(number, int | np.integer):
        return common.Value(int64_value=int(number))
    if isinstance(number, float | np.floating):
        return common.Value(double_value=float(number))
    return common.Value(string_value=str(number))


class Scorer:
    """Answers scoring requests with the served models and logs every answer.

    Args:
        settings: Which models, which aliases, which traffic policies.
        models: The loaded versions.
        log: Where prediction records go.
    """

    def __init__(self, settings: ServingSettings, models: ModelManager, log: PredictionLog) -> None:
        self.settings = settings
        self.models = models
        self.log = log
        self._random = random.Random()

    def names(self) -> list[str]:
        """The served model names."""
        return self.settings.model_names

    def columns(self, name: str) -> tuple[str, ...]:
        """The input columns of ``name``'s champion (empty when it has no signature)."""
        model = self.resolve(name, None)
        return tuple(column.name for column in model.predictor.columns)

    def resolve(self, name: str, version: int | None) -> ServedModel:
        """The champion of ``name``, or a pinned version that is loaded.

        Raises:
            UnknownModel: If the model is not served, or that version is not loaded.
        """
        if name not in self.settings.model_names:
            raise UnknownModel(f"Model {name!r} is not served here")
        policy = self.settings.policy(name)
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
        policy = self.settings.policy(name)
        found = [
            self.models.get(name, alias) for alias in (self.settings.alias, policy.challenger_alias)
        ]
        return list(dict.fromkeys(m.version for m in found if m is not None))

    def score(
        self,
        name: str,
        matrix: np.ndarray[Any, Any],
        *,
        version: int | None = None,
        request_id: str | None = None,
    ) -> Answer:
        """Predict with the version the policy picks; log the answer (and a shadow's).

        Raises:
            UnknownModel: As :meth:`resolve`.
        """
        started = time.perf_counter()
        request_id = request_id or uuid.uuid4().hex
        model, route = self.resolve(name, version), "champion"
        policy = self.settings.policy(name)
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
            model, route = challenger, "canary"
        predictions = np.asarray(model.predictor.predict(matrix))
        elapsed = time.perf_counter() - started
        LATENCY.labels(name).observe(elapsed)
        REQUESTS.labels(name, route).inc()
        self._log(
            model=model,
            route=route,
            request_id=request_id,
            matrix=matrix,
            predictions=predictions,
            elapsed=elapsed,
        )
        if challenger is not None and policy.shadow and route == "champion":
            shadow_started = time.perf_counter()
            shadowed = np.asarray(challenger.predictor.predict(matrix))
            shadow_elapsed = time.perf_counter() - shadow_started
            REQUESTS.labels(name, "shadow").inc()
            self._log(
                model=challenger,
                route="shadow",
                request_id=request_id,
                matrix=matrix,
                predictions=shadowed,
                elapsed=shadow_elapsed,
            )
        return Answer(model=model, route=route, predictions=predictions, request_id=request_id)

    def _log(
        self,
        *,
        model: ServedModel,
        route: str,
        request_id: str,
        matrix: np.ndarray[Any, Any],
        predictions: np.ndarray[Any, Any],
        elapsed: float,
    ) -> None:
        names = [c.name for c in model.predictor.columns] or [
            f"f{i}" for i in range(matrix.shape[1])
        ]
        now = datetime.now(UTC)
        stamp = Timestamp()
        stamp.FromDatetime(now)
        event = serving.PredictionLogged(
            request_id=request_id,
            model=common.ModelRef(name=model.name, version=model.version, run_id=model.run_id),
            alias=model.alias,
            route=ROUTES[route],
            latency_ms=elapsed * 1000,
            request_time=stamp,
        )
        for row, answer in zip(matrix.tolist(), predictions.tolist(), strict=True):
            record = event.inputs.add()
            for column, value in zip(names, row, strict=True):
                record.fields[column].double_value = value
            output = event.outputs.add()
            if isinstance(answer, list):
                for index, item in enumerate(answer):
                    output.fields[f"prediction_{index}"].CopyFrom(_value(item))
            else:
                output.fields["prediction"].CopyFrom(_value(answer))
        self.log.record(to_record(CloudEvent.new(event, time=now)))
