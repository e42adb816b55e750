"""Where single-row predictions wait for their label: memory, or a faust table.

Both fit :class:`~driftloop_monitor.service_layer.ports.WaitingPredictionsPort`; the
stream engine decides which one the label join uses:

- :class:`MemoryWaiting` (the ``bus`` engine): a dict; a restart forgets it (the engine
  stores the waiting predictions with each batch and loads them back).
- :class:`TableWaiting` (the ``faust`` engine): a faust table keyed by request id.
  ``predictions`` and ``labels`` share that key and their partition count, so a label
  meets its prediction in the same partition, and the table is recovered from its
  changelog after a restart. The table belongs to the engine's faust app, which is
  built when the engine starts: the engine hands it over with :meth:`TableWaiting.attach`.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import MutableMapping
from typing import Any

import msgspec

__all__ = ["MemoryWaiting", "TableWaiting"]

_ENCODE = msgspec.msgpack.Encoder().encode
_DECODE = msgspec.msgpack.Decoder(list[dict[str, Any]]).decode


class MemoryWaiting:
    """Waiting predictions in a dict, each key's entries kept encoded (msgpack).

    Encoded, the hundreds of thousands of predictions that wait for a label are bytes,
    which the garbage collector does not walk: kept as lists of dicts they made every
    full collection walk one list each, and those walks grew with the waiting set to a
    tenth of the stream's CPU (measured, ``bench/monitor.py``).
    """

    def __init__(self) -> None:
        self._pending: dict[bytes, bytes] = {}

    def get(self, key: bytes) -> list[dict[str, Any]]:
        found = self._pending.get(key)
        return _DECODE(found) if found else []

    def put(self, key: bytes, entries: list[dict[str, Any]]) -> None:
        self._pending[key] = _ENCODE(entries)

    def drop(self, key: bytes) -> None:
        self._pending.pop(key, None)


class TableWaiting:
    """Waiting predictions in a faust table of raw bytes (JSON encoded here).

    Args:
        name: The table's name (its changelog topic is named after it).
        partitions: Partitions of the table; those of ``predictions``.
    """

    def __init__(self, name: str = "pending-labels", *, partitions: int) -> None:
        self.name = name
        self.partitions = partitions
        self.table: MutableMapping[bytes, bytes | None] = _NotAttached()

    def attach(self, app: Any) -> None:
        """Create the table in the faust ``app`` (before the app starts)."""
        self.table = app.Table(self.name, default=None, partitions=self.partitions)

    def get(self, key: bytes) -> list[dict[str, Any]]:
        stored = self.table.get(key)
        return list(json.loads(stored)) if stored else []

    def put(self, key: bytes, entries: list[dict[str, Any]]) -> None:
        self.table[key] = json.dumps(entries).encode()

    def drop(self, key: bytes) -> None:
        with contextlib.suppress(KeyError):
            del self.table[key]


class _NotAttached(dict[bytes, bytes | None]):
    """The table before :meth:`TableWaiting.attach`: any use is a wiring mistake."""

    def __getitem__(self, key: bytes) -> bytes | None:
        raise RuntimeError("the faust engine has not attached its table yet")

    def get(self, key: bytes, default: Any = None) -> Any:
        raise RuntimeError("the faust engine has not attached its table yet")

    def __setitem__(self, key: bytes, value: bytes | None) -> None:
        raise RuntimeError("the faust engine has not attached its table yet")
