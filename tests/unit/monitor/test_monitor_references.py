"""Where reference data is found: lineage locations, their resolution, the settings' choice."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pandas as pd  # type: ignore[import-untyped]
import pytest

from driftloop.registry.v1 import events_pb2 as registry_events
from driftloop_events.envelope import CloudEvent
from driftloop_monitor.adapters.references import (
    REFERENCE_DATA_TAG,
    LineageSource,
    NoSource,
    ReferenceFetchError,
    UnusableLocation,
    UriTemplateSource,
    reference_source,
    resolve_location,
    signature_types,
)
from driftloop_monitor.domain.drift import make_reference
from driftloop_monitor.settings import MonitorSettings
from tests.fakes.monitor import FakeSource, FakeStore, fake_monitor

from .data import frame

pytestmark = pytest.mark.unit

TRACKING = "http://tracking:5000"
REGISTRY = "http://registry:5001"
RUN = "a" * 32
PROXIED = f"mlflow-artifacts:/1/{RUN}/artifacts/reference/reference.csv"
PROXY_URL = (
    f"{TRACKING}/api/2.0/mlflow-artifacts/artifacts/1/{RUN}/artifacts/reference/reference.csv"
)


# -- resolving a location --------------------------------------------------------------


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        (PROXIED, PROXY_URL),
        (
            "mlflow-artifacts://artifacts.internal:5500/1/x/reference.parquet",
            "http://artifacts.internal:5500/api/2.0/mlflow-artifacts/artifacts/1/x/reference.parquet",
        ),
        (
            "mlflow-artifacts:/1/my run/ref.csv",
            f"{TRACKING}/api/2.0/mlflow-artifacts/artifacts/1/my%20run/ref.csv",
        ),
        ("https://data.example/ref.csv?v=2", "https://data.example/ref.csv?v=2"),
        ("http://data.example/ref.csv", "http://data.example/ref.csv"),
        ("file:///srv/refs/ref.csv", Path("/srv/refs/ref.csv")),
        ("file://localhost/srv/refs/my%20ref.csv", Path("/srv/refs/my ref.csv")),
        ("/srv/refs/ref.csv", Path("/srv/refs/ref.csv")),
    ],
)
def test_a_location_resolves_to_the_url_or_file_that_holds_it(
    location: str, expected: str | Path
) -> None:
    assert resolve_location(location, tracking_url=TRACKING + "/") == expected


@pytest.mark.parametrize(
    ("location", "reason"),
    [
        ("reference/reference.csv", "relative path"),
        ("../../etc/passwd", "relative path"),
        ("s3://bucket/reference.csv", "not s3:"),
        ("file://other-host/srv/ref.csv", "another host"),
        ("mlflow-artifacts:/", "names no file"),
    ],
)
def test_a_location_that_can_never_be_read_is_refused(location: str, reason: str) -> None:
    with pytest.raises(UnusableLocation, match=reason):
        resolve_location(location, tracking_url=TRACKING)


# -- the lineage source against fake registry and tracking ---------------------------


def csv_bytes(data: pd.DataFrame) -> bytes:
    text: str = data.to_csv(index=False)
    return text.encode()


def parquet_bytes(data: pd.DataFrame) -> bytes:
    out = io.BytesIO()
    data.to_parquet(out, index=False)
    return out.getvalue()


def tags(reference: str, **others: str) -> list[dict[str, str]]:
    found = {**others, REFERENCE_DATA_TAG: reference} if reference else others
    return [{"key": k, "value": v} for k, v in found.items()]


class FakeServers:
    """Registry and tracking answers by path; records every request."""

    def __init__(
        self,
        *,
        version: dict[str, Any] | None = None,
        run: dict[str, Any] | None = None,
        files: dict[str, bytes] | None = None,
        download_uri: str = "mlflow-artifacts://registry.public:443/k3y",
    ) -> None:
        self.version = version
        self.run = run
        self.files = files or {}
        self.download_uri = download_uri
        self.requests: list[httpx.Request] = []
        self.fail: Callable[[httpx.Request], httpx.Response | None] = lambda request: None

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        failed = self.fail(request)
        if failed is not None:
            return failed
        url = str(request.url).split("?", 1)[0]
        if url == f"{REGISTRY}/api/2.0/mlflow/model-versions/get":
            return self._json(None if self.version is None else {"model_version": self.version})
        if url == f"{REGISTRY}/api/2.0/mlflow/model-versions/get-download-uri":
            return self._json({"artifact_uri": self.download_uri})
        if url == f"{TRACKING}/api/2.0/mlflow/runs/get":
            wanted = request.url.params["run_id"]
            found = self.run if self.run and self.run["info"]["run_id"] == wanted else None
            return self._json(None if found is None else {"run": found})
        if url in self.files:
            return httpx.Response(200, content=self.files[url])
        return httpx.Response(404, json={"error_code": "RESOURCE_DOES_NOT_EXIST"})

    @staticmethod
    def _json(body: dict[str, Any] | None) -> httpx.Response:
        if body is None:
            return httpx.Response(404, json={"error_code": "RESOURCE_DOES_NOT_EXIST"})
        return httpx.Response(200, content=json.dumps(body).encode())

    def source(self, max_bytes: int = 1 << 20) -> LineageSource:
        return LineageSource(
            registry_url=REGISTRY + "/",
            tracking_url=TRACKING,
            transport=httpx.MockTransport(self.handle),
            # An object store the operator allows, besides tracking and the registry.
            allowed_bases=("https://data.example/",),
            max_bytes=max_bytes,
        )

    def paths(self) -> list[str]:
        return [request.url.path for request in self.requests]


def a_run(run_id: str = RUN, reference: str = "") -> dict[str, Any]:
    """A run as tracking's ``runs/get`` gives it, tagged with ``reference`` if any."""
    return {
        "info": {"run_id": run_id, "artifact_uri": f"mlflow-artifacts:/1/{run_id}/artifacts"},
        "data": {"tags": tags(reference, **{"mlflow.runName": "bold-owl-417"})},
    }


def a_version(run_id: str = RUN, lineage: str = "", reference: str = "") -> dict[str, Any]:
    """A version as the registry's ``model-versions/get`` gives it."""
    return {
        "name": "iris",
        "version": "4",
        "run_id": run_id,
        "tags": tags(reference),
        "lineage": {"run_id": run_id, "reference_data": lineage},
    }


async def fetch(servers: FakeServers, *, run_id: str = "") -> tuple[pd.DataFrame, str] | None:
    source = servers.source()
    try:
        return await source.fetch(model="iris", version=4, run_id=run_id, source="")
    finally:
        await source.stop()


async def test_the_run_tag_names_the_sample_and_it_is_read_through_the_tracking_proxy() -> None:
    sample = frame(50, seed=1)
    servers = FakeServers(
        version=a_version(),
        run=a_run(reference=PROXIED),
        files={PROXY_URL: csv_bytes(sample)},
    )
    found = await fetch(servers)
    assert found is not None
    data, location = found
    assert location == PROXIED
    pd.testing.assert_frame_equal(data, sample)
    assert servers.paths()[:2] == [
        "/api/2.0/mlflow/model-versions/get",
        "/api/2.0/mlflow/runs/get",
    ]
    assert servers.requests[1].url.params["run_id"] == RUN


async def test_a_version_tag_overrides_the_run_tag() -> None:
    override = "https://data.example/curated.csv"
    servers = FakeServers(
        version=a_version(reference=override),
        run=a_run(reference=PROXIED),
        files={override: csv_bytes(frame(20, seed=2)), PROXY_URL: b"x\n1\n"},
    )
    found = await fetch(servers)
    assert found is not None
    assert found[1] == override
    assert len(found[0]) == 20


async def test_the_registry_lineage_answers_when_tracking_no_longer_has_the_run() -> None:
    servers = FakeServers(
        version=a_version(lineage=PROXIED),
        run=None,
        files={PROXY_URL: csv_bytes(frame(30, seed=3))},
    )
    found = await fetch(servers)
    assert found is not None
    assert len(found[0]) == 30


async def test_the_event_run_is_used_when_the_registry_does_not_know_the_version() -> None:
    other = "b" * 32
    url = f"{TRACKING}/api/2.0/mlflow-artifacts/artifacts/1/{other}/artifacts/r.csv"
    servers = FakeServers(
        version=None,
        run=a_run(other, reference=f"mlflow-artifacts:/1/{other}/artifacts/r.csv"),
        files={url: csv_bytes(frame(10, seed=4))},
    )
    found = await fetch(servers, run_id=other)
    assert found is not None
    assert len(found[0]) == 10


async def test_no_tag_means_no_reference_data_and_nothing_is_downloaded() -> None:
    servers = FakeServers(version=a_version(), run=a_run())
    assert await fetch(servers) is None
    assert servers.paths() == ["/api/2.0/mlflow/model-versions/get", "/api/2.0/mlflow/runs/get"]


async def test_a_version_without_a_run_or_tag_has_no_reference_data() -> None:
    servers = FakeServers(version=a_version(run_id=""), run=None)
    assert await fetch(servers) is None
    assert servers.paths() == ["/api/2.0/mlflow/model-versions/get"]


async def test_parquet_is_recognised_by_its_bytes_whatever_the_name() -> None:
    sample = frame(40, seed=5)
    location = f"mlflow-artifacts:/1/{RUN}/artifacts/reference/sample"
    servers = FakeServers(
        version=a_version(),
        run=a_run(reference=location),
        files={
            f"{TRACKING}/api/2.0/mlflow-artifacts/artifacts/1/{RUN}/artifacts/reference/sample": (
                parquet_bytes(sample)
            )
        },
    )
    found = await fetch(servers)
    assert found is not None
    pd.testing.assert_frame_equal(found[0], sample)


async def test_a_runs_uri_is_a_file_below_that_runs_artifact_uri() -> None:
    servers = FakeServers(
        version=a_version(),
        run=a_run(reference=f"runs:/{RUN}/reference/reference.csv"),
        files={PROXY_URL: csv_bytes(frame(15, seed=6))},
    )
    found = await fetch(servers)
    assert found is not None
    assert len(found[0]) == 15


async def test_a_relative_path_is_a_file_of_the_registered_version() -> None:
    url = f"{REGISTRY}/api/2.0/mlflow-artifacts/artifacts/k3y/reference/reference.csv"
    servers = FakeServers(
        version=a_version(lineage="reference/reference.csv"),
        run=a_run(),
        files={url: csv_bytes(frame(12, seed=7))},
    )
    found = await fetch(servers)
    assert found is not None
    assert found[1] == "reference/reference.csv"
    assert len(found[0]) == 12
    # The registry's own URL, not the public host in its download URI.
    assert str(servers.requests[-1].url) == url


@pytest.mark.parametrize("escape", ["../other/ref.csv", "reference/../../x.csv", "%2e%2e/x.csv"])
async def test_a_relative_path_leaving_the_versions_files_is_refused(escape: str) -> None:
    servers = FakeServers(version=a_version(lineage=escape), run=a_run())
    with pytest.raises(UnusableLocation, match="refused"):
        await fetch(servers)
    assert "/api/2.0/mlflow/model-versions/get-download-uri" not in servers.paths()


@pytest.mark.parametrize(
    "location",
    [
        "file:///etc/hosts",
        "/etc/hosts",
        "http://169.254.169.254/latest/meta-data/",
        "http://internal.example:8080/ref.csv",
        "http://tracking:5001/api/2.0/mlflow-artifacts/artifacts/x.csv",  # another port
        "https://data.example.evil/ref.csv",
        "mlflow-artifacts://elsewhere:5000/x/ref.csv",
    ],
)
async def test_a_lineage_naming_a_local_file_or_another_host_is_refused(location: str) -> None:
    servers = FakeServers(version=a_version(), run=a_run(reference=location))
    with pytest.raises(UnusableLocation, match="refused"):
        await fetch(servers)
    # Nothing was asked of that location: only the registry's and tracking's APIs.
    assert all(r.url.host in ("registry", "tracking") for r in servers.requests)


async def test_a_sample_larger_than_the_bound_is_refused_while_it_downloads() -> None:
    servers = FakeServers(
        version=a_version(),
        run=a_run(reference=PROXIED),
        files={PROXY_URL: csv_bytes(frame(2000, seed=4))},
    )
    with pytest.raises(UnusableLocation, match="larger than 1000 bytes"):
        await servers.source(max_bytes=1000).fetch(model="iris", version=3, run_id=RUN, source="")


async def test_a_tagged_artifact_that_is_not_there_is_no_reference_data() -> None:
    servers = FakeServers(version=a_version(), run=a_run(reference=PROXIED))
    assert await fetch(servers) is None
    assert servers.requests[-1].url == PROXY_URL


MLMODEL = """\
flavors:
  python_function:
    loader_module: mlflow.sklearn
signature:
  inputs: '[{"type": "string", "name": "zip", "required": true}, {"type": "double",
    "name": "x0", "required": true}]'
  outputs: '[{"type": "string", "required": true}]'
"""


async def test_the_signatures_string_columns_are_strings_whatever_the_csv_says() -> None:
    sample = frame(40, seed=3).assign(zip=[2139, 10001, None, 94105] * 10)  # a gap: floats
    servers = FakeServers(
        version=a_version(),
        run=a_run(reference=PROXIED),
        files={
            PROXY_URL: csv_bytes(sample),
            f"{REGISTRY}/api/2.0/mlflow-artifacts/artifacts/k3y/MLmodel": MLMODEL.encode(),
        },
    )
    found = await fetch(servers)
    assert found is not None
    data = found[0]

    assert data["zip"].tolist()[:2] == ["2139", "10001"]
    assert pd.isna(data["zip"][2])
    assert data["zip"][3] == "94105"
    reference = make_reference(data)
    assert reference.column_types["zip"] == "cat"
    assert reference.value_kinds["zip"] == "string"
    assert reference.value_kinds["x0"] == "number"
    # The sample was the last thing read; the signature before it.
    assert servers.requests[-1].url == PROXY_URL


def test_a_signature_that_is_not_a_column_signature_gives_no_types() -> None:
    assert signature_types(MLMODEL) == {"zip": "string", "x0": "double"}
    assert signature_types('signature:\n  inputs: \'[{"type": "tensor"}]\'\n') == {}
    assert signature_types(": not yaml [") == {}
    assert signature_types("flavors: {}\n") == {}


@pytest.mark.parametrize("failing", ["/model-versions/get", "/runs/get", "/mlflow-artifacts/"])
async def test_a_service_that_is_down_or_failing_raises_so_the_event_is_retried(
    failing: str,
) -> None:
    servers = FakeServers(
        version=a_version(),
        run=a_run(reference=PROXIED),
        files={PROXY_URL: csv_bytes(frame(10, seed=9))},
    )

    def down(request: httpx.Request) -> httpx.Response | None:
        if failing in request.url.path:
            if failing == "/runs/get":
                return httpx.Response(503, text="tracking is restarting")
            raise httpx.ConnectError("connection refused", request=request)
        return None

    servers.fail = down
    with pytest.raises(ReferenceFetchError):
        await fetch(servers)


# -- choosing the source -----------------------------------------------------------------


def test_the_lineage_is_the_default_source() -> None:
    settings = MonitorSettings()
    assert settings.reference_source == "lineage"
    assert (settings.registry_url, settings.tracking_url) == (
        "http://127.0.0.1:5001",
        "http://127.0.0.1:5000",
    )
    source = reference_source(
        settings.reference_source,
        registry_url=settings.registry_url,
        tracking_url=settings.tracking_url,
    )
    assert isinstance(source, LineageSource)


def test_a_uri_template_alone_selects_the_template_source() -> None:
    settings = MonitorSettings(reference_uri_template="file:///refs/{model}-{version}.csv")
    assert settings.reference_source == "template"
    source = reference_source(settings.reference_source, template=settings.reference_uri_template)
    assert isinstance(source, UriTemplateSource)


def test_an_explicit_source_wins_over_the_template(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRIFTLOOP_MONITOR_REFERENCE_SOURCE", "none")
    settings = MonitorSettings(reference_uri_template="file:///refs/{model}.csv")
    assert settings.reference_source == "none"
    assert isinstance(reference_source(settings.reference_source), NoSource)


def test_the_template_source_needs_a_template() -> None:
    with pytest.raises(ValueError, match="reference_uri_template"):
        MonitorSettings(reference_source="template")


# -- the use case with a source that fails -------------------------------------------------


class FlakySource(FakeSource):
    """Fails ``failures`` times (a service down), then serves its data."""

    def __init__(self, data: dict[tuple[str, int], pd.DataFrame], failures: int) -> None:
        super().__init__(data)
        self.failures = failures

    async def fetch(
        self, *, model: str, version: int, run_id: str, source: str
    ) -> tuple[pd.DataFrame, str] | None:
        if self.failures:
            self.failures -= 1
            raise ReferenceFetchError("cannot reach http://registry:5001: ConnectError")
        return await super().fetch(model=model, version=version, run_id=run_id, source=source)


async def test_a_failing_source_fails_the_alias_move_so_it_is_retried_and_then_loads() -> None:
    store = FakeStore()
    source = FlakySource({("iris", 4): frame(100, seed=10)}, failures=1)
    monitor = fake_monitor(store=store, source=source)
    moved = CloudEvent.new(
        registry_events.AliasSet(name="iris", alias="champion", version=4, run_id=RUN)
    )
    with pytest.raises(ReferenceFetchError):
        await monitor.references.on_alias_set(moved)
    assert store.references == {}
    await monitor.references.on_alias_set(moved)  # the stream's retry
    assert len(store.references[("iris", 4)].data) == 100
