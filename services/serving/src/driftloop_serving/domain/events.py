"""The events serving builds: ``PredictionLogged``, one per answer (and per shadow answer).

A record holds the request's features (by the model's column names, or the names
they were read under for entity keys, or ``f0``, ``f1`` ...), the entity keys when
the features were read for them, and the outputs (``prediction``, or
``prediction_0``, ``prediction_1`` ... for a row of several values). A record of
features read for entity keys also holds each feature's event time in the store
(``feature_times``, one record per row, null where the store held no fresh value).

Values keep their type: a float matrix's are doubles (encoded by
:mod:`~driftloop_serving.domain.record_wire`); a typed
:class:`~driftloop_serving.domain.signature.Batch`'s are ``int64_value``,
``double_value``, ``bool_value``, ``string_value``, ``bytes_value``,
``timestamp_value`` (UTC) or ``null_value`` as its columns are; a tensor row of
several values is ``<name>_0``, ``<name>_1`` ... (``f0`` ... for an unnamed tensor),
and a row of more dimensions a ``list_value``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from google.protobuf.timestamp_pb2 import Timestamp

from driftloop.common.v1 import common_pb2 as common
from driftloop.serving.v1 import events_pb2 as serving
from driftloop_events.envelope import CloudEvent, KafkaRecord, to_record
from driftloop_events.values import make_value
from driftloop_serving.domain.entities import Entities
from driftloop_serving.domain.models import Predictor, ServedModel
from driftloop_serving.domain.record_wire import RecordEncoder
from driftloop_serving.domain.signature import Batch

__all__ = ["ROUTES", "PredictionEvents"]

ROUTES = {
    "champion": serving.ROUTE_CHAMPION,
    "canary": serving.ROUTE_CANARY,
    "shadow": serving.ROUTE_SHADOW,
    "batch": serving.ROUTE_BATCH,
}

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NULL = common.Value(null_value="NULL_VALUE")


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
        matrix: np.ndarray[Any, Any] | Batch,
        predictions: np.ndarray[Any, Any],
        elapsed: float,
        entities: Entities | None = None,
        feature_names: Sequence[str] | None = None,
        feature_times: Sequence[Sequence[str | None]] | None = None,
    ) -> KafkaRecord:
        """The record of one answer by ``model`` on ``route`` (a key of :data:`ROUTES`),
        for the float matrix or the typed batch it answered (and, for features read for
        entity keys, their event times: RFC 3339 text per row, in ``feature_names``'
        order)."""
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
        if isinstance(matrix, Batch):
            _typed_inputs(event, matrix)
            for answer in predictions.tolist():
                _add_output(event, answer)
        else:
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
            if feature_times and feature_names:
                _add_times(event, feature_names, feature_times)
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
    """Set ``value`` by ``item``'s type: bool, int, float, str, bytes, datetime (UTC),
    null, list, or else its text."""
    if isinstance(item, bool | np.bool_):
        value.bool_value = bool(item)
    elif isinstance(item, int | np.integer):
        value.int64_value = int(item)
    elif isinstance(item, float | np.floating):
        value.double_value = float(item)
    elif isinstance(item, str):
        value.string_value = item
    elif isinstance(item, bytes):
        value.bytes_value = item
    elif item is None:
        value.CopyFrom(_NULL)
    elif isinstance(item, datetime):
        value.timestamp_value.FromDatetime(item if item.tzinfo else item.replace(tzinfo=UTC))
    elif isinstance(item, list | tuple):
        value.CopyFrom(make_value([_plain(v) for v in item]))
    else:
        value.string_value = str(item)


_STAMPS: dict[str, common.Value] = {}
_MAX_STAMPS = 65_536


def _stamp(text: str | None) -> common.Value:
    """An RFC 3339 time as a ``timestamp_value`` (null for ``None``); parsed once per
    distinct text (the rows of a request mostly share a few event times)."""
    if text is None:
        return _NULL
    value = _STAMPS.get(text)
    if value is None:
        value = common.Value()
        value.timestamp_value.FromJsonString(text)
        if len(_STAMPS) >= _MAX_STAMPS:
            _STAMPS.clear()
        _STAMPS[text] = value
    return value


def _add_times(
    event: serving.PredictionLogged,
    names: Sequence[str],
    times: Sequence[Sequence[str | None]],
) -> None:
    """One ``feature_times`` record per row: each feature's event time by its name."""
    for row in times:
        fields = event.feature_times.add().fields
        for name, text in zip(names, row, strict=True):
            fields[name].CopyFrom(_stamp(text))


def _add_output(event: serving.PredictionLogged, answer: Any) -> None:
    fields = event.outputs.add().fields
    if isinstance(answer, list):
        for index, item in enumerate(answer):
            _set(fields[f"prediction_{index}"], item)
    else:
        _set(fields["prediction"], answer)


def _plain(item: Any) -> Any:
    if isinstance(item, list | tuple):
        return [_plain(v) for v in item]
    if isinstance(item, np.generic):
        return item.item()
    return item


def _column_values(array: np.ndarray[Any, Any]) -> list[Any]:
    """A typed column's values as Python values (datetimes as datetimes, NaT as None)."""
    if array.dtype.kind == "M":
        return [
            None if np.isnat(v) else v.astype("datetime64[us]").item().replace(tzinfo=UTC)
            for v in array
        ]
    values: list[Any] = array.tolist()
    if array.dtype.kind == "f":
        return [None if math.isnan(v) else v for v in values]  # NaN: an optional column's null
    return values


def _typed_inputs(event: serving.PredictionLogged, batch: Batch) -> None:
    """One input record per row of ``batch``, every value of its column's type."""
    columns: list[tuple[str, list[Any]]] = []
    for name, array in batch.columns.items():
        if batch.tensor and array.ndim == 2:
            prefix = f"{name}_" if name else "f"
            columns.extend(
                (f"{prefix}{i}", _column_values(array[:, i])) for i in range(array.shape[1])
            )
        else:
            columns.append((name or "input", _column_values(array)))
    for row in range(batch.rows):
        fields = event.inputs.add().fields
        for name, values in columns:
            _set(fields[name], values[row])
