"""driftloop features: Feast behind a service, with Kafka stream ingestion.

- ``settings``: ``DRIFTLOOP_FEATURES_*`` (repo path, online/offline store and registry URLs,
  ingestion batch size and engine).
- ``adapters.feast_store.FeastGateway``: the deployment's Feast repo and stores (apply,
  list, online reads and writes, materialization, point-in-time historical retrieval).
- ``adapters.sources.batch_source``: the batch source a Feast repo file declares, built
  for the deployment's offline store.
- ``domain``: validation of ``FeatureRow`` events against a push source's schema
  (``rows``) and the events the service publishes (``events``).
- ``service_layer``: ingestion of a batch of Kafka rows (good rows written, bad rows to
  the DLQ with the reason, ``features.ingested`` watermarks) and materialization
  (``features.materialized``), events through the outbox; ``ports`` and ``bootstrap``.
- ``entrypoints``: the HTTP app (``feast serve``-compatible online API, historical
  retrieval, the repo), the ``HANDLERS`` table (``consumers``) and the
  ``features.ingest`` engines (``ingest``).
- ``example_repo``: the Feast repo of the demo model, copied into an empty repo folder.
"""
