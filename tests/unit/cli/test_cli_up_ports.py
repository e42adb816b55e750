"""``driftloop up`` and serving's second port: claimed, checked and moved with its HTTP port."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from driftloop_cli.up import UpError, check_ports, service_endpoints, wiring_env
from driftloop_kit.service import ServiceDefinition
from driftloop_serving.settings import ServingSettings

pytestmark = pytest.mark.unit


def test_serving_claims_its_grpc_port_beside_its_http_port(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DRIFTLOOP_SERVING_GRPC_PORT", raising=False)  # its default, 8081
    # Its definition without its app (whose imports take seconds).
    serving = ServiceDefinition("serving", ServingSettings, create_app=lambda _: None)  # type: ignore[arg-type,return-value]

    (default,) = service_endpoints([serving], home=tmp_path, bootstrap_servers="x:9092")
    (moved,) = service_endpoints(
        [serving], home=tmp_path, bootstrap_servers="x:9092", ports={"serving": 18080}
    )
    env = wiring_env({"serving": serving}, {"serving": 18080})

    assert (default.port, default.other_ports) == (8080, (("grpc_port", 8081),))
    # Moved to free ports, its gRPC server takes whatever port is free when it binds.
    assert (moved.port, moved.other_ports) == (18080, ())
    assert env["DRIFTLOOP_SERVING_PORT"] == "18080"
    assert env["DRIFTLOOP_SERVING_GRPC_PORT"] == "0"


def test_a_taken_grpc_port_is_refused_naming_its_variable() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        with pytest.raises(UpError) as refused:
            check_ports([("serving (grpc_port)", "127.0.0.1", port, "DRIFTLOOP_SERVING_GRPC_PORT")])

    assert f"port {port} on 127.0.0.1 (for serving (grpc_port)) is already in use" in str(
        refused.value
    )
    assert "set DRIFTLOOP_SERVING_GRPC_PORT to another port" in str(refused.value)


def test_the_demo_on_free_ports_moves_every_service_the_suite_starts(tmp_path: Path) -> None:
    # Two demos side by side (the e2e worlds under xdist) met on the console's 8090 when
    # only the loop's six services were moved.
    from driftloop_cli.demo.run import free_suite_ports, world_env
    from driftloop_kit.service import installed_names

    env = world_env("iris", tmp_path, free_suite_ports())

    unmoved = [name for name in installed_names() if f"DRIFTLOOP_{name.upper()}_PORT" not in env]
    assert unmoved == []
    assert "console" in installed_names()
