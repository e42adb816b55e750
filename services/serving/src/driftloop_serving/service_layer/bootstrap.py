"""``bootstrap(settings)``: the serving service's dependencies, built once.

Serving keeps no database: what it serves is the registry's state (read at start-up,
followed through ``alias.*`` events and a periodic reconcile) for the models its
settings and the model documents (``model.declared``) declare, and its only durable
state is the prediction log's spill folder. Nothing in the :class:`ServingContainer`
connects until the app's lifespan starts it.
"""

from __future__ import annotations

from dataclasses import dataclass

from driftloop_bus.publisher import Publisher
from driftloop_bus.security import configure as configure_kafka
from driftloop_events.topics import TOPICS
from driftloop_kit.auth import Role, ServiceAuth
from driftloop_serving.adapters.features import FeaturesClient
from driftloop_serving.adapters.flavors import ModelLoader
from driftloop_serving.adapters.prediction_log import PredictionLog
from driftloop_serving.adapters.registry import RegistryClient
from driftloop_serving.service_layer.catalog import Catalog
from driftloop_serving.service_layer.models import ModelManager
from driftloop_serving.service_layer.scoring import Scorer
from driftloop_serving.settings import ServingSettings

__all__ = ["ServingContainer", "bootstrap"]


@dataclass
class ServingContainer:
    """Everything the app and its alias consumer need, built once and not yet connected."""

    settings: ServingSettings
    registry: RegistryClient
    #: For requests that send entity keys: one pool for the app's life.
    features: FeaturesClient
    #: The loaded versions (the alias handlers' dependency).
    models: ModelManager
    #: The served models and their policies (the model documents' dependency).
    catalog: Catalog
    predictions: PredictionLog
    #: Where alias events that cannot be handled go (connects on first use).
    dead_letters: Publisher
    scorer: Scorer


def bootstrap(settings: ServingSettings) -> ServingContainer:
    """Build the service's dependencies (nothing connects until started)."""
    configure_kafka(settings)  # TLS and SASL of every Kafka client of the process
    # Serving only reads: the registry's models, the features service's online features.
    credential = ServiceAuth.for_service(settings, Role.READER)
    registry = RegistryClient(settings.registry_url, settings.data_dir / "models", auth=credential)
    features = FeaturesClient(
        settings.features_url, timeout=settings.features_timeout_seconds, auth=credential
    )
    catalog = Catalog(settings)
    models = ModelManager(
        registry,
        ModelLoader(
            unpickle_models=frozenset(settings.unpickle_models),
            trusted_types=frozenset(settings.skops_trusted_types),
        ),
        catalog.wanted(),
        reconcile_interval=settings.reconcile_interval_seconds,
        champion_alias=settings.alias,
    )
    catalog.slots = models
    predictions = PredictionLog(
        lambda: Publisher(
            settings.kafka_bootstrap_servers,
            client_id="driftloop-serving-predictions",
            topics=[TOPICS["predictions"]],
            linger_ms=20,
            request_timeout_ms=5_000,
        ),
        settings.spill_path,
        max_buffer=settings.prediction_buffer,
    )
    return ServingContainer(
        settings=settings,
        registry=registry,
        features=features,
        models=models,
        catalog=catalog,
        predictions=predictions,
        dead_letters=Publisher(settings.kafka_bootstrap_servers, client_id="driftloop-serving"),
        scorer=Scorer(settings, models, predictions, features, catalog=catalog),
    )
