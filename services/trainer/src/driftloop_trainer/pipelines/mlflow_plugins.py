"""Speed shortcut: keep mlflow from importing all of Feast on a job's first request.

Replaces mlflow's private ``mlflow.utils.plugins._get_entry_points`` with a filter that
drops the ``mlflow.request_header_provider`` entry points of Feast. Feast (installed
beside the trainer when the whole suite shares one environment) registers such a
provider; mlflow loads every provider before its first REST call, and importing Feast
is slow. A job talks to driftloop's tracking and registry, which need no Feast
credentials.

Checked against mlflow-skinny 3.17; ``tests/unit/trainer/test_trainer_mlflow_plugins.py``
pins that version and fails when mlflow changes under it.
"""

from __future__ import annotations

from typing import Any

__all__ = ["without_feast_header_provider"]


def without_feast_header_provider() -> None:
    """Filter Feast's request header provider out of mlflow's entry points (idempotent)."""
    from mlflow.utils import plugins

    if getattr(plugins, "_driftloop_filtered", False):
        return
    original = plugins._get_entry_points

    def filtered(group: str) -> list[Any]:
        found = list(original(group))
        if group == "mlflow.request_header_provider":
            found = [ep for ep in found if not ep.value.startswith("feast.")]
        return found

    plugins._get_entry_points = filtered
    plugins._driftloop_filtered = True  # type: ignore[attr-defined]
