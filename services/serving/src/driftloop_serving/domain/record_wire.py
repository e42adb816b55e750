"""A speed shortcut past protobuf: a row of doubles encoded as a ``common.v1.Record`` by hand.

What it replaces: setting the record's map entries one by one
(``record.fields[name].double_value = x`` for every column), which goes through
protobuf's message API once per entry, for every row of every prediction logged.

Why it is safe: the bytes are the protobuf wire format of that same map (an entry is
``key`` field 1, string, and ``value`` field 2, a ``Value`` whose ``double_value`` is
field 1), packed with one ``struct.pack`` per row, and the record parses them with
``MergeFromString``: the same message. ``tests/unit/serving/test_record_wire.py``
pins the protobuf version it was checked against and compares every record with the
one built field by field (bench/README.md has the figures).
"""

from __future__ import annotations

import struct
from typing import Any

__all__ = ["RecordEncoder"]


def _varint(number: int) -> bytes:
    out = bytearray()
    while True:
        low, number = number & 0x7F, number >> 7
        if not number:
            out.append(low)
            return bytes(out)
        out.append(low | 0x80)


class RecordEncoder:
    """Encodes a row of doubles as a ``common.v1.Record`` (protobuf wire format).

    Args:
        names: The record's field names, one per value of a row, in order.
    """

    def __init__(self, names: list[str]) -> None:
        prefixes = []
        for name in names:
            key = name.encode()
            # map entry: key (field 1, string), value (field 2, Value{double_value: 1}).
            entry = b"\x0a" + _varint(len(key)) + key + b"\x12\x09\x09"
            prefixes.append(b"\x0a" + _varint(len(entry) + 8) + entry)
        self._struct = struct.Struct("<" + "".join(f"{len(p)}sd" for p in prefixes))
        self._slots: list[Any] = [b""] * (2 * len(prefixes))
        self._slots[0::2] = prefixes

    def __call__(self, row: list[float]) -> bytes:
        """The encoded record of ``row`` (one double per name, in order)."""
        args = self._slots.copy()
        args[1::2] = row
        return self._struct.pack(*args)
