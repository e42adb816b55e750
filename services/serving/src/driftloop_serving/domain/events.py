"""The events serving builds: ``PredictionLogged``, one per answer (and per shadow answer).

A record holds the request's features (by the model's column names, or the names
they were read under for entity keys, or ``f0``, ``f1`` ...), the entity keys when
the features were read for them, and the outputs (``prediction``, or
``prediction_0``, ``prediction_1`` ... for a row of several values).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from google.protobuf.timestamp_pb2 import Timestamp

from driftloop.common.v1 import common_pb2 as common
from driftloop.serving.v1 import events_pb2 as serving
from driftloop_events.envelope import CloudEvent, KafkaRecord, to_record
from driftloop_serving.domain.entities import Entities
from driftloop_serving.domain.models import Predictor, ServedModel
from driftloop_serving.domain.record_wire import RecordEncoder

__all__ = ["ROUTES", "PredictionEvents"]

ROUTES = {
    "champion": serving.ROUTE_CHAMPION,
    "canary": serving.ROUTE_CANARY,
    "shadow": serving.ROUTE_SHADOW,
}

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class PredictionEvents:
    """Builds the ``PredictionLogged`` records, keeping per served model what repeats.

    Per model: its ``ModelRef``; per predictor and width: its :class:`RecordEncoder`.
    """

    def __init__(self) -> None:
        self._refs: dict[int, tuple[ServedModel, common.ModelRef]] = {}
        self._encoders: dict[
            tuple[int, int, tuple[str, ...] | None], tuple[Predictor, RecordEncoder]
        ] = {}

    def logged(
        self,
        *,
        model: ServedModel,
        route: str,
        request_id: str,
        matrix: np.ndarray[Any, Any],
        predictions: np.ndarray[Any, Any],
        elapsed: float,
        entities: Entities | None = None,
        feature_names: Sequence[str] | None = None,
    ) -> KafkaRecord:
        """The record of one answer by ``model`` on ``route`` (a key of :data:`ROUTES`)."""
        micros = time.time_ns() // 1000
        seconds, fraction = divmod(micros, 1_000_000)
        event = serving.PredictionLogged(
            request_id=request_id,
            model=self._ref(model),
            alias=model.alias,
            route=ROUTES[route],
            latency_ms=elapsed * 1000,
            request_time=Timestamp(seconds=seconds, nanos=fraction * 1000),
        )
        encode = self._encoder(model, matrix.shape[1], feature_names)
        keys = list(entities.items()) if entities else []
        for position, (row, answer) in enumerate(
            zip(matrix.tolist(), predictions.tolist(), strict=True)
        ):
            record = event.inputs.add()
            record.MergeFromString(encode(row))
            for key, values in keys:  # the entity keys the features were read for
                _set(record.fields[key], values[position])
            output = event.outputs.add()
            if isinstance(answer, list):
                for index, item in enumerate(answer):
                    _set(output.fields[f"prediction_{index}"], item)
            else:
                _set(output.fields["prediction"], answer)
        now = _EPOCH + timedelta(microseconds=micros)
        return to_record(CloudEvent.new(event, time=now))

    def _ref(self, model: ServedModel) -> common.ModelRef:
        cached = self._refs.get(id(model))
        if cached is None or cached[0] is not model:
            ref = common.ModelRef(name=model.name, version=model.version, run_id=model.run_id)
            cached = self._refs[id(model)] = (model, ref)
        return cached[1]

    def _encoder(
        self, model: ServedModel, width: int, feature_names: Sequence[str] | None = None
    ) -> RecordEncoder:
        given = tuple(feature_names) if feature_names and not model.predictor.columns else None
        key = (id(model.predictor), width, given)
        cached = self._encoders.get(key)
        if cached is None or cached[0] is not model.predictor:
            names = (
                list(given or ())
                or [c.name for c in model.predictor.columns]
                or [f"f{i}" for i in range(width)]
            )
            cached = self._encoders[key] = (model.predictor, RecordEncoder(names))
        return cached[1]


def _set(value: common.Value, item: Any) -> None:
    """Set ``value`` by ``item``'s type: bool, int, float, or its text."""
    if isinstance(item, bool | np.bool_):
        value.bool_value = bool(item)
    elif isinstance(item, int | np.integer):
        value.int64_value = int(item)
    elif isinstance(item, float | np.floating):
        value.double_value = float(item)
    else:
        value.string_value = str(item)
