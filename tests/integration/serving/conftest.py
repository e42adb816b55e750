"""Serving in front of a real registry and tracking, with registered sklearn and ONNX models."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd  # type: ignore[import-untyped]
import pytest
from mlflow import MlflowClient
from mlflow.models import infer_signature
from sklearn.datasets import load_iris  # type: ignore[import-untyped]
from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]
from sklearn.pipeline import Pipeline  # type: ignore[import-untyped]

from driftloop_bus.embedded import EmbeddedBroker, free_port
from driftloop_kit.testing import ServedApp
from driftloop_serving.entrypoints.app import create_app
from driftloop_serving.settings import ServingSettings

from ..stack import Stack, reset_mlflow_uris, start_stack


@dataclass
class Models:
    """What the module registered: two iris versions that answer differently, their data."""

    name: str
    features: pd.DataFrame
    first: LogisticRegression
    second: LogisticRegression


def iris_frame() -> tuple[pd.DataFrame, np.ndarray[Any, Any]]:
    frame, labels = load_iris(return_X_y=True, as_frame=True)
    frame.columns = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    return frame, labels.to_numpy()


def register_sklearn(name: str, model: LogisticRegression | Pipeline, frame: pd.DataFrame) -> str:
    """Log ``model`` with MLflow 3 defaults (skops, signature) and register it; its version."""
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            registered_model_name=name,
            signature=infer_signature(frame, model.predict(frame)),
            pip_requirements=["scikit-learn", "skops"],
        )
    return str(info.registered_model_version)


@pytest.fixture(scope="module")
def broker() -> Iterator[EmbeddedBroker]:
    """Each serving test module's own broker: its alias and prediction topics hold only
    its own events, whatever other modules ran before on this test process."""
    with EmbeddedBroker() as running:
        yield running


@pytest.fixture(scope="module")
def serving_stack(
    tmp_path_factory: pytest.TempPathFactory, broker: EmbeddedBroker
) -> Iterator[Stack]:
    """Tracking and registry (SQLite) for the module, the mlflow client pointed at them."""
    home = tmp_path_factory.mktemp("home")
    stack, servers = start_stack(
        home=home,
        registry_database=f"sqlite:///{home / 'registry.db'}",
        bootstrap_servers=broker.bootstrap_servers,
    )
    mlflow.set_tracking_uri(stack.tracking_url)
    mlflow.set_registry_uri(stack.registry_url)
    try:
        yield stack
    finally:
        reset_mlflow_uris()
        for server in reversed(servers):
            server.stop()


@pytest.fixture(scope="module")
def iris_models(serving_stack: Stack) -> Models:
    """``iris`` v1 and v2 (v2 far more regularised, so some answers differ); v1 is champion."""
    frame, labels = iris_frame()
    first = LogisticRegression(max_iter=500).fit(frame, labels)
    second = LogisticRegression(max_iter=500, C=0.001).fit(frame, labels)
    assert (first.predict(frame) != second.predict(frame)).any()
    name = "iris-served"
    register_sklearn(name, first, frame)
    register_sklearn(name, second, frame)
    MlflowClient().set_registered_model_alias(name, "champion", "1")
    return Models(name=name, features=frame, first=first, second=second)


def serving_settings(
    stack: Stack, home: Path, bootstrap_servers: str, **overrides: Any
) -> ServingSettings:
    """Settings of a serving instance in front of ``stack`` on a free port (its V2 gRPC
    server on any free port, unless ``grpc_port`` is given)."""
    options: dict[str, Any] = {"reconcile_interval_seconds": 2, "grpc_port": 0, **overrides}
    return ServingSettings(
        home=home,
        kafka_bootstrap_servers=bootstrap_servers,
        port=free_port(),
        registry_url=stack.registry_url,
        **options,
    )


def start_serving(settings: ServingSettings) -> ServedApp:
    """Serve and wait until every configured model answers ``/v2/health/ready``."""
    server = ServedApp(create_app(settings), host=settings.host, port=settings.port, name="serving")
    server.start()
    return server
