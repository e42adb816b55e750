"""driftloop features: Feast behind a service, with Kafka stream ingestion.

- ``settings``: ``DRIFTLOOP_FEATURES_*`` (repo path, online/offline store and registry URLs,
  ingestion batch size and consumer).
- ``adapters.feast_store.FeastGateway``: the deployment's Feast repo and stores (apply,
  list, online reads and writes, materialization, point-in-time historical retrieval).
- ``domain.rows``: validation of ``FeatureRow`` events against a push source's schema.
- ``handlers``: ingestion of a batch of Kafka rows (good rows written, bad rows to the
  DLQ with the reason, ``features.ingested`` watermarks) and materialization
  (``features.materialized``), events through the outbox.
- ``entrypoints``: the HTTP app (``feast serve``-compatible online API, historical
  retrieval, the repo) and the ``features.ingest`` consumer.
- ``example_repo``: the Feast repo of the demo model, copied into an empty repo folder.
"""
