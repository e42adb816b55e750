"""The stream state's blobs: a batch's rows of one window, or its waiting predictions, in
one MessagePack value (msgspec): a speed shortcut past SQLAlchemy's ``JSON`` type.

What it replaces: one table row per prediction with a ``JSON`` column, which SQLAlchemy
encodes row by row with the standard library's ``json`` (a bind processor per value):
at 1,000 predictions of 20 features per batch that encoding, and the 2,000 row inserts
of each batch, were about a quarter of a replica's time (``bench/README.md``). A batch
now stores one row per window and one per partition, each encoded in one call.

MessagePack keeps what JSON would not: integers and floats apart (``1`` and ``1.0``),
NaN and infinities, bytes, and timestamps (as timezone-aware UTC datetimes).

Checked against msgspec 0.23.0: ``tests/unit/monitor/test_monitor_blobs.py`` pins that
version and the round trip of every value kind a row may hold.
"""

from __future__ import annotations

from typing import Any

import msgspec

__all__ = ["CHECKED_AGAINST", "Waiting", "decode_rows", "decode_waiting", "encode"]

#: The msgspec release this module was checked against.
CHECKED_AGAINST = "0.23.0"


class Waiting(msgspec.Struct, array_like=True, frozen=True):
    """One single-row prediction waiting for its label (an array on the wire)."""

    event_id: str
    request_id: str
    model_name: str
    version: int
    run_id: str
    prediction: Any
    time: float
    expires: float

    def pending(self, partition: int) -> dict[str, Any]:
        """As a row of the row-per-prediction layout: not joined, in no window yet."""
        return {
            "event_id": self.event_id,
            "request_id": self.request_id,
            "partition": partition,
            "model_name": self.model_name,
            "version": self.version,
            "run_id": self.run_id,
            "prediction": self.prediction,
            "time": self.time,
            "expires": self.expires,
            "truth": None,
            "perf_window": None,
        }


_encoder = msgspec.msgpack.Encoder()
_rows = msgspec.msgpack.Decoder(list[dict[str, Any]])
_waiting = msgspec.msgpack.Decoder(list[Waiting])


def encode(value: list[dict[str, Any]] | list[Waiting]) -> bytes:
    """One blob of a window's rows or of waiting predictions."""
    return _encoder.encode(value)


def decode_rows(blob: bytes) -> list[dict[str, Any]]:
    """A window's rows back from their blob."""
    return _rows.decode(blob)


def decode_waiting(blob: bytes) -> list[Waiting]:
    """Waiting predictions back from their blob."""
    return _waiting.decode(blob)
