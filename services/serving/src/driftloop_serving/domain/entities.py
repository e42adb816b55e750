"""Requests that send entity keys instead of features, and the feature matrix built for them.

A request is read as entity keys when a feature source applies to it (the model's
``feature_services`` setting, or a ``feature_service`` the request names) and it
carries none of the model's features:

- V2: one tensor per join key, shape ``[rows]`` or ``[rows, 1]``, named after the key,
  e.g. ``{"name": "flower_id", "shape": [2], "datatype": "INT64", "data": [1, 2]}``;
- MLflow: ``dataframe_records`` / ``dataframe_split`` (or ``inputs`` / ``instances``
  as records or columns) whose columns are the join keys only.

A request that names a feature service (V2 ``parameters.feature_service``, MLflow
``params.feature_service``) is always read as entity keys. Otherwise, when the
model has a feature service configured, a request whose inputs are named after none
of the model's signature columns (and is not one ``[rows, features]`` matrix) is;
models without a signature take entity keys only when the request names the
feature service.

The online features come back in the JSON of ``feast serve``; :func:`feature_matrix`
puts them in the model signature's column order (or the feature service's order
when the model has no signature) and refuses entities with no, stale or null values.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from driftloop_kit.errors import DriftloopError, InvalidInput, NotFound
from driftloop_serving.domain.protocols import V2_NUMERIC, BadRequest

#: Why a model typed by its signature takes no entity keys: their features are read
#: into a float matrix.
TYPED_ENTITIES = (
    "entity keys are served for models whose columns are all numbers; this model's "
    "signature types its columns: send its features"
)

#: Join key -> one value per entity row, as sent to ``/get-online-features``.
Entities = dict[str, list[Any]]

#: A Feast feature service name, or ``view:feature`` references.
FeatureSource = str | list[str]

Matrix = np.ndarray[Any, Any]

_INTEGER = frozenset(k for k, v in V2_NUMERIC.items() if np.issubdtype(v, np.integer))

# Statuses of ``feast serve``: the entity is unknown to the view, or its row expired.
_MLFLOW_KEYS = ("dataframe_split", "dataframe_records", "instances", "inputs")

_MISSING = {"NOT_FOUND": "no online features", "OUTSIDE_MAX_AGE": "features older than the TTL"}
_NAMED_AT_MOST = 10


class UnknownEntity(NotFound):
    """Some entity keys have no (fresh) online features (404)."""


class UnusableFeatures(InvalidInput):
    """The online features of an entity cannot be scored: null or not a number (422)."""

    status_code = 422


class BadFeatureAnswer(DriftloopError):
    """The features service answered something that is not ``feast serve``'s JSON (502)."""

    status_code = 502
    error_code = "TEMPORARILY_UNAVAILABLE"


def requested_source(parameters: Any, where: str) -> str | None:
    """The ``feature_service`` a request names in its ``parameters`` (V2) or ``params`` (MLflow).

    Raises:
        BadRequest: ``parameters`` is not an object, or ``feature_service`` not a name.
    """
    if parameters is None:
        return None
    if not isinstance(parameters, dict):
        raise BadRequest(f"'{where}' must be an object")
    name = parameters.get("feature_service")
    if name is None:
        return None
    if not isinstance(name, str) or not name:
        raise BadRequest(f"'{where}.feature_service' must be a feature service name")
    return name


def describe(source: FeatureSource) -> str:
    """``feature service 'x'`` or ``features a:b, c:d``, for messages."""
    return f"feature service {source!r}" if isinstance(source, str) else f"features {source}"


def _scalar(value: Any, what: str) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or (isinstance(value, float) and math.isnan(value)):
        raise BadRequest(f"{what}: an entity key is null")
    if not isinstance(value, str | bytes | int | float | bool):
        raise BadRequest(f"{what}: entity keys must be numbers or strings, got {value!r}")
    return value


def _text(value: Any, what: str) -> str:
    """A string key as is, or ``bytes`` that are UTF-8 text (a binary ``BYTES`` tensor's)."""
    if isinstance(value, bytes):
        try:
            return value.decode()
        except UnicodeDecodeError:
            raise BadRequest(f"{what}: {value!r} is not UTF-8 text") from None
    if not isinstance(value, str):
        raise BadRequest(f"{what}: BYTES data must be strings")
    return value


def _flat(data: Any) -> list[Any]:
    if isinstance(data, np.ndarray):  # a binary tensor's values (binary_tensors)
        return list(data.reshape(-1).tolist())
    if not isinstance(data, list):
        return [data]
    out: list[Any] = []
    for item in data:
        out.extend(_flat(item))
    return out


def _same_length(entities: Entities) -> Entities:
    lengths = {key: len(values) for key, values in entities.items()}
    if len(set(lengths.values())) != 1:
        raise BadRequest(f"every entity key needs the same number of rows, got {lengths}")
    if not next(iter(lengths.values())):
        raise BadRequest("no entity rows to score")
    return entities


def _not_features(names: Sequence[str], columns: Sequence[str]) -> None:
    features = [n for n in names if n in columns]
    if features:
        raise BadRequest(
            f"{', '.join(features)}: a feature of the model, not an entity key; send either "
            "the features or only entity keys"
        )


# -- V2 --------------------------------------------------------------------------------


def _is_matrix(tensor: Any) -> bool:
    shape = tensor.get("shape")
    return isinstance(shape, list) and (len(shape) > 2 or (len(shape) == 2 and shape[1] != 1))


def v2_entities(body: Any, columns: Sequence[str], *, named: bool) -> Entities | None:
    """The entity keys of a V2 ``infer`` body, or ``None`` when it carries features.

    Args:
        body: The request body.
        columns: The model's signature columns.
        named: The request names its feature service: its inputs must be entity keys.

    Raises:
        BadRequest: The body is read as entity keys but malformed.
    """
    inputs = body.get("inputs") if isinstance(body, dict) else None
    if not isinstance(inputs, list) or not inputs or not all(isinstance(t, dict) for t in inputs):
        if named:
            raise BadRequest("the request needs a non-empty 'inputs' list of entity keys")
        return None
    names = [str(t.get("name") or "") for t in inputs]
    if not named and (
        not columns or any(n in columns for n in names) or any(_is_matrix(t) for t in inputs)
    ):
        return None
    _not_features(names, columns)
    entities: Entities = {}
    for name, tensor in zip(names, inputs, strict=True):
        if not name:
            raise BadRequest("every entity key input needs a 'name' (the join key)")
        if name in entities:
            raise BadRequest(f"entity key {name!r} is given twice")
        shape, datatype = tensor.get("shape"), tensor.get("datatype")
        if (
            not isinstance(shape, list)
            or not all(isinstance(d, int) and d >= 0 for d in shape)
            or not 1 <= len(shape) <= 2
            or (len(shape) == 2 and shape[1] != 1)
        ):
            raise BadRequest(f"entity key {name!r}: 'shape' must be [rows] or [rows, 1]")
        if datatype != "BYTES" and datatype not in V2_NUMERIC:
            raise BadRequest(
                f"entity key {name!r}: datatype {datatype!r} is not supported "
                f"(use BYTES or one of {', '.join(V2_NUMERIC)})"
            )
        values = [_scalar(v, f"entity key {name!r}") for v in _flat(tensor.get("data"))]
        if len(values) != math.prod(shape):
            raise BadRequest(
                f"entity key {name!r}: shape {shape} needs {math.prod(shape)} values, "
                f"got {len(values)}"
            )
        if datatype in _INTEGER:
            if not all(
                isinstance(v, int) or (isinstance(v, float) and v.is_integer()) for v in values
            ):
                raise BadRequest(f"entity key {name!r}: data is not {datatype}")
            values = [int(v) for v in values]
        elif datatype == "BYTES":
            values = [_text(v, f"entity key {name!r}") for v in values]
        entities[name] = values
    return _same_length(entities)


# -- MLflow ----------------------------------------------------------------------------


def _records(records: list[dict[str, Any]], key: str) -> Entities:
    names = list(dict.fromkeys(k for record in records for k in record))
    entities: Entities = {name: [] for name in names}
    for index, record in enumerate(records):
        for name in names:
            if name not in record:
                raise BadRequest(f"'{key}'[{index}]: entity key {name!r} is missing")
            entities[name].append(_scalar(record[name], f"entity key {name!r}"))
    return entities


def _mlflow_names(key: str, value: Any) -> list[str] | None:
    """The column names of an MLflow body's value, or ``None`` when it has none."""
    if key == "dataframe_split":
        if (
            isinstance(value, dict)
            and isinstance(value.get("columns"), list)
            and isinstance(value.get("data"), list)
        ):
            return [str(c) for c in value["columns"]]
        return None
    if isinstance(value, dict):
        return [str(c) for c in value]
    if isinstance(value, list) and value and all(isinstance(r, dict) for r in value):
        return list(dict.fromkeys(str(k) for record in value for k in record))
    return None


def mlflow_entities(body: Any, columns: Sequence[str], *, named: bool) -> Entities | None:
    """The entity keys of an MLflow ``/invocations`` body, or ``None`` when it carries features.

    Args:
        body: The request body (a CSV body is given as ``dataframe_split``).
        columns: The model's signature columns.
        named: The request names its feature service: it must carry entity keys.

    Raises:
        BadRequest: The body is read as entity keys but malformed.
    """
    keys = [k for k in _MLFLOW_KEYS if k in body] if isinstance(body, dict) else []
    if len(keys) != 1:
        return None  # the feature path names the problem
    key, value = keys[0], body[keys[0]]
    names = _mlflow_names(key, value)
    if names is None and named:
        raise BadRequest(
            f"'{key}': name the entity keys, as dataframe_records or dataframe_split with columns"
        )
    if names is None or (
        not named and (not columns or not names or any(n in columns for n in names))
    ):
        return None
    _not_features(names, columns)
    if key == "dataframe_split":
        rows = value["data"]
        if not all(isinstance(row, list) and len(row) == len(names) for row in rows):
            raise BadRequest("'dataframe_split': every row of 'data' needs one value per column")
        return _same_length(
            {
                name: [_scalar(row[i], f"entity key {name!r}") for row in rows]
                for i, name in enumerate(names)
            }
        )
    if isinstance(value, dict):
        return _same_length(
            {
                str(name): [_scalar(v, f"entity key {name!r}") for v in _flat(values)]
                for name, values in value.items()
            }
        )
    return _same_length(_records(value, key))


# -- the online features ---------------------------------------------------------------


def _entity(entities: Entities, row: int) -> str:
    return ", ".join(f"{key}={values[row]!r}" for key, values in entities.items())


class OnlineFeatures(NamedTuple):
    """The features read for a request's entities, as the model sees them.

    Attributes:
        matrix: One row per entity, one column per feature.
        names: The matrix's column names.
        times: Per row, each feature's event time (RFC 3339 UTC text, as the store
            answered it) in ``names``' order; ``None`` where the feature's status is
            not ``PRESENT`` (the store holds no fresh value).
    """

    matrix: Matrix
    names: tuple[str, ...]
    times: list[list[str | None]]

    def times_by_name(self) -> list[dict[str, str | None]]:
        """Per row, feature name -> event time (what an answer carries)."""
        return [dict(zip(self.names, row, strict=True)) for row in self.times]


def _answer_columns(
    answer: Any, rows: int
) -> dict[str, tuple[list[Any], list[str], list[str | None]]]:
    """Feature name -> (values, statuses, event times), from ``feast serve``'s JSON.

    An event time is ``None`` where the status is not ``PRESENT``, or when the answer
    carries none (Feast leaves ``event_timestamps`` out of some answers).
    """
    try:
        names = answer["metadata"]["feature_names"]
        results = answer["results"]
        if len(names) != len(results):
            raise ValueError("feature_names and results differ in length")
        found: dict[str, tuple[list[Any], list[str], list[str | None]]] = {}
        for name, result in zip(names, results, strict=True):
            values, statuses = list(result["values"]), [str(s) for s in result["statuses"]]
            stamps = result.get("event_timestamps") or [None] * rows
            if len(values) != rows or len(statuses) != rows or len(stamps) != rows:
                raise ValueError(f"{name}: {len(values)} values for {rows} entity rows")
            times = [
                str(stamp) if status == "PRESENT" and stamp is not None else None
                for stamp, status in zip(stamps, statuses, strict=True)
            ]
            found[str(name)] = (values, statuses, times)
    except (KeyError, TypeError, ValueError) as error:
        raise BadFeatureAnswer(
            f"the features service answered an unexpected body: {error}"
        ) from None
    return found


def _short(name: str) -> str:
    """``sepal_length`` for ``iris_features__sepal_length`` (Feast's full feature name)."""
    return name.split("__", 1)[1] if "__" in name else name


def _pick(
    features: Mapping[str, Any], columns: Sequence[str], source: FeatureSource
) -> tuple[list[str], tuple[str, ...]]:
    """The answer's features to use, in order, and the matrix's column names."""
    by_short: dict[str, list[str]] = {}
    for name in features:
        by_short.setdefault(_short(name), []).append(name)
    if not columns:
        picked = list(features)
        return picked, tuple(_short(n) if len(by_short[_short(n)]) == 1 else n for n in picked)
    picked = []
    for column in columns:
        if column in features:
            picked.append(column)
        elif len(by_short.get(column, ())) == 1:
            picked.append(by_short[column][0])
        else:
            given = ", ".join(features) or "none"
            why = "is ambiguous in" if by_short.get(column) else "is not given by"
            raise InvalidInput(
                f"the model's feature {column!r} {why} {describe(source)} (it gives: {given})"
            )
    return picked, tuple(columns)


def _refuse_missing(
    features: Mapping[str, tuple[list[Any], list[str], list[str | None]]],
    picked: Sequence[str],
    entities: Entities,
    source: FeatureSource,
) -> None:
    """Raise :class:`UnknownEntity` naming the entities with no (fresh) features."""
    missing: dict[str, list[str]] = {}
    for row in range(len(next(iter(entities.values())))):
        for name in picked:
            status = features[name][1][row]
            if status in _MISSING:
                missing.setdefault(status, []).append(_entity(entities, row))
                break
    if not missing:
        return
    parts = []
    for status, which in missing.items():
        shown = "; ".join(which[:_NAMED_AT_MOST])
        more = f" and {len(which) - _NAMED_AT_MOST} more" if len(which) > _NAMED_AT_MOST else ""
        parts.append(f"{_MISSING[status]} ({status}) for {shown}{more}")
    raise UnknownEntity(f"unknown entity in {describe(source)}: " + "; ".join(parts))


def feature_matrix(
    answer: Mapping[str, Any],
    *,
    columns: Sequence[str],
    entities: Entities,
    source: FeatureSource,
) -> OnlineFeatures:
    """The feature matrix of ``entities`` and the features' event times, from a
    ``/get-online-features`` answer.

    The answer's features are matched to ``columns`` by Feast's full name
    (``view__feature``) or, when only one view gives it, the feature's own name.

    Args:
        answer: The body ``feast serve`` answered (asked with ``full_feature_names``).
        columns: The model's signature columns (empty: every feature, in the answer's
            order).
        entities: The entity keys asked for.
        source: Where the features came from, for messages.

    Returns:
        The matrix (one row per entity), its column names and the features' event times.

    Raises:
        UnknownEntity: Some entities have no online features, or only expired ones.
        UnusableFeatures: A feature of an entity is null or not a number.
        InvalidInput: The source does not give a feature the model takes.
        BadFeatureAnswer: The answer is not ``feast serve``'s JSON.
    """
    rows = len(next(iter(entities.values())))
    found = _answer_columns(answer, rows)
    features = {name: data for name, data in found.items() if name not in entities}
    picked, names = _pick(features, columns, source)
    if not picked:
        raise InvalidInput(f"{describe(source)} gives no features")
    _refuse_missing(features, picked, entities, source)
    matrix = np.empty((rows, len(picked)), dtype=np.float64)
    for index, (column, name) in enumerate(zip(names, picked, strict=True)):
        values, statuses, _ = features[name]
        for row, (value, status) in enumerate(zip(values, statuses, strict=True)):
            if (
                value is None
                or status == "NULL_VALUE"
                or (isinstance(value, float) and not math.isfinite(value))
            ):
                raise UnusableFeatures(
                    f"feature {column!r} of {_entity(entities, row)} is null (or not finite) "
                    f"in {describe(source)}"
                )
            if not isinstance(value, int | float):  # bool is an int: 1.0 / 0.0
                raise UnusableFeatures(
                    f"feature {column!r} of {_entity(entities, row)} is not a number: {value!r}"
                )
            matrix[row, index] = value
    columns_times = [features[name][2] for name in picked]
    times = [list(row_times) for row_times in zip(*columns_times, strict=True)]
    return OnlineFeatures(matrix, names, times)
