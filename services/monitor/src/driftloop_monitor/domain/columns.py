"""What kind of values a column holds, and which prediction rows do not fit it.

Prediction records carry typed values (``common.v1.Value``): a string column's values
are strings, a boolean's booleans, numbers are ``int64`` or ``double``. A column's kind
is read from the reference data's values (:func:`value_kind`); a window's row whose value
is of another kind is refused (:func:`check_rows`), so that a mistyped record goes to the
dead-letter topic instead of turning into a spurious category (``3.0`` next to
``"red"``) or a silently dropped number.

String and boolean columns are categorical whatever their number of distinct values
(:func:`categorical`); Evidently's own inference would call a string column with more
than half its values distinct "text", and a boolean column with a missing value
"unknown". The model's ``monitor.column_types`` overrides both.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping, Sequence
from typing import Any

import pandas as pd  # type: ignore[import-untyped]

__all__ = ["ColumnKinds", "MistypedRow", "categorical", "check_rows", "value_kind"]

#: Column -> ``"number"``, ``"string"`` or ``"bool"``; other columns are not checked.
ColumnKinds = Mapping[str, str]

#: ``pandas.api.types.infer_dtype`` (missing values skipped) -> the kind of a column.
_INFERRED = {
    "string": "string",
    "boolean": "bool",
    "integer": "number",
    "floating": "number",
    "mixed-integer-float": "number",
}

#: The Python types a row's value may have, per kind (None: a missing value).
_ACCEPTED: dict[str, frozenset[type]] = {
    "number": frozenset({int, float, type(None)}),
    "string": frozenset({str, type(None)}),
    "bool": frozenset({bool, type(None)}),
}


class MistypedRow(ValueError):
    """A row whose value does not fit its column's kind."""


def value_kind(column: pd.Series) -> str | None:
    """``"number"``, ``"string"`` or ``"bool"`` by the column's values (missing ones
    skipped); None for anything else (dates, lists, mixed, empty): not checked."""
    if column.dtype.name == "category":
        return None
    return _INFERRED.get(pd.api.types.infer_dtype(column, skipna=True))


def categorical(column: pd.Series) -> bool:
    """Whether a column is categorical by its values alone: strings or booleans."""
    return value_kind(column) in ("string", "bool")


def check_rows(rows: Sequence[MutableMapping[str, Any]], kinds: ColumnKinds) -> None:
    """Refuse rows whose values do not fit their column's kind.

    A number 0 or 1 in a boolean column is read as False or True, in place: records
    logged before inputs were typed carried every input as a double.

    Raises:
        MistypedRow: Naming the row, the column, its kind and the value.
    """
    groups = _grouped(kinds)
    for index, row in enumerate(rows):
        get = row.get
        for kind, names, accepted in groups:
            # One set of the value types per kind: the hot path of every prediction.
            if not accepted.issuperset(map(type, map(get, names))):
                _check_one(index, row, kind, names)


def _check_one(
    index: int, row: MutableMapping[str, Any], kind: str, names: tuple[str, ...]
) -> None:
    for name in names:
        value = row.get(name)
        if type(value) in _ACCEPTED[kind]:
            continue
        if kind == "bool" and type(value) in (int, float) and value in (0, 1):
            row[name] = bool(value)
            continue
        raise MistypedRow(
            f"input row {index}: column {name!r} holds {kind} values, "
            f"not {type(value).__name__} {_shown(value)}"
        )


_Groups = list[tuple[str, tuple[str, ...], frozenset[type]]]
#: Kinds grouped, by the identity of the kinds object (each version's reference keeps
#: one, asked for again and again, and predictions of several versions interleave); the
#: object is kept beside its groups so that its id is not reused while it is cached.
_seen: dict[int, tuple[ColumnKinds, _Groups]] = {}
_SEEN_MAX = 256


def _grouped(kinds: ColumnKinds) -> _Groups:
    found = _seen.get(id(kinds))
    if found is not None and found[0] is kinds:
        return found[1]
    groups = [
        (kind, tuple(name for name, k in kinds.items() if k == kind), accepted)
        for kind, accepted in _ACCEPTED.items()
        if kind in kinds.values()
    ]
    if len(_seen) >= _SEEN_MAX:
        _seen.clear()
    _seen[id(kinds)] = (kinds, groups)
    return groups


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
