"""Kafka TLS and SASL/SCRAM settings reach every client the bus makes."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import faust
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from pydantic import ValidationError

from driftloop_bus import security
from driftloop_bus.consumer import ConsumerRunner
from driftloop_bus.publisher import Publisher
from driftloop_bus.security import KafkaSecurity, client_options, configure, faust_credentials
from driftloop_bus.streams import faust_app
from driftloop_kit.settings import ServiceSettings

pytestmark = pytest.mark.unit


class Settings(ServiceSettings):
    pass


@pytest.fixture(autouse=True)
def plaintext_after() -> Iterator[None]:
    yield
    configure(KafkaSecurity())


async def test_sasl_over_tls_settings_become_every_clients_options(tmp_path: Path) -> None:
    settings = Settings(
        home=tmp_path,
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-256",
        kafka_sasl_username="svc-registry",
        kafka_sasl_password="s3cret",  # type: ignore[arg-type]
    )
    configure(settings)

    options = client_options()
    assert options["security_protocol"] == "SASL_SSL"
    assert (options["sasl_mechanism"], options["sasl_plain_username"]) == (
        "SCRAM-SHA-256",
        "svc-registry",
    )
    assert options["sasl_plain_password"] == "s3cret"
    context = options["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode is ssl.CERT_REQUIRED
    assert context.check_hostname
    # aiokafka itself accepts them (it checks protocol, mechanism and credentials).
    AIOKafkaProducer(bootstrap_servers="broker:9093", **options)
    AIOKafkaConsumer(bootstrap_servers="broker:9093", **options)
    publisher = Publisher("broker:9093", client_id="x")
    assert publisher._producer_kwargs["sasl_plain_username"] == "svc-registry"
    runner = ConsumerRunner(
        bootstrap_servers="broker:9093", group_id="g", handlers={}, publisher=publisher
    )
    assert runner._consumer_kwargs["security_protocol"] == "SASL_SSL"
    credentials = faust_credentials()
    assert isinstance(credentials, faust.SASLCredentials)
    assert credentials.username == "svc-registry"
    app = faust_app("monitor", bootstrap_servers="broker:9093", data_dir=tmp_path)
    assert isinstance(app.conf.broker_credentials, faust.SASLCredentials)
    assert app.conf.broker_credentials.mechanism.value == "SCRAM-SHA-256"


def test_plaintext_adds_nothing_but_the_protocol() -> None:
    assert client_options() == {"security_protocol": "PLAINTEXT"}
    assert faust_credentials() is None
    assert security.current() == KafkaSecurity()


def test_sasl_without_credentials_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="needs kafka_sasl_username and kafka_sasl_password"):
        Settings(home=tmp_path, kafka_security_protocol="SASL_SSL")
