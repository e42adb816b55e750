"""Generated documentation and manifests stay in step with the code that declares them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from driftloop_cli.topics import kafka_topic_manifests
from driftloop_events.topics import all_topics
from driftloop_kit.service import installed_services
from driftloop_kit.settings import settings_table

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
REGENERATE = "regenerate with `.venv/bin/driftloop {}`"


def test_readme_configuration_table_matches_the_settings_classes() -> None:
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- config-table:start -->\n(.*?)<!-- config-table:end -->", readme, re.S)
    assert block is not None, "README lost its config-table markers"
    assert block.group(1) == settings_table([]), "README table is stale: " + REGENERATE.format(
        "config --markdown"
    )


def test_configuration_reference_lists_every_variable_of_the_installed_services() -> None:
    documented = (ROOT / "docs" / "configuration.md").read_text()
    expected = settings_table(d.settings_cls for d in installed_services().values())
    assert documented == expected, "docs/configuration.md is stale: " + REGENERATE.format(
        "config --markdown > docs/configuration.md"
    )


def test_topic_manifests_in_deploy_match_the_declared_topics() -> None:
    manifest = (ROOT / "deploy" / "kafka" / "topics.yaml").read_text()
    assert manifest == kafka_topic_manifests(), "deploy/kafka/topics.yaml is stale: " + (
        REGENERATE.format("topics --manifests > deploy/kafka/topics.yaml")
    )
    docs = [d for d in yaml.safe_load_all(manifest) if d]
    assert [d["spec"]["topicName"] for d in docs] == [t.name for t in all_topics()]
    for doc, spec in zip(docs, all_topics(), strict=True):
        assert doc["kind"] == "KafkaTopic"
        assert doc["spec"]["partitions"] == spec.partitions
        assert doc["spec"]["config"]["retention.ms"] == str(spec.retention_ms)
        assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", doc["metadata"]["name"])


def test_ci_runs_the_readme_test_command_then_the_longer_suite_it_names() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text()
    assert "make test " in readme
    assert "`make test-e2e`" in readme
    assert "`make test-chaos`" in readme
    assert "`make test-deploy`" in readme
    commands = re.findall(r"^(?:exec )?make [\w -]+$", ci, re.M)
    assert commands == ["exec make lint test test-e2e test-chaos test-deploy"]
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^test: install lint ", makefile, re.M), "make test runs the lint first"
    assert "DRIFTLOOP_REQUIRE_SERVICES=1" in ci


def test_makefile_has_the_documented_targets() -> None:
    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z-]+):.*## ", makefile, re.M))
    assert {"help", "install", "test", "lint", "proto", "bench", "up", "demo"} <= targets


def test_architecture_page_lists_every_services_handlers_as_the_code_declares_them() -> None:
    from driftloop_cli.handlers import handler_tables

    page = (ROOT / "docs" / "architecture.md").read_text()
    block = re.search(r"<!-- handlers:start -->\n(.*?)<!-- handlers:end -->", page, re.S)
    assert block is not None, "docs/architecture.md lost its handlers markers"
    expected = handler_tables(installed_services().values())
    assert block.group(1) == expected, "docs/architecture.md handler tables are stale: " + (
        "regenerate the block with `.venv/bin/driftloop handlers --markdown`"
    )
    for name in installed_services():
        assert f"### {name}\n" in expected
