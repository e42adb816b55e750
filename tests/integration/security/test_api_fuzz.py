"""Property-based fuzzing of every service's OpenAPI with schemathesis: no answer is a 5xx.

The seven services (the console too) run on real ports, on the session's broker, wired
to each other, with a little data seeded (an experiment and a run, a registered model,
a monitor policy), and are called with an admin token (every route, the destructive
ones included). Each operation gets ``DRIFTLOOP_FUZZ_EXAMPLES`` generated requests (8 by
default: the suite stays fast; raise it to look harder). A 5xx is a bug: bad input must
be a 4xx that says what is wrong.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.core.result import Ok

from driftloop_bus.embedded import EmbeddedBroker, free_port
from driftloop_kit.service import installed_services
from driftloop_kit.testing import ServedApp, auth_headers

pytestmark = pytest.mark.integration

EXAMPLES = int(os.environ.get("DRIFTLOOP_FUZZ_EXAMPLES", "8"))
#: Answers >= 500 that are the protocol's, not a failure: MLflow's client asks for a
#: multipart upload and falls back to a plain one on 501, as against MLflow's server.
DECLINED = {("POST /api/2.0/mlflow-artifacts/mpu/create/{artifact_path}", 501)}
#: Endless by design (server-sent events): a generated request would wait forever; the
#: console's live-feed tests call it.
STREAMS = {"GET /events/stream"}
SERVICES = ("tracking", "registry", "features", "monitor", "trainer", "serving", "console")


@pytest.fixture(scope="module")
def suite(
    tmp_path_factory: pytest.TempPathFactory, broker: EmbeddedBroker
) -> Iterator[dict[str, str]]:
    """The six services, each on a free port, pointed at the others."""
    home = tmp_path_factory.mktemp("fuzz")
    ports = {name: free_port() for name in SERVICES}
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    servers = []
    try:
        for name in SERVICES:
            definition = installed_services()[name]
            given_settings: dict[str, Any] = {
                "home": home,
                "port": ports[name],
                "kafka_bootstrap_servers": broker.bootstrap_servers,
                "auth_url": urls["tracking"],
            }
            for other, url in urls.items():
                # As `driftloop up` wires them: only the URLs of the suite's services.
                field = definition.settings_cls.model_fields.get(f"{other}_url")
                if field is not None and str(field.default).startswith("http://127.0.0.1:"):
                    given_settings[f"{other}_url"] = url
            server = ServedApp(
                definition.create_app(definition.settings_cls(**given_settings)),
                host="127.0.0.1",
                port=ports[name],
                name=name,
            )
            server.start(timeout=120)
            servers.append(server)
        seed(urls)
        yield urls
    finally:
        for server in reversed(servers):
            server.stop()


def seed(urls: dict[str, str]) -> None:
    """A little of everything, so that lists and searches have rows to answer with."""
    with httpx.Client(headers=auth_headers(), timeout=30) as http:
        tracking = f"{urls['tracking']}/api/2.0/mlflow"
        experiment = http.post(f"{tracking}/experiments/create", json={"name": "fuzz"})
        experiment_id = experiment.json()["experiment_id"]
        run = http.post(f"{tracking}/runs/create", json={"experiment_id": experiment_id})
        run_id = run.json()["run"]["info"]["run_id"]
        http.post(f"{tracking}/runs/log-metric", json={"run_id": run_id, "key": "m", "value": 1})
        registry = f"{urls['registry']}/api/2.0/mlflow"
        http.post(f"{registry}/registered-models/create", json={"name": "fuzz-model"})
        http.put(
            f"{urls['monitor']}/policies/fuzz-model",
            json={"window_rows": 100},
        )


@schemathesis.serializer("application/vnd.apache.parquet")
def _parquet_body(ctx: Any, value: Any) -> bytes:
    """A generated value as the body of a Parquet upload: not Parquet, to be refused."""
    return value if isinstance(value, bytes) else json.dumps(value, default=str).encode()


def fuzz(operation: Any, base: str, headers: dict[str, str], failures: list[str]) -> None:
    """Call ``operation`` with ``EXAMPLES`` generated requests; note every 5xx."""

    @given(case=operation.as_strategy())
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    def call(case: Any) -> None:
        response = case.call(base_url=base, headers=headers, timeout=60)
        if response.status_code >= 500 and (operation.label, response.status_code) not in DECLINED:
            failures.append(
                f"{operation.label} -> {response.status_code} {response.text[:200]}\n"
                f"  {case.as_curl_command(headers=None)[:400]}"
            )

    call()


@pytest.mark.parametrize("name", SERVICES)
def test_no_generated_request_gets_a_5xx(suite: dict[str, str], name: str) -> None:
    base = suite[name]
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
    headers = auth_headers()
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        if not isinstance(result, Ok):
            failures.append(f"an operation of the schema cannot be read: {result.err()}")
            continue
        operations += 1
        if result.ok().label not in STREAMS:
            fuzz(result.ok(), base, headers, failures)
    assert operations >= 5
    assert not failures, f"{len(failures)} answers >= 500:\n" + "\n".join(failures[:15])
