"""Model documents: one validation for the CLI and every service, and its JSON schema."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from driftloop_cli.declarations import InvalidDocuments, read_documents, validate_documents
from driftloop_kit.declarations import ModelDeclaration, json_schema

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "docs" / "examples" / "model.yaml"


def minimal(**spec: object) -> dict[str, object]:
    return {
        "apiVersion": "driftloop/v1",
        "kind": "Model",
        "metadata": {"name": "churn"},
        "spec": {"label": "churned", "features": {"feature_service": "churn_v1"}, **spec},
    }


def test_the_schema_in_docs_is_current() -> None:
    documented = json.loads((ROOT / "docs" / "model.schema.json").read_text())

    assert documented == json_schema(), (
        "docs/model.schema.json is stale: regenerate with "
        "`.venv/bin/python -m driftloop_kit.declarations > docs/model.schema.json`"
    )


def test_the_documented_example_validates_and_fills_every_section() -> None:
    (source,) = read_documents([EXAMPLE])
    (declaration,) = validate_documents([source])

    assert declaration.name == "churn-classifier"
    assert declaration.spec.serving.shadow is True
    assert declaration.spec.trigger.schedule == "0 3 * * *"
    assert declaration.spec.monitor.performance_threshold == 0.8
    # Defaults are filled in: what is stored and published is the whole document.
    assert declaration.document()["spec"]["evaluation"]["confidence"] == 0.95


def test_a_minimal_document_needs_only_a_name_a_label_and_features() -> None:
    declaration = ModelDeclaration.model_validate(minimal())

    assert declaration.spec.serving_features() == "churn_v1"
    assert declaration.spec.training.entry_point == "driftloop_trainer.pipelines.sklearn:train"


def test_the_digest_is_the_same_for_the_same_document_however_it_is_written() -> None:
    written = minimal(trigger={"cooldown_seconds": 60})
    spelled_out = minimal(trigger={"cooldown_seconds": 60.0, "debounce_seconds": 300})

    one = ModelDeclaration.model_validate(written).digest()
    other = ModelDeclaration.model_validate(spelled_out).digest()
    changed = ModelDeclaration.model_validate(minimal(trigger={"cooldown_seconds": 61})).digest()

    assert one == other != changed


def test_every_error_of_every_document_is_listed_with_where_it_is(tmp_path: Path) -> None:
    good = minimal()
    bad = minimal(trigger={"cooldown_seconds": -1}, serving={"canary_percent": 101})
    bad["metadata"] = {"name": "has spaces"}
    twice = minimal()
    path = tmp_path / "models.yaml"
    path.write_text(yaml.safe_dump_all([good, bad, twice, ["not", "a", "mapping"]]))

    with pytest.raises(InvalidDocuments) as raised:
        validate_documents(read_documents([path]))

    errors = raised.value.errors
    assert len(errors) == 5
    assert f"{path} (document 2): metadata.name: String should match pattern" in errors[0]
    assert "(document 2): spec.trigger.cooldown_seconds" in errors[1]
    assert "(document 2): spec.serving.canary_percent" in errors[2]
    assert "(document 3): model 'churn' is declared twice (also in" in errors[3]
    assert "(document 4): a model document is a mapping" in errors[4]


def test_a_document_that_reads_no_features_or_names_a_wrong_reference_is_refused() -> None:
    with pytest.raises(ValidationError, match="name a feature_service or a list of features"):
        ModelDeclaration.model_validate(minimal(features={}))
    with pytest.raises(ValidationError, match="view:feature"):
        ModelDeclaration.model_validate(minimal(features={"features": ["no_view"]}))


def test_a_missing_file_and_a_broken_yaml_are_errors_not_tracebacks(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("spec: [unclosed\n")

    with pytest.raises(InvalidDocuments) as raised:
        read_documents([tmp_path / "absent.yaml", broken])

    assert "absent.yaml: no such file or folder" in raised.value.errors[0]
    assert "broken.yaml: cannot be read as YAML" in raised.value.errors[1]
