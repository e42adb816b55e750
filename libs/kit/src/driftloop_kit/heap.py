"""The garbage collector's view of a service's heap."""

from __future__ import annotations

import gc

__all__ = ["freeze_heap"]


def freeze_heap() -> None:
    """Move the objects alive now to the GC's permanent generation.

    A started service holds a few hundred thousand objects (its libraries, models,
    compiled statements). Every full collection walks them all, and a request that
    allocates much (a 1000-metric batch) sets one off every dozen calls (bench/README.md
    has what that cost the tracking service). Frozen, they are no longer walked; nothing
    is freed or kept that would not be. Called once the app has started, and again by a
    service that loads a large library later (the monitor imports Evidently off the loop
    after start-up).
    """
    gc.collect()
    gc.freeze()
