"""The public helpers for the Python files of a Feast repo served by driftloop.

A repo's files import from here, as they did before the service took its layered
shape (``from driftloop_features.sources import batch_source``); the code lives in
:mod:`driftloop_features.adapters.sources`. Repos seeded by earlier versions keep
working unchanged.
"""

from __future__ import annotations

from driftloop_features.adapters.sources import (
    OfflineKind,
    batch_source,
    offline_kind,
    use_offline_store,
)

__all__ = ["OfflineKind", "batch_source", "offline_kind", "use_offline_store"]
