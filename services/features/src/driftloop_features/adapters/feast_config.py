"""The Feast configuration of a deployment: the user's ``feature_store.yaml``, or one
built from the service's settings.

A repo that brings its own ``feature_store.yaml`` is served with it: the file is read
(``${VAR}`` expanded, as Feast does) and never written; the service overrides only what
it must to run, and says what (:attr:`DeploymentConfig.overrides`, logged at start and
shown by ``GET /repo``), or refuses with a message naming the setting it cannot run
with. A repo without one gets a file written from the ``DRIFTLOOP_FEATURES_*``
settings at every start (marked by a header), so the Feast CLI run in the repo sees the
same stores as the service.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

from driftloop_features.adapters.sources import OfflineKind
from driftloop_features.settings import FeaturesSettings

__all__ = [
    "POSTGRES_OFFLINE_STORE",
    "DeploymentConfig",
    "RepoConfigRefused",
    "deployment_config",
    "offline_kind",
    "repo_config",
    "write_feature_store_yaml",
]

#: The PostgreSQL offline store with writes (pushes to the offline store).
POSTGRES_OFFLINE_STORE = (
    "driftloop_features.adapters.postgres_offline.DriftloopPostgreSQLOfflineStore"
)

_YAML_HEADER = (
    "# Written by the driftloop features service from its settings at every start;\n"
    "# edits are overwritten. Configure with DRIFTLOOP_FEATURES_* variables instead.\n"
)


#: Offline store types of a user's file the service can push rows to.
_FILE_OFFLINE = frozenset({"file", "dask"})
_POSTGRES_OFFLINE = frozenset({"postgres", POSTGRES_OFFLINE_STORE})


class RepoConfigRefused(ValueError):
    """The repo's ``feature_store.yaml`` names a setting the service cannot run with."""


@dataclass(frozen=True)
class DeploymentConfig:
    """The configuration the service gives Feast, and where it came from.

    Attributes:
        config: The ``feature_store.yaml`` content the ``FeatureStore`` is built with.
        owner: ``repo`` when the repo brought its own file (never written by the
            service), ``settings`` when the service wrote it from its settings.
        path: The repo's ``feature_store.yaml``.
        overrides: What the service changed in the user's file, one sentence each.
    """

    config: dict[str, Any]
    owner: Literal["repo", "settings"]
    path: Path
    overrides: tuple[str, ...] = ()

    @property
    def project(self) -> str:
        """The Feast project the repo is applied to."""
        return str(self.config["project"])

    @property
    def offline_kind(self) -> OfflineKind:
        """Which offline store the deployment pushes rows to."""
        kind = self.config.get("offline_store", {}).get("type", "file")
        return "postgres" if kind in _POSTGRES_OFFLINE else "file"


def deployment_config(settings: FeaturesSettings) -> DeploymentConfig:
    """The repo's own ``feature_store.yaml`` with the service's overrides, or the file
    the service writes from its settings when the repo has none.

    Raises:
        RepoConfigRefused: The user's file names a setting the service cannot run with.
    """
    path = settings.feast_repo_path / "feature_store.yaml"
    if path.is_file():
        text = path.read_text()
        if not text.startswith(_YAML_HEADER):
            return _user_config(settings, path, text)
    return DeploymentConfig(config=repo_config(settings), owner="settings", path=path)


def _user_config(settings: FeaturesSettings, path: Path, text: str) -> DeploymentConfig:
    try:
        raw = yaml.safe_load(os.path.expandvars(text))
    except yaml.YAMLError as error:
        raise RepoConfigRefused(f"{path} is not valid YAML: {error}") from error
    if not isinstance(raw, dict) or not raw.get("project"):
        raise RepoConfigRefused(f"{path} must be a mapping with a `project` (as Feast requires)")
    config: dict[str, Any] = dict(raw)
    overrides: list[str] = []
    explicit = settings.model_fields_set

    project = str(config["project"])
    if "project" in explicit and settings.project != project:
        raise RepoConfigRefused(
            f"{path.name} names project {project!r} but DRIFTLOOP_FEATURES_PROJECT is "
            f"{settings.project!r}: unset DRIFTLOOP_FEATURES_PROJECT, or make them agree"
        )
    provider = config.get("provider", "local")
    if provider != "local":
        raise RepoConfigRefused(
            f"provider {provider!r} in {path.name}: the features service runs Feast's "
            "`local` provider (its stores are set by online_store and offline_store)"
        )

    data_dir = settings.data_dir.resolve()
    if "online_store_url" in explicit:
        config["online_store"] = _online_store(settings.online_store_url, data_dir)
        overrides.append("online_store from DRIFTLOOP_FEATURES_ONLINE_STORE_URL")
    if "registry_url" in explicit:
        config["registry"] = repo_config(settings)["registry"]
        overrides.append("registry from DRIFTLOOP_FEATURES_REGISTRY_URL")
    if "offline_store_url" in explicit:
        config["offline_store"] = _offline_store(settings.offline_store_url)
        overrides.append("offline_store from DRIFTLOOP_FEATURES_OFFLINE_STORE_URL")
    else:
        offline = config.get("offline_store") or {"type": "file"}
        if isinstance(offline, str):
            offline = {"type": offline}
        kind = offline.get("type", "file")
        if kind == "postgres":
            config["offline_store"] = {**offline, "type": POSTGRES_OFFLINE_STORE}
            overrides.append(
                "offline_store.type postgres -> driftloop's PostgreSQL offline store "
                "(Feast's, with writes for pushes to the offline store; same connection)"
            )
        elif kind not in _FILE_OFFLINE and kind != POSTGRES_OFFLINE_STORE:
            raise RepoConfigRefused(
                f"offline_store.type {kind!r} in {path.name}: the features service pushes "
                "rows to the offline store and can with `file` or `postgres` only "
                "(or set DRIFTLOOP_FEATURES_OFFLINE_STORE_URL)"
            )
    registry = config.get("registry")
    if isinstance(registry, dict) and "serve_features_while_materializing" not in registry:
        config["registry"] = {**registry, "serve_features_while_materializing": True}
        overrides.append(
            "registry.serve_features_while_materializing: true (unset in the file; online "
            "reads go on while a view is materialized)"
        )
    return DeploymentConfig(config=config, owner="repo", path=path, overrides=tuple(overrides))


def offline_kind(settings: FeaturesSettings) -> OfflineKind:
    """Which offline store the deployment's settings name (the file's, see
    :attr:`DeploymentConfig.offline_kind`, when the repo brings one)."""
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
