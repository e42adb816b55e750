"""The Feast configuration a deployment's settings give."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from driftloop_features.adapters.feast_config import (
    POSTGRES_OFFLINE_STORE,
    RepoConfigRefused,
    deployment_config,
    repo_config,
    write_feature_store_yaml,
)
from driftloop_features.settings import FeaturesSettings

pytestmark = pytest.mark.unit


def test_the_embedded_default_is_sqlite_online_parquet_offline_and_a_file_registry(
    tmp_path: Path,
) -> None:
    settings = FeaturesSettings(home=tmp_path)
    config = repo_config(settings)
    assert config["online_store"] == {
        "type": "sqlite",
        "path": str(tmp_path.resolve() / "features" / "online.db"),
    }
    assert config["offline_store"] == {"type": "file"}
    assert config["registry"]["registry_type"] == "file"
    assert config["registry"]["path"] == str(tmp_path.resolve() / "features" / "registry.db")
    # Online reads go on while a view is being materialized.
    assert config["registry"]["serve_features_while_materializing"] is True
    assert settings.feast_repo_path == tmp_path / "features" / "repo"


def test_production_urls_become_redis_and_postgresql_stores(tmp_path: Path) -> None:
    settings = FeaturesSettings(
        home=tmp_path,
        online_store_url="redis://:s%40cret@cache.internal:6380/2",
        offline_store_url="postgresql://feast:pw@db.internal:5433/features?sslmode=require",
        registry_url="postgresql://feast:pw@db.internal:5433/features",
    )
    config = repo_config(settings)
    assert config["online_store"] == {
        "type": "redis",
        "connection_string": "cache.internal:6380,db=2,password=s@cret",
    }
    assert config["offline_store"] == {
        "type": POSTGRES_OFFLINE_STORE,
        "host": "db.internal",
        "port": 5433,
        "database": "features",
        "user": "feast",
        "password": "pw",
        "sslmode": "require",
    }
    assert config["registry"]["registry_type"] == "sql"
    assert config["registry"]["path"] == "postgresql+psycopg://feast:pw@db.internal:5433/features"


def test_the_config_is_written_to_the_repo_for_the_feast_cli(tmp_path: Path) -> None:
    settings = FeaturesSettings(home=tmp_path, project="shop")
    path = write_feature_store_yaml(settings, repo_config(settings))
    assert path == settings.feast_repo_path / "feature_store.yaml"
    assert yaml.safe_load(path.read_text())["project"] == "shop"


@pytest.mark.parametrize(
    ("field", "value"),
    [("online_store_url", "memcached://x"), ("offline_store_url", "s3://bucket")],
)
def test_unsupported_store_urls_are_refused(tmp_path: Path, field: str, value: str) -> None:
    values: dict[str, Any] = {field: value}
    with pytest.raises(ValidationError, match=field):
        FeaturesSettings(home=tmp_path, **values)


def _own_file(settings: FeaturesSettings, text: str) -> Path:
    path = settings.feast_repo_path / "feature_store.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_a_repo_without_its_own_file_gets_the_settings_one(tmp_path: Path) -> None:
    settings = FeaturesSettings(home=tmp_path)
    deployment = deployment_config(settings)
    assert deployment.owner == "settings"
    assert deployment.config == repo_config(settings)
    # The file written from the settings is the service's: rewritten, never "the user's".
    write_feature_store_yaml(settings, deployment.config)
    assert deployment_config(settings).owner == "settings"


def test_the_repos_own_file_is_used_as_it_is_with_its_project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = FeaturesSettings(home=tmp_path)
    monkeypatch.setenv("SHOP_ONLINE_PATH", "data/shop-online.db")
    _own_file(
        settings,
        "project: shop\nprovider: local\nregistry: data/registry.db\n"
        "online_store: {type: sqlite, path: ${SHOP_ONLINE_PATH}}\n",
    )
    deployment = deployment_config(settings)
    assert deployment.owner == "repo"
    assert deployment.project == "shop"
    assert deployment.overrides == ()
    assert deployment.config["online_store"] == {"type": "sqlite", "path": "data/shop-online.db"}
    assert deployment.offline_kind == "file"


def test_settings_set_for_the_deployment_override_the_file_and_say_so(tmp_path: Path) -> None:
    settings = FeaturesSettings(
        home=tmp_path,
        online_store_url="redis://cache:6379/0",
        offline_store_url="postgresql://feast@db/features",
    )
    _own_file(
        settings,
        "project: shop\nregistry: {path: data/registry.db}\n"
        "online_store: {type: sqlite}\noffline_store: {type: file}\n",
    )
    deployment = deployment_config(settings)
    assert deployment.config["online_store"]["type"] == "redis"
    assert deployment.config["offline_store"]["type"] == POSTGRES_OFFLINE_STORE
    assert deployment.offline_kind == "postgres"
    assert deployment.config["registry"]["serve_features_while_materializing"] is True
    assert deployment.overrides == (
        "online_store from DRIFTLOOP_FEATURES_ONLINE_STORE_URL",
        "offline_store from DRIFTLOOP_FEATURES_OFFLINE_STORE_URL",
        "registry.serve_features_while_materializing: true (unset in the file; online "
        "reads go on while a view is materialized)",
    )


def test_feasts_postgres_offline_store_becomes_the_one_that_writes(tmp_path: Path) -> None:
    settings = FeaturesSettings(home=tmp_path)
    _own_file(
        settings,
        "project: shop\noffline_store: {type: postgres, host: db, database: f, user: u}\n",
    )
    deployment = deployment_config(settings)
    assert deployment.config["offline_store"] == {
        "type": POSTGRES_OFFLINE_STORE,
        "host": "db",
        "database": "f",
        "user": "u",
    }
    assert "offline_store.type postgres" in deployment.overrides[0]


@pytest.mark.parametrize(
    ("text", "explicit", "names"),
    [
        ("project: shop\nprovider: gcp\n", {}, "provider 'gcp'"),
        ("project: shop\noffline_store: {type: bigquery}\n", {}, "offline_store.type 'bigquery'"),
        ("project: shop\n", {"project": "other"}, "DRIFTLOOP_FEATURES_PROJECT"),
        ("online_store: {type: sqlite}\n", {}, "`project`"),
        ("project: [unclosed\n", {}, "not valid YAML"),
    ],
)
def test_a_file_the_service_cannot_run_with_is_refused_naming_the_setting(
    tmp_path: Path, text: str, explicit: dict[str, Any], names: str
) -> None:
    settings = FeaturesSettings(home=tmp_path, **explicit)
    path = _own_file(settings, text)
    with pytest.raises(RepoConfigRefused, match=re.escape(names)):
        deployment_config(settings)
    assert path.read_text() == text
