"""How every Kafka client of a process authenticates to the cluster: TLS and SASL/SCRAM.

The suite's Kafka clients (the publisher, the consumer runner, the topic admin, the
health check, faust apps) all take their connection security from here, so that one
setting covers every producer and consumer of a service. A service's bootstrap calls
:func:`configure` once with its settings (``DRIFTLOOP_KAFKA_SECURITY_PROTOCOL`` ...);
the embedded broker and a laptop need nothing (``PLAINTEXT``).

Each service has Kafka credentials of its own, so the cluster's ACLs can let only the
registry write ``registry.models`` and so on (``deploy/kafka-acls.md``).
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from driftloop_kit.settings import ServiceSettings

__all__ = ["KafkaSecurity", "client_options", "configure", "current", "faust_credentials"]


@dataclass(frozen=True)
class KafkaSecurity:
    """A process's Kafka connection security.

    Attributes:
        protocol: ``PLAINTEXT``, ``SSL``, ``SASL_PLAINTEXT`` or ``SASL_SSL``.
        sasl_mechanism: ``SCRAM-SHA-512``, ``SCRAM-SHA-256`` or ``PLAIN``.
        username: SASL user (one per service).
        password: SASL password.
        cafile: CA bundle that signed the brokers' certificates (TLS).
        certfile: This client's certificate (mutual TLS), or None.
        keyfile: Its key, or None.
    """

    protocol: str = "PLAINTEXT"
    sasl_mechanism: str = "SCRAM-SHA-512"
    username: str | None = None
    password: str | None = None
    cafile: str | None = None
    certfile: str | None = None
    keyfile: str | None = None

    @property
    def uses_tls(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")

    @property
    def uses_sasl(self) -> bool:
        return self.protocol in ("SASL_PLAINTEXT", "SASL_SSL")

    def ssl_context(self) -> ssl.SSLContext:
        """A client TLS context that checks the brokers' certificates and host names
        (against ``cafile``, else the system's CAs), with a client certificate if given."""
        context = ssl.create_default_context(cafile=self.cafile)
        if self.certfile:
            context.load_cert_chain(self.certfile, self.keyfile)
        return context

    @classmethod
    def from_settings(cls, settings: ServiceSettings) -> KafkaSecurity:
        password = settings.kafka_sasl_password
        return cls(
            protocol=settings.kafka_security_protocol,
            sasl_mechanism=settings.kafka_sasl_mechanism,
            username=settings.kafka_sasl_username,
            password=password.get_secret_value() if password is not None else None,
            cafile=settings.kafka_ssl_cafile,
            certfile=settings.kafka_ssl_certfile,
            keyfile=settings.kafka_ssl_keyfile,
        )


# One per process, as its logging configuration: set once at start-up.
_configured: dict[str, KafkaSecurity] = {"current": KafkaSecurity()}


def configure(security: KafkaSecurity | ServiceSettings) -> KafkaSecurity:
    """Set the security of every Kafka client this process makes from now on."""
    found = (
        security if isinstance(security, KafkaSecurity) else KafkaSecurity.from_settings(security)
    )
    _configured["current"] = found
    return found


def current() -> KafkaSecurity:
    """The security :func:`configure` set (``PLAINTEXT`` until then)."""
    return _configured["current"]


def client_options(security: KafkaSecurity | None = None) -> dict[str, Any]:
    """The ``aiokafka`` client arguments (producer, consumer, admin) of ``security``."""
    found = security or current()
    options: dict[str, Any] = {"security_protocol": found.protocol}
    if found.uses_tls:
        options["ssl_context"] = found.ssl_context()
    if found.uses_sasl:
        options["sasl_mechanism"] = found.sasl_mechanism
        options["sasl_plain_username"] = found.username
        options["sasl_plain_password"] = found.password
    return options


def faust_credentials(security: KafkaSecurity | None = None) -> Any:
    """faust's ``broker_credentials`` for ``security`` (None for ``PLAINTEXT``)."""
    import faust

    found = security or current()
    if found.uses_sasl:
        return faust.SASLCredentials(
            username=found.username,
            password=found.password,
            mechanism=found.sasl_mechanism,
            ssl_context=found.ssl_context() if found.uses_tls else None,
        )
    if found.uses_tls:
        return faust.SSLCredentials(found.ssl_context())
    return None
