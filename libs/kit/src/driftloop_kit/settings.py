"""Typed, environment-driven settings shared by every service.

Each service subclasses :class:`ServiceSettings` and sets two class variables::

    class TrackingSettings(ServiceSettings):
        service_name: ClassVar[str] = "tracking"
        default_port: ClassVar[int] = 5001

        artifact_root: Path = Field(Path("artifacts"), description="Where artifacts are stored.")

Every field is then read from ``DRIFTLOOP_TRACKING_<FIELD>``. The fields declared
here also fall back to a variable shared by all services, ``DRIFTLOOP_<FIELD>``
(e.g. ``DRIFTLOOP_HOME``, ``DRIFTLOOP_KAFKA_BOOTSTRAP_SERVERS``); the
service-specific variable wins. ``port`` and ``database_url`` have no shared
variable: each service listens on its own port and owns its own database.
"""

from __future__ import annotations

import os
import secrets
import time
import types
import typing
from collections.abc import Iterable
from enum import Enum
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

__all__ = [
    "DEFAULT_HOME",
    "PLACEHOLDER_SECRETS",
    "SHARED_ENV_PREFIX",
    "ServiceSettings",
    "settings_table",
    "validate_database_url",
]

#: Prefix of the variables shared by all services (``DRIFTLOOP_HOME`` ...).
SHARED_ENV_PREFIX = "DRIFTLOOP_"

#: Where local state lives when neither ``DRIFTLOOP_<SERVICE>_HOME`` nor ``DRIFTLOOP_HOME`` is set.
DEFAULT_HOME = Path(".driftloop")

#: Secret values refused in production.
PLACEHOLDER_SECRETS = frozenset({"", "change-me", "changeme", "changethis", "secret"})

# Per-service by nature: a shared value would make every service bind the same
# port or write into the same database.
_NOT_SHARED = frozenset({"port", "database_url", "public_url"})

_ACCEPTED_URLS = "postgresql://, postgresql+psycopg://, sqlite:///<path> or sqlite:///:memory:"


#: The file under ``home`` holding the generated secret key.
SECRET_KEY_FILE = "secret_key"


def home_secret_key(home: Path) -> str:
    """The secret key kept in ``home/secret_key``, generated (0600) when absent.

    Every service started on one host with the same home shares it; two starting at
    once agree, as the file is created exclusively and the loser reads the winner's.
    """
    path = home / SECRET_KEY_FILE
    if not path.exists():
        home.mkdir(parents=True, exist_ok=True)
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(descriptor, "w") as handle:
                handle.write(secrets.token_urlsafe(48))
    for _ in range(50):
        key = path.read_text().strip()
        if key:
            return key
        time.sleep(0.01)  # the winner is writing
    raise ValueError(f"{path} is empty; delete it to generate a new key")


def validate_database_url(url: str) -> str:
    """Check that ``url`` is a database URL the kit can open.

    Args:
        url: ``postgresql://``, ``postgresql+psycopg://``, ``sqlite:///<path>`` or
            ``sqlite:///:memory:``.

    Returns:
        The URL, unchanged.

    Raises:
        ValueError: For any other scheme or driver, or a SQLite URL without a path.
    """
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ValueError(f"database_url is not a URL; expected {_ACCEPTED_URLS}") from None
    scheme = parsed.drivername
    if scheme in ("postgresql", "postgresql+psycopg"):
        if not parsed.database:
            raise ValueError("database_url must name a database, e.g. postgresql://host/tracking")
        return url
    if scheme == "sqlite":
        if not parsed.database or not url.startswith("sqlite:///"):
            raise ValueError(
                "database_url for SQLite needs a path: sqlite:///<path> "
                "(or sqlite:///:memory: for a throw-away database)"
            )
        return url
    raise ValueError(f"database_url scheme {scheme!r} is not supported; expected {_ACCEPTED_URLS}")


class _SharedEnvSource(EnvSettingsSource):
    """Reads ``DRIFTLOOP_<FIELD>`` for the fields of :class:`ServiceSettings` only."""

    def __init__(self, settings_cls: type[BaseSettings]) -> None:
        super().__init__(settings_cls, env_prefix=SHARED_ENV_PREFIX)

    def __call__(self) -> dict[str, Any]:
        return {k: v for k, v in super().__call__().items() if k in _shared_fields()}


def _shared_fields() -> frozenset[str]:
    return frozenset(ServiceSettings.model_fields) - _NOT_SHARED


def _filled_in_before_validation() -> Any:
    raise AssertionError("ServiceSettings._fill_derived_defaults supplies this value")


def _env_prefix(service_name: str) -> str:
    return f"{SHARED_ENV_PREFIX}{service_name.upper().replace('-', '_')}_"


class ServiceSettings(BaseSettings):
    """Settings every service has; subclass it once per service.

    Subclasses set :attr:`service_name` and :attr:`default_port`; the environment
    prefix ``DRIFTLOOP_<SERVICE_NAME>_`` is derived from ``service_name``.
    """

    #: Name of the service; also its data folder and its environment prefix.
    service_name: ClassVar[str] = "service"
    #: Port used when ``DRIFTLOOP_<SERVICE>_PORT`` is not set.
    default_port: ClassVar[int] = 8000
    #: Settings of the other TCP ports the service listens on (0: any free port), which
    #: ``driftloop up`` checks and moves with ``port`` (serving's ``grpc_port``).
    other_port_fields: ClassVar[tuple[str, ...]] = ()

    # Settings carry secrets and DSNs with passwords: keep them out of error messages.
    model_config = SettingsConfigDict(
        env_prefix=_env_prefix("service"),
        extra="ignore",
        hide_input_in_errors=True,
    )

    home: Path = Field(
        default=DEFAULT_HOME,
        description="Folder holding all local state (SQLite databases, artifacts, Feast repo).",
    )
    environment: Literal["development", "production"] = Field(
        default="development",
        description="Deployment mode; `production` refuses placeholder secrets.",
    )
    host: str = Field(default="127.0.0.1", description="Interface the HTTP server binds to.")
    # port and database_url depend on the subclass (and on home): their defaults
    # come from derived_defaults(), filled in before validation.
    port: int = Field(
        default_factory=_filled_in_before_validation,
        ge=1,
        le=65535,
        description="TCP port the HTTP server listens on (default: per service).",
    )
    database_url: str = Field(
        default_factory=_filled_in_before_validation,
        description=(
            "Database of this service: `postgresql://`, `postgresql+psycopg://`, "
            "`sqlite:///<path>` or `sqlite:///:memory:`."
        ),
    )
    kafka_bootstrap_servers: str = Field(
        default="127.0.0.1:9092", description="Comma-separated Kafka bootstrap servers (host:port)."
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        default="PLAINTEXT",
        description=(
            "How every Kafka client of the service connects: `SASL_SSL` (SCRAM over TLS) in "
            "production, `PLAINTEXT` on a laptop."
        ),
    )
    kafka_sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"] = Field(
        default="SCRAM-SHA-512", description="SASL mechanism with `SASL_*` protocols."
    )
    kafka_sasl_username: str | None = Field(
        default=None,
        description="This service's own Kafka user (ACLs per service: deploy/kafka-acls.md).",
    )
    kafka_sasl_password: SecretStr | None = Field(
        default=None, description="Its password (a Secret, never a ConfigMap)."
    )
    kafka_ssl_cafile: str | None = Field(
        default=None, description="CA bundle of the brokers' certificates (TLS protocols)."
    )
    kafka_ssl_certfile: str | None = Field(
        default=None, description="Client certificate, for mutual TLS."
    )
    kafka_ssl_keyfile: str | None = Field(default=None, description="Its private key.")
    otlp_endpoint: str | None = Field(
        default=None,
        description=(
            "OpenTelemetry collector (OTLP over HTTP, e.g. `http://collector:4318`): when set, "
            "requests, HTTP calls and events are traced, one trace per loop across services."
        ),
    )
    log_level: str = Field(
        default="INFO", description="Log level: DEBUG, INFO, WARNING, ERROR or CRITICAL."
    )
    log_format: Literal["json", "console"] = Field(
        default="json", description="Log output: one JSON object per line, or human-readable text."
    )
    secret_key: SecretStr = Field(
        default_factory=_filled_in_before_validation,
        description=(
            "Key that signs driftloop's tokens; the same in every service. Default: a "
            "random key generated once in `<home>/secret_key` (one host); production "
            "needs it set."
        ),
    )
    auth_mode: Literal["token", "oidc", "off"] = Field(
        default="token",
        description=(
            "Who may call: `token` (bearer tokens signed with `secret_key`), `oidc` (those, "
            "and tokens of the OIDC issuer `oidc_issuer`), `off` (anyone; refused in production)."
        ),
    )
    auth_cache_seconds: float = Field(
        default=300.0,
        ge=0,
        le=86_400,
        description="How long a checked credential is remembered (never past its expiry).",
    )
    auth_url: str = Field(
        default="http://127.0.0.1:5000",
        description=(
            "The tracking service, which keeps the suite's issued tokens (their revocations) "
            "and stored users; every service reads them there."
        ),
    )
    auth_refresh_seconds: float = Field(
        default=10.0,
        ge=1,
        le=3600,
        description="How often each service reads the revoked tokens.",
    )
    oidc_issuer: str | None = Field(
        default=None, description="With `auth_mode=oidc`: the issuer (`iss`) whose tokens count."
    )
    oidc_audience: str | None = Field(
        default=None, description="With `auth_mode=oidc`: the audience (`aud`) tokens must carry."
    )
    oidc_jwks_url: str | None = Field(
        default=None,
        description="The issuer's JWKS URL; default: from its `/.well-known/openid-configuration`.",
    )
    oidc_role_claim: str = Field(
        default="driftloop_role",
        description="Claim of an OIDC token naming its role (`reader`...`admin`, or a list).",
    )
    max_body_bytes: int = Field(
        default=64 * 1024 * 1024,
        ge=1024,
        le=16 * 1024**3,
        description=(
            "Largest request body accepted (413 beyond it), counted while it is read; "
            "artifact uploads, streamed to disk, are exempt."
        ),
    )
    allowed_hosts: list[str] = Field(
        default_factory=lambda: ["*"],
        description=(
            'Host headers answered, as JSON (`["tracking.example.com", "*.internal"]`), '
            'against DNS rebinding as MLflow\'s `--allowed-hosts`; `["*"]`: any.'
        ),
    )
    cors_allowed_origins: list[str] = Field(
        default_factory=list,
        description=(
            "Browser origins allowed to call the API cross-origin, as JSON "
            '(`["https://console.example.com"]`); empty: none (same-origin only).'
        ),
    )
    public_url: str | None = Field(
        default=None,
        description=(
            "Base URL clients reach this service at, for the links and URIs it hands out "
            "(download URIs, report and job links). Default `http://<host>:<port>`."
        ),
    )
    stream_engine: Literal["faust", "bus"] = Field(
        default="faust",
        description=(
            "Kafka engine of the service's stream consumers (features ingestion, the "
            "monitor): `faust` (faust-streaming agents; state in faust tables that survive "
            "a restart) or `bus` (the bus's batch consumer; state in memory). Both dispatch "
            "through the bus `Dispatcher`; bench/README.md compares their throughput."
        ),
    )

    @property
    def base_url(self) -> str:
        """The URL clients reach this service at: ``public_url``, else ``http://<host>:<port>``."""
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("", "0.0.0.0", "::") else self.host
        return f"http://{host}:{self.port}"

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        # Copy, never mutate: the dict is shared with the parent class.
        config = cls.model_config.copy()
        config["env_prefix"] = _env_prefix(cls.service_name)
        cls.model_config = config

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Insert the shared ``DRIFTLOOP_<FIELD>`` variables just below the service's own."""
        return (
            init_settings,
            env_settings,
            _SharedEnvSource(settings_cls),
            dotenv_settings,
            file_secret_settings,
        )

    @classmethod
    def derived_defaults(cls, home: Path | str = DEFAULT_HOME) -> dict[str, Any]:
        """Defaults that depend on the service (and on ``home``).

        Args:
            home: The resolved ``home`` setting.

        Returns:
            ``port`` and ``database_url`` as they are when not set.
        """
        name = cls.service_name
        return {
            "port": cls.default_port,
            "database_url": f"sqlite:///{Path(home) / name / f'{name}.db'}",
        }

    @classmethod
    def env_name(cls, field: str) -> str:
        """Name of the service-specific variable of ``field``, e.g. ``DRIFTLOOP_TRACKING_PORT``."""
        return f"{cls.model_config.get('env_prefix', '')}{field}".upper()

    def other_ports(self) -> dict[str, int]:
        """The other ports the service listens on, by setting (those set to 0 left out)."""
        return {field: port for field in self.other_port_fields if (port := getattr(self, field))}

    @classmethod
    def shared_env_name(cls, field: str) -> str | None:
        """Name of the variable shared by all services for ``field``, or ``None`` if it has none."""
        return f"{SHARED_ENV_PREFIX}{field}".upper() if field in _shared_fields() else None

    @model_validator(mode="before")
    @classmethod
    def _fill_derived_defaults(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        home = data.get("home") or DEFAULT_HOME
        derived = cls.derived_defaults(home)
        filled = {**data, **{k: v for k, v in derived.items() if data.get(k) is None}}
        if not filled.get("secret_key"):
            if filled.get("environment") == "production":
                raise ValueError(
                    f"secret_key must be set in production: {cls.env_name('secret_key')} "
                    f"(or {SHARED_ENV_PREFIX}SECRET_KEY), the same in every service"
                )
            filled["secret_key"] = home_secret_key(Path(home))
        return filled

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str) -> str:
        return validate_database_url(value)

    @field_validator("log_level")
    @classmethod
    def _check_log_level(cls, value: str) -> str:
        level = value.upper()
        if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            raise ValueError("log_level must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return level

    @model_validator(mode="after")
    def _refuse_unsafe_settings_in_production(self) -> ServiceSettings:
        key_variable = f"{self.env_name('secret_key')} (or {SHARED_ENV_PREFIX}SECRET_KEY)"
        if self.secret_key.get_secret_value().strip().lower() in PLACEHOLDER_SECRETS:
            raise ValueError(f"secret_key is a placeholder; set {key_variable} to a real secret")
        if self.environment != "production":
            return self
        if len(self.secret_key.get_secret_value()) < 32:
            raise ValueError(f"secret_key is shorter than 32 characters; set {key_variable}")
        if self.auth_mode == "off":
            raise ValueError("auth_mode=off is refused in production")
        if list(self.allowed_hosts) == ["*"] and self.cors_allowed_origins == ["*"]:
            raise ValueError("cors_allowed_origins=['*'] with any Host is refused in production")
        return self

    @model_validator(mode="after")
    def _check_kafka_security(self) -> ServiceSettings:
        if self.kafka_security_protocol.startswith("SASL_") and not (
            self.kafka_sasl_username and self.kafka_sasl_password
        ):
            raise ValueError(
                f"kafka_security_protocol={self.kafka_security_protocol} needs "
                "kafka_sasl_username and kafka_sasl_password"
            )
        return self

    @model_validator(mode="after")
    def _check_oidc(self) -> ServiceSettings:
        if self.auth_mode == "oidc" and not (self.oidc_issuer and self.oidc_audience):
            raise ValueError("auth_mode=oidc needs oidc_issuer and oidc_audience")
        return self

    @property
    def data_dir(self) -> Path:
        """This service's folder for local state: ``home / service_name``."""
        return self.home / self.service_name


# --- documentation -----------------------------------------------------------------


def settings_table(classes: Iterable[type[ServiceSettings]]) -> str:
    """Render every environment variable of ``classes`` as one Markdown table.

    The shared ``DRIFTLOOP_<FIELD>`` variables come first, then each class's own
    variables in the order given.

    Args:
        classes: Settings classes, typically one per service.

    Returns:
        The table, ending with a newline.
    """
    rows: list[tuple[str, str, str, str]] = []
    for name, info in ServiceSettings.model_fields.items():
        shared = ServiceSettings.shared_env_name(name)
        if shared is not None:
            description = f"{_description(info)} Shared by all services; "
            description += "`DRIFTLOOP_<SERVICE>_" + name.upper() + "` overrides it."
            rows.append((shared, _type_text(info), _default_text(info, None), description))
    for cls in classes:
        derived = cls.derived_defaults()
        for name, info in cls.model_fields.items():
            rows.append(
                (
                    cls.env_name(name),
                    _type_text(info),
                    _default_text(info, derived.get(name)),
                    _description(info),
                )
            )
    lines = [
        "| Variable | Type | Default | Description |",
        "|---|---|---|---|",
        *(f"| `{var}` | {typ} | {default} | {desc} |" for var, typ, default, desc in rows),
    ]
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ").strip()


def _description(info: FieldInfo) -> str:
    return _cell(info.description or "")


def _default_text(info: FieldInfo, derived: Any) -> str:
    if derived is not None:
        value: Any = derived
    elif info.default_factory is not None:
        return "(computed)"
    elif info.is_required():
        return "required"
    elif info.default is None:
        return "unset"
    else:
        value = info.default
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if isinstance(value, Enum):
        value = value.value
    return f"`{_cell(str(value))}`" if str(value) else '`""`'


def _type_text(info: FieldInfo) -> str:
    return _cell(_type_name(info.annotation))


_TYPE_NAMES: dict[Any, str] = {
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean",
    Path: "path",
    SecretStr: "secret",
    type(None): "none",
}


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if annotation in _TYPE_NAMES:
        name = _TYPE_NAMES[annotation]
    elif origin is Literal:
        name = " | ".join(f"`{a}`" for a in args)
    elif origin in (typing.Union, types.UnionType):
        name = " or ".join(_type_name(a) for a in args)
    elif origin is not None and args:
        inner = ", ".join(_type_name(a) for a in args if a is not Ellipsis)
        name = f"{getattr(origin, '__name__', str(origin))} of {inner}"
    elif isinstance(annotation, type) and issubclass(annotation, Enum):
        name = " | ".join(f"`{m.value}`" for m in annotation)
    else:
        name = getattr(annotation, "__name__", str(annotation))
    return name
