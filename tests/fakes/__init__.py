"""Fakes of the services' ports, one module per service plus ``common`` for the libs' ports.

Each fake follows the ``typing.Protocol`` of the port it stands in for (the service's
``service_layer/ports.py``, or :mod:`driftloop_bus.ports`), and mypy checks the tests
that pass them, so a port that changes breaks its fake at lint time, not at run time.
"""
