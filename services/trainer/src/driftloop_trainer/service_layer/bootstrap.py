"""``bootstrap(settings)``: the trainer's dependencies, built once.

Both entrypoints (the HTTP app and the trigger consumer) take what they need from the
:class:`TrainerContainer`; nothing in it connects until the app's lifespan starts it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from driftloop_bus.wiring import ServiceBus, database_and_bus
from driftloop_kit.auth import Role, ServiceAuth, TokenSigner
from driftloop_kit.db import Database
from driftloop_trainer.adapters.executors import KubernetesExecutor, LocalExecutor
from driftloop_trainer.adapters.gate import GateScorer
from driftloop_trainer.adapters.labels import LabelStoreClient
from driftloop_trainer.adapters.registry import RegistryClient, ResultEvidence
from driftloop_trainer.adapters.store import TrainerStore
from driftloop_trainer.domain.jobs import REPORT_URL_ENV
from driftloop_trainer.service_layer.ports import ExecutorPort
from driftloop_trainer.service_layer.training import Endpoints, Training
from driftloop_trainer.settings import TrainerSettings

__all__ = ["TrainerContainer", "bootstrap"]


@dataclass
class TrainerContainer:
    """Everything the entrypoints need, built once and not yet connected."""

    settings: TrainerSettings
    database: Database
    bus: ServiceBus
    store: TrainerStore
    #: Opened and closed by the app's lifespan (a resource).
    registry: RegistryClient
    #: The use cases; also the consumer's handlers' dependency.
    training: Training


def executor_for(settings: TrainerSettings) -> ExecutorPort:
    """The executor ``settings.executor`` names."""
    if settings.executor == "kubernetes":
        # A pod reports its outcome back to this service.
        return KubernetesExecutor(
            namespace=settings.kubernetes_namespace,
            env={REPORT_URL_ENV: settings.base_url},
            cpu=settings.kubernetes_cpu,
            memory=settings.kubernetes_memory,
            log_tail_lines=settings.kubernetes_log_tail_lines,
        )
    return LocalExecutor(
        settings.python_executable,
        entry_points=[config.job.entry_point for config in settings.models.values()],
        warm=settings.warm_process,
    )


def job_tokens(settings: TrainerSettings) -> Callable[[str, float], str]:
    """Issues each job a ``writer`` token that names it: it logs, registers and reports
    its own result, and no other job's."""
    signer = TokenSigner(settings.secret_key.get_secret_value())

    def issue(job_id: str, ttl_seconds: float) -> str:
        return signer.issue(
            subject=f"job:{job_id}", role=Role.WRITER, ttl_seconds=ttl_seconds, job=job_id
        )

    return issue


def bootstrap(settings: TrainerSettings) -> TrainerContainer:
    """Build the service's dependencies (nothing connects until started)."""
    database, bus = database_and_bus(settings)
    store = TrainerStore(database=database, outbox=bus.outbox, consumer=settings.consumer_group)
    # The trainer moves aliases: a deployer.
    registry = RegistryClient(
        settings.registry_url,
        timeout=settings.http_timeout_seconds,
        auth=ServiceAuth.for_service(settings, Role.DEPLOYER),
    )
    endpoints = Endpoints(
        tracking_url=settings.tracking_url,
        registry_url=settings.registry_url,
        features_url=settings.features_url,
        experiment_name=settings.experiment_name,
        jobs_path=settings.jobs_path,
        job_token=job_tokens(settings),
        kafka_bootstrap_servers=settings.kafka_bootstrap_servers,
        score_bases=tuple(settings.score_bases),
        score_entry_point=settings.score_entry_point,
    )
    training = Training(
        models=settings.models,
        store=store,
        registry=registry,
        executor=executor_for(settings),
        endpoints=endpoints,
        lease_seconds=settings.job_lease_seconds,
        evidence=ResultEvidence(
            registry,
            settings.tracking_url,
            timeout=settings.http_timeout_seconds,
            auth=ServiceAuth.for_service(settings, Role.READER),
        ),
        gate=GateScorer(
            registry,
            cache=settings.data_dir / "models",
            python=settings.python_executable,
            timeout=settings.gate_timeout_seconds,
        ),
        labels=LabelStoreClient(
            settings.features_url,
            timeout=settings.http_timeout_seconds,
            auth=ServiceAuth.for_service(settings, Role.READER),
        ),
    )
    return TrainerContainer(settings, database, bus, store, registry, training)
