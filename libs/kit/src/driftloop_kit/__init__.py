"""driftloop service kit: what every service is built from.

Import from the submodules (importing this package loads nothing else):

- :mod:`driftloop_kit.settings` — ``ServiceSettings``, ``settings_table``
- :mod:`driftloop_kit.db` — ``Database``, ``async_url``, ``sync_url``
- :mod:`driftloop_kit.migrations` — ``make_env``, ``upgrade``, ``upgrade_async``
- :mod:`driftloop_kit.logging` — ``configure_logging``
- :mod:`driftloop_kit.metrics` — request metrics and ``/metrics``
- :mod:`driftloop_kit.health` — ``Check``, ``Readiness``, ``/healthz`` and ``/readyz``
- :mod:`driftloop_kit.errors` — ``DriftloopError`` and its subclasses, ``install_error_handlers``
- :mod:`driftloop_kit.app` — ``create_service_app``, ``Resource``
- :mod:`driftloop_kit.service` — ``ServiceDefinition`` for the CLI
- :mod:`driftloop_kit.testing` — ``app_client`` for tests
"""
