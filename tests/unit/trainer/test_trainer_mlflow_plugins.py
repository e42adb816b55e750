"""The mlflow shortcut of the job process (``pipelines/mlflow_plugins.py``) and its version pin."""

from __future__ import annotations

from importlib.metadata import version

import pytest

from driftloop_trainer.pipelines.mlflow_plugins import without_feast_header_provider

pytestmark = pytest.mark.unit


def test_the_mlflow_shortcut_was_checked_against_the_installed_mlflow() -> None:
    from mlflow.utils import plugins

    assert version("mlflow-skinny").startswith("3.17."), (
        "re-check driftloop_trainer/pipelines/mlflow_plugins.py against the new mlflow "
        "(its private mlflow.utils.plugins._get_entry_points) and update this pin"
    )
    assert callable(getattr(plugins, "_get_entry_points", None)), (
        "mlflow.utils.plugins._get_entry_points is gone: re-check "
        "driftloop_trainer/pipelines/mlflow_plugins.py against the new mlflow"
    )


def test_feast_header_providers_are_filtered_out_and_others_kept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mlflow.utils import plugins

    class EntryPoint:
        def __init__(self, value: str) -> None:
            self.value = value

    providers = [EntryPoint("feast.mlflow:Provider"), EntryPoint("acme.auth:Provider")]
    monkeypatch.setattr(plugins, "_get_entry_points", lambda group: providers)
    monkeypatch.delattr(plugins, "_driftloop_filtered", raising=False)
    without_feast_header_provider()
    without_feast_header_provider()  # idempotent: wrapped once
    kept = plugins._get_entry_points("mlflow.request_header_provider")
    assert [ep.value for ep in kept] == ["acme.auth:Provider"]
    others = plugins._get_entry_points("mlflow.tracking_store")
    assert [ep.value for ep in others] == ["feast.mlflow:Provider", "acme.auth:Provider"]
