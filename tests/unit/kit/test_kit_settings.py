"""Settings: environment precedence, validation, documentation table."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import pytest
from pydantic import Field, ValidationError

from driftloop_kit.settings import ServiceSettings, settings_table

pytestmark = pytest.mark.unit


class TrackingSettings(ServiceSettings):
    service_name: ClassVar[str] = "tracking"
    default_port: ClassVar[int] = 5001

    artifact_root: Path = Field(
        default=Path("artifacts"), description="Where artifacts are stored."
    )


class RegistrySettings(ServiceSettings):
    service_name: ClassVar[str] = "registry"
    default_port: ClassVar[int] = 5002


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.upper().startswith("DRIFTLOOP_"):
            monkeypatch.delenv(name)
    # A key, so that no test writes one into the default home (the working folder).
    monkeypatch.setenv("DRIFTLOOP_SECRET_KEY", "settings-tests-" + "k" * 32)


def test_defaults_follow_the_service_name_and_port() -> None:
    settings = TrackingSettings()

    assert settings.port == 5001
    assert settings.home == Path(".driftloop")
    assert settings.database_url == "sqlite:///.driftloop/tracking/tracking.db"
    assert settings.data_dir == Path(".driftloop/tracking")


def test_service_variable_beats_shared_variable_beats_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert TrackingSettings().log_level == "INFO"

    monkeypatch.setenv("DRIFTLOOP_LOG_LEVEL", "warning")
    assert TrackingSettings().log_level == "WARNING"

    monkeypatch.setenv("DRIFTLOOP_TRACKING_LOG_LEVEL", "debug")
    assert TrackingSettings().log_level == "DEBUG"
    # Another service's variable does not leak in.
    assert RegistrySettings().log_level == "WARNING"


def test_shared_home_moves_the_default_database(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRIFTLOOP_HOME", "/srv/driftloop")

    settings = TrackingSettings()

    assert settings.home == Path("/srv/driftloop")
    assert settings.database_url == "sqlite:////srv/driftloop/tracking/tracking.db"


def test_service_specific_fields_are_read_only_from_the_service_prefix(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DRIFTLOOP_ARTIFACT_ROOT", "/shared")
    assert TrackingSettings().artifact_root == Path("artifacts")

    monkeypatch.setenv("DRIFTLOOP_TRACKING_ARTIFACT_ROOT", "/mine")
    assert TrackingSettings().artifact_root == Path("/mine")


def test_port_and_database_have_no_shared_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRIFTLOOP_PORT", "1234")
    monkeypatch.setenv("DRIFTLOOP_DATABASE_URL", "postgresql://db/shared")

    settings = TrackingSettings()

    assert settings.port == 5001
    assert settings.database_url.startswith("sqlite:///")
    assert TrackingSettings.shared_env_name("port") is None


def test_service_variables_set_port_and_database(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRIFTLOOP_TRACKING_PORT", "6001")
    monkeypatch.setenv("DRIFTLOOP_TRACKING_DATABASE_URL", "postgresql://db/tracking")

    settings = TrackingSettings()

    assert settings.port == 6001
    assert settings.database_url == "postgresql://db/tracking"


def test_env_prefix_is_derived_from_the_service_name() -> None:
    assert TrackingSettings.model_config.get("env_prefix") == "DRIFTLOOP_TRACKING_"
    assert TrackingSettings.env_name("kafka_bootstrap_servers") == (
        "DRIFTLOOP_TRACKING_KAFKA_BOOTSTRAP_SERVERS"
    )
    assert RegistrySettings.model_config.get("env_prefix") == "DRIFTLOOP_REGISTRY_"


def test_production_refuses_to_start_without_a_secret_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DRIFTLOOP_SECRET_KEY")
    monkeypatch.setenv("DRIFTLOOP_ENVIRONMENT", "production")

    with pytest.raises(ValidationError, match="secret_key must be set in production"):
        TrackingSettings()


@pytest.mark.parametrize("environment", ["development", "production"])
def test_a_placeholder_secret_is_refused_everywhere(
    monkeypatch: pytest.MonkeyPatch, environment: str
) -> None:
    monkeypatch.setenv("DRIFTLOOP_ENVIRONMENT", environment)
    monkeypatch.setenv("DRIFTLOOP_SECRET_KEY", "change-me")

    with pytest.raises(ValidationError, match="secret_key is a placeholder"):
        TrackingSettings()


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("DRIFTLOOP_SECRET_KEY", "short-but-not-a-placeholder", "shorter than 32"),
        ("DRIFTLOOP_AUTH_MODE", "off", "auth_mode=off is refused in production"),
    ],
)
def test_production_refuses_unsafe_settings(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    monkeypatch.setenv("DRIFTLOOP_ENVIRONMENT", "production")
    monkeypatch.setenv("DRIFTLOOP_SECRET_KEY", "s3cr3t-from-the-vault-" + "x" * 20)
    monkeypatch.setenv(variable, value)

    with pytest.raises(ValidationError, match=message):
        TrackingSettings()


def test_real_secret_is_accepted_in_production(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRIFTLOOP_ENVIRONMENT", "production")
    monkeypatch.setenv("DRIFTLOOP_SECRET_KEY", "s3cr3t-from-the-vault-" + "x" * 20)

    settings = TrackingSettings()

    assert settings.secret_key.get_secret_value() == "s3cr3t-from-the-vault-" + "x" * 20
    assert settings.auth_mode == "token"


def test_without_a_key_every_service_of_a_home_shares_one_generated_and_private_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DRIFTLOOP_SECRET_KEY")
    tracking = TrackingSettings(home=tmp_path)
    registry = RegistrySettings(home=tmp_path)
    other_home = TrackingSettings(home=tmp_path / "other")

    key = tracking.secret_key.get_secret_value()
    assert len(key) >= 48
    assert registry.secret_key.get_secret_value() == key
    assert other_home.secret_key.get_secret_value() != key
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600


def test_oidc_needs_an_issuer_and_an_audience(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRIFTLOOP_SECRET_KEY", "k" * 40)
    monkeypatch.setenv("DRIFTLOOP_AUTH_MODE", "oidc")

    with pytest.raises(ValidationError, match="needs oidc_issuer and oidc_audience"):
        TrackingSettings()


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://user:pw@db:5432/tracking",
        "postgresql+psycopg://db/tracking",
        "sqlite:///relative/tracking.db",
        "sqlite:////abs/tracking.db",
        "sqlite:///:memory:",
    ],
)
def test_supported_database_urls_are_accepted(url: str) -> None:
    assert TrackingSettings(database_url=url).database_url == url


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://db/tracking", "scheme 'mysql' is not supported"),
        ("postgresql+asyncpg://db/tracking", "is not supported"),
        ("sqlite://", "SQLite needs a path"),
        ("not a url", "not a URL"),
        ("postgresql://db", "must name a database"),
    ],
)
def test_bad_database_url_is_refused_with_a_clear_message(url: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message) as raised:
        TrackingSettings(database_url=url)

    assert raised.value.errors()[0]["loc"] == ("database_url",)


def test_validation_errors_do_not_echo_the_password() -> None:
    with pytest.raises(ValidationError) as raised:
        TrackingSettings(database_url="mysql://user:hunter2@db/tracking")

    assert "hunter2" not in str(raised.value)


def test_settings_table_lists_every_variable_with_default_and_description() -> None:
    table = settings_table([TrackingSettings, RegistrySettings])
    lines = table.splitlines()

    assert lines[0] == "| Variable | Type | Default | Description |"
    for cls in (TrackingSettings, RegistrySettings):
        for name, info in cls.model_fields.items():
            assert info.description, f"{cls.__name__}.{name} has no description"
            row = next(line for line in lines if line.startswith(f"| `{cls.env_name(name)}` |"))
            assert info.description.split("`")[0] in row
    assert "| `DRIFTLOOP_HOME` | path | `.driftloop` |" in table
    assert "| `DRIFTLOOP_REGISTRY_PORT` | integer | `5002` |" in table
    assert "`sqlite:///.driftloop/tracking/tracking.db`" in table
    assert "`DRIFTLOOP_PORT`" not in table
    assert "`development` \\| `production`" in table
