"""A user's own Feast repo, served as it is: its ``feature_store.yaml`` (own project
name, own paths) read and never written, its files parsed by Feast's own parser, so
``.feastignore`` holds."""

from __future__ import annotations

import os
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from driftloop_bus.embedded import EmbeddedBroker
from driftloop_kit.testing import auth_headers

from .conftest import RunningServer, features_settings

pytestmark = pytest.mark.integration

FEATURE_STORE_YAML = """\
# The shop team's repo: their project, their paths.
project: shop_ranking
provider: local
registry: data/registry.db
online_store:
  type: sqlite
  path: data/online.db
offline_store:
  type: file
entity_key_serialization_version: 3
"""

ENTITIES = """\
from feast import Entity
from feast.value_type import ValueType

customer = Entity(name="customer", join_keys=["customer_id"], value_type=ValueType.INT64)
"""

# Imports the entity from its sibling file, as Feast repos laid out by file do.
CUSTOMERS = """\
from datetime import timedelta

from feast import FeatureService, FeatureView, Field, FileSource, PushSource
from feast.types import Float64, String

from entities import customer

spend_source = FileSource(
    name="customer_spend_source",
    path="data/customer_spend.parquet",
    timestamp_field="event_timestamp",
)
spend_push = PushSource(name="customer_spend_push", batch_source=spend_source)
customer_spend = FeatureView(
    name="customer_spend",
    entities=[customer],
    ttl=timedelta(days=7),
    schema=[Field(name="spend", dtype=Float64), Field(name="segment", dtype=String)],
    source=spend_push,
    online=True,
)
churn_model = FeatureService(name="churn_model", features=[customer_spend])
"""


@pytest.fixture(scope="module")
def own_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = tmp_path_factory.mktemp("shop-repo")
    (repo / "data").mkdir()
    (repo / "feature_store.yaml").write_text(FEATURE_STORE_YAML)
    (repo / "entities.py").write_text(ENTITIES)
    (repo / "customers.py").write_text(CUSTOMERS)
    # A notebook scratch folder the team keeps out of `feast apply`: importing it fails.
    (repo / "scratch").mkdir()
    (repo / "scratch" / "experiment.py").write_text(
        textwrap.dedent("""\
            raise RuntimeError("scratch code must never be applied")
        """)
    )
    (repo / ".feastignore").write_text("# not part of the repo\nscratch/\n")
    # An old timestamp, to see any rewrite of the file in its modification time.
    os.utime(repo / "feature_store.yaml", (1_000_000_000, 1_000_000_000))
    return repo


@pytest.fixture(scope="module")
def own_repo_server(
    broker: EmbeddedBroker, own_repo: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    server = RunningServer(
        features_settings(
            home=tmp_path_factory.mktemp("features-own-repo"),
            bootstrap_servers=broker.bootstrap_servers,
            repo_path=own_repo,
            stream_engine="bus",
        )
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_the_repo_is_served_with_its_own_project_and_its_file_untouched(
    own_repo: Path, own_repo_server: RunningServer
) -> None:
    url = own_repo_server.url
    repo = httpx.get(f"{url}/repo", headers=auth_headers()).json()
    assert repo["project"] == "shop_ranking"
    assert repo["feature_store_yaml"] == {
        "path": str(own_repo / "feature_store.yaml"),
        "owner": "repo",
        "overrides": [],
    }
    assert repo["push_sources"] == ["customer_spend_push"]
    # Applying again (after an edit, say) does not write the file either.
    assert httpx.post(f"{url}/repo/apply", timeout=60, headers=auth_headers()).status_code == 200
    path = own_repo / "feature_store.yaml"
    assert path.read_text() == FEATURE_STORE_YAML
    assert path.stat().st_mtime == 1_000_000_000
    # The registry and online store are where the user's file put them.
    assert (own_repo / "data" / "registry.db").is_file()
    assert (own_repo / "data" / "online.db").is_file()


def test_feastignore_keeps_ignored_files_out_of_the_apply(own_repo_server: RunningServer) -> None:
    # The ignored file raises on import: the apply would have failed had it been read.
    applied = httpx.post(f"{own_repo_server.url}/repo/apply", timeout=60, headers=auth_headers())
    assert applied.status_code == 200, applied.text
    services = httpx.get(
        f"{own_repo_server.url}/repo/feature-services", headers=auth_headers()
    ).json()
    assert [s["name"] for s in services["feature_services"]] == ["churn_model"]
    entities = httpx.get(f"{own_repo_server.url}/repo/entities", headers=auth_headers()).json()[
        "entities"
    ]
    assert [e["name"] for e in entities] == ["customer"]


def test_rows_pushed_to_the_own_repo_are_served_online(own_repo_server: RunningServer) -> None:
    url = own_repo_server.url
    now = datetime.now(UTC).isoformat()
    pushed = httpx.post(
        f"{url}/push",
        json={
            "push_source_name": "customer_spend_push",
            "df": {
                "customer_id": [1042],
                "spend": [88.5],
                "segment": ["gold"],
                "event_timestamp": [now],
            },
            "to": "online_and_offline",
        },
        timeout=30,
        headers=auth_headers(),
    )
    assert pushed.status_code == 200, pushed.text
    online = httpx.post(
        f"{url}/get-online-features",
        json={"feature_service": "churn_model", "entities": {"customer_id": [1042]}},
        timeout=30,
        headers=auth_headers(),
    )
    assert online.status_code == 200, online.text
    body = online.json()
    names = body["metadata"]["feature_names"]
    values = {
        name: result["values"][0] for name, result in zip(names, body["results"], strict=True)
    }
    assert values["spend"] == 88.5
    assert values["segment"] == "gold"
