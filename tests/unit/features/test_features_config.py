"""The Feast configuration a deployment's settings give."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from driftloop_features.adapters.feast_config import (
    POSTGRES_OFFLINE_STORE,
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
