"""The Feast configuration of a deployment, built from the service's settings.

The same dictionary is given to ``FeatureStore`` in process and written to the repo as
``feature_store.yaml``, so the Feast CLI (``feast serve``, ``feast materialize``) run in
the repo sees the same stores.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

from driftloop_features.adapters.sources import OfflineKind
from driftloop_features.settings import FeaturesSettings

__all__ = ["POSTGRES_OFFLINE_STORE", "offline_kind", "repo_config", "write_feature_store_yaml"]

#: The PostgreSQL offline store with writes (pushes to the offline store).
POSTGRES_OFFLINE_STORE = (
    "driftloop_features.adapters.postgres_offline.DriftloopPostgreSQLOfflineStore"
)

_YAML_HEADER = (
    "# Written by the driftloop features service from its settings at every start;\n"
    "# edits are overwritten. Configure with DRIFTLOOP_FEATURES_* variables instead.\n"
)


def offline_kind(settings: FeaturesSettings) -> OfflineKind:
    """Which offline store the deployment uses."""
    url = settings.offline_store_url
    return "postgres" if url and url.startswith("postgresql") else "file"


def repo_config(settings: FeaturesSettings) -> dict[str, Any]:
    """The ``feature_store.yaml`` content of the deployment, as a dictionary."""
    data_dir = settings.data_dir.resolve()
    registry_url = settings.registry_url
    registry: dict[str, Any]
    if registry_url and registry_url.startswith("postgresql"):
        registry = {
            "registry_type": "sql",
            "path": _sqlalchemy_url(registry_url),
            "cache_ttl_seconds": 60,
            "sqlalchemy_config_kwargs": {"pool_pre_ping": True},
            # Feast 0.67 refuses online reads of a view while it is MATERIALIZING;
            # the service keeps serving the last values instead (an outage otherwise).
            "serve_features_while_materializing": True,
        }
    else:
        path = Path(registry_url) if registry_url else data_dir / "registry.db"
        registry = {
            "registry_type": "file",
            "path": str(path),
            "cache_ttl_seconds": 60,
            "serve_features_while_materializing": True,
        }
    return {
        "project": settings.project,
        "provider": "local",
        "registry": registry,
        "online_store": _online_store(settings.online_store_url, data_dir),
        "offline_store": _offline_store(settings.offline_store_url),
        "entity_key_serialization_version": 3,
    }


def write_feature_store_yaml(settings: FeaturesSettings, config: dict[str, Any]) -> Path:
    """Write ``config`` to ``<repo>/feature_store.yaml`` and return its path."""
    path = settings.feast_repo_path / "feature_store.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(_YAML_HEADER + yaml.safe_dump(config, sort_keys=False))
    return path


def _online_store(url: str | None, data_dir: Path) -> dict[str, Any]:
    if url and url.startswith("redis://"):
        parts = urlsplit(url)
        db = (parts.path or "/0").strip("/") or "0"
        connection = f"{parts.hostname or '127.0.0.1'}:{parts.port or 6379},db={db}"
        if parts.password:
            connection += f",password={unquote(parts.password)}"
        return {"type": "redis", "connection_string": connection}
    path = url.removeprefix("sqlite:///") if url else str(data_dir / "online.db")
    return {"type": "sqlite", "path": path}


def _offline_store(url: str | None) -> dict[str, Any]:
    if not url or url == "file":
        return {"type": "file"}
    return {"type": POSTGRES_OFFLINE_STORE, **postgres_params(url)}


def postgres_params(url: str) -> dict[str, Any]:
    """Host, port, database, user, password and sslmode of a PostgreSQL URL."""
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    return {
        "host": parts.hostname or "127.0.0.1",
        "port": parts.port or 5432,
        "database": parts.path.lstrip("/"),
        "user": unquote(parts.username or "postgres"),
        "password": unquote(parts.password or ""),
        "sslmode": query.get("sslmode", ["prefer"])[0],
    }


def _sqlalchemy_url(url: str) -> str:
    scheme, rest = url.split("://", 1)
    if scheme == "postgresql":
        scheme = "postgresql+psycopg"
    return f"{scheme}://{rest}"
