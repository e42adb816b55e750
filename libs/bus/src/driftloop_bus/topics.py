"""Create the declared topics when they are missing.

The declarations themselves live in :mod:`driftloop_events.topics`, next to the
event catalog, so that code and ``deploy/`` read them from one place.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from driftloop_bus.security import client_options
from driftloop_events.topics import TopicSpec

log = logging.getLogger(__name__)


async def ensure_topics(
    bootstrap_servers: str,
    specs: Iterable[TopicSpec],
    *,
    replication_factor: int = 1,
    request_timeout_ms: int = 10_000,
) -> list[str]:
    """Create every topic of ``specs`` that the cluster does not have yet.

    Args:
        bootstrap_servers: ``host:port[,host:port]`` of the cluster.
        specs: Topics to make sure of.
        replication_factor: 1 on a laptop; 3 on a production cluster.
        request_timeout_ms: Per-request timeout of the admin client.

    Returns:
        The names of the topics that were created.
    """
    wanted = {spec.name: spec for spec in specs}
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers,
        request_timeout_ms=request_timeout_ms,
        **client_options(),
    )
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [spec for name, spec in wanted.items() if name not in existing]
        if not missing:
            return []
        new_topics = [
            NewTopic(
                spec.name,
                num_partitions=spec.partitions,
                replication_factor=replication_factor,
                topic_configs={
                    "retention.ms": str(spec.retention_ms),
                    "cleanup.policy": spec.cleanup_policy,
                },
            )
            for spec in missing
        ]
        # Another replica may create them between our list and create: fine.
        with contextlib.suppress(TopicAlreadyExistsError):
            await admin.create_topics(new_topics)
        created = [spec.name for spec in missing]
        log.info("created topics", extra={"topics": created})
        return created
    finally:
        await admin.close()
