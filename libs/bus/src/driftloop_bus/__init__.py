"""Kafka glue for driftloop services.

- :class:`~driftloop_bus.publisher.Publisher`: CloudEvents to Kafka, batched, ``acks=all``.
- :class:`~driftloop_bus.consumer.ConsumerRunner`: a consumer group running an explicit
  dispatch table, committing after success, retrying, then dead-lettering to ``<topic>.dlq``.
- :class:`~driftloop_bus.outbox.Outbox` / :class:`~driftloop_bus.outbox.OutboxRelay`: events
  written in the same transaction as the state change, published by a relay.
- :func:`~driftloop_bus.inbox.idempotent`: a redelivered event has no second effect.
- :mod:`~driftloop_bus.streams`: the same for faust-streaming agents.
- :class:`~driftloop_bus.embedded.EmbeddedBroker`: the in-memory tansu broker for laptops and tests.
"""
