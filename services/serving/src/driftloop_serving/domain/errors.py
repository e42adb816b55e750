"""The errors of a request that cannot be scored as sent (both protocols answer a 400)."""

from __future__ import annotations

__all__ = ["BadRequest", "InputMismatch"]


class BadRequest(Exception):
    """The request cannot be scored as sent; the message says why."""


class InputMismatch(BadRequest):
    """The request's columns or values do not fit the model's signature; the message names
    the column and the row (MLflow's ``INVALID_PARAMETER_VALUE``)."""
