"""Filters of :mod:`driftloop_kit.search` in SQL, equal on SQLite and PostgreSQL.

LIKE is case-sensitive and ILIKE is not, on SQLite as on PostgreSQL (SQLite's own
LIKE ignores case, so there LIKE becomes GLOB). A backslash escapes ``%`` and
``_`` in patterns, as in MLflow.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import ColumnElement, and_, not_, or_

from driftloop_kit.search import And, Comparison, Expr, Not, Or, Value

__all__ = ["combine", "compare", "like_to_glob"]


def like_to_glob(pattern: str) -> str:
    """Translate a LIKE pattern to SQLite's case-sensitive GLOB.

    ``%`` → ``*``, ``_`` → ``?``; GLOB's own wildcards are bracketed to stay
    literal; a backslash makes the next character literal.
    """
    out: list[str] = []
    chars = iter(pattern)
    for ch in chars:
        if ch == "\\":
            literal = next(chars, "\\")
            out.append({"*": "[*]", "?": "[?]", "[": "[[]"}.get(literal, literal))
        elif ch == "%":
            out.append("*")
        elif ch == "_":
            out.append("?")
        elif ch in "*?[":
            out.append(f"[{ch}]")
        else:
            out.append(ch)
    return "".join(out)


def compare(column: Any, op: str, value: Value, dialect: str) -> ColumnElement[bool]:
    """``column op value`` in SQL, with LIKE's case rules equal on both databases.

    Args:
        column: A column or SQL expression.
        op: An operator of the grammar, upper case (``=``, ``NOT IN``, ``ILIKE`` ...).
        value: The literal (a tuple for ``IN``).
        dialect: ``"sqlite"`` or ``"postgresql"``.
    """
    negated = op.startswith("NOT ")
    base = op.removeprefix("NOT ")
    if base == "IN":
        assert isinstance(value, tuple)
        clause: ColumnElement[bool] = column.in_(list(value))
    elif base == "LIKE":
        if dialect == "sqlite":
            clause = column.op("GLOB", is_comparison=True)(like_to_glob(str(value)))
        else:
            clause = column.like(value)
    elif base == "ILIKE":
        clause = column.ilike(value, escape="\\" if dialect == "sqlite" else None)
    else:
        clause = {
            "=": column.__eq__,
            "!=": column.__ne__,
            "<": column.__lt__,
            "<=": column.__le__,
            ">": column.__gt__,
            ">=": column.__ge__,
        }[base](value)
    return not_(clause) if negated else clause


def combine(expr: Expr, leaf: Callable[[Comparison], ColumnElement[bool]]) -> ColumnElement[bool]:
    """The SQL of a whole filter: ``leaf`` turns each comparison into a clause."""
    if isinstance(expr, And):
        return and_(*(combine(item, leaf) for item in expr.items))
    if isinstance(expr, Or):
        return or_(*(combine(item, leaf) for item in expr.items))
    if isinstance(expr, Not):
        return not_(combine(expr.item, leaf))
    return leaf(expr)
