"""Registering a version with fakes: files copied and checksummed, events staged, or nothing."""

from __future__ import annotations

import hashlib

import pytest

from driftloop_kit.errors import InvalidInput, NotFound
from driftloop_registry.domain.model import Tag
from driftloop_registry.domain.search import version_search
from tests.fakes.registry import MODEL_FILES, Registry

pytestmark = pytest.mark.unit

CREATED = "driftloop.registry.model_version.created"


async def test_a_registered_version_gets_its_files_copied_checksummed_and_announced(
    registry: Registry,
) -> None:
    await registry.models.create(name="iris")

    version = await registry.registration.create_model_version(
        name="iris", source="runs:/run-1/model", tags=[Tag(key="team", value="ml")]
    )

    assert (version.name, version.version, version.run_id) == ("iris", "1", "run-1")
    checksums = {f.path: f.sha256 for f in version.files or []}
    assert checksums == {
        name: hashlib.sha256(data).hexdigest() for name, data in MODEL_FILES.items()
    }
    (storage_key,) = registry.store.storage_keys
    assert registry.files.stored[storage_key] == MODEL_FILES
    assert version.lineage is not None
    assert version.lineage.metrics == {"accuracy": 0.97}
    assert version.lineage.feature_views == ["iris_view"]
    assert registry.staged == [CREATED]
    created = registry.outbox.events[0].data
    assert (created.name, created.version, created.run_id) == ("iris", 1, "run-1")
    assert dict(created.artifact_checksums) == checksums
    assert dict(created.tags) == {"team": "ml"}
    assert list(created.lineage.feature_views) == ["iris_view"]
    assert [e.type for e in registry.log.entries] == [CREATED]
    stored = await registry.versions.get("iris", "1")
    assert stored.files == version.files


async def test_each_registration_takes_the_next_version_number(registry: Registry) -> None:
    await registry.models.create(name="iris")
    for _ in range(2):
        await registry.registration.create_model_version(name="iris", source="runs:/run-1/model")

    found, token = await registry.versions.search(
        version_search(filter_=None, max_results=None, order_by=[], page_token=None)
    )
    assert ([v.version for v in found], token) == (["1", "2"], None)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("runs:/run-1/empty", "No model files found"),
        ("runs:/no-such-run/model", "does not exist in tracking"),
        ("s3://elsewhere/model", "Invalid model version source"),
    ],
)
async def test_a_source_that_holds_no_model_is_refused_and_nothing_is_stored(
    registry: Registry, source: str, message: str
) -> None:
    await registry.models.create(name="iris")

    with pytest.raises(InvalidInput, match=message):
        await registry.registration.create_model_version(name="iris", source=source)

    assert registry.store.storage_keys == set()
    assert registry.files.stored == {}
    assert len(registry.files.removed) == 1
    assert registry.staged == []
    assert registry.log.entries == []


async def test_a_version_without_an_mlmodel_file_is_refused_and_its_copy_removed(
    registry: Registry,
) -> None:
    registry.files.tracking["run-1/artifacts/weights"] = {"model.pkl": b"weights"}
    await registry.models.create(name="iris")

    with pytest.raises(InvalidInput, match="not an MLflow model"):
        await registry.registration.create_model_version(name="iris", source="runs:/run-1/weights")

    assert registry.store.storage_keys == set()
    assert registry.staged == []


async def test_a_missing_source_is_refused_before_anything_is_read(registry: Registry) -> None:
    await registry.models.create(name="iris")

    with pytest.raises(InvalidInput, match="'source'"):
        await registry.registration.create_model_version(name="iris", source="")

    assert registry.files.removed == []


async def test_registering_to_a_model_that_does_not_exist_copies_nothing(
    registry: Registry,
) -> None:
    with pytest.raises(NotFound, match="name=ghost"):
        await registry.registration.create_model_version(name="ghost", source="runs:/run-1/model")

    assert registry.files.stored == {}
    assert registry.files.removed == []


async def test_a_version_copied_from_a_registered_one_keeps_its_files_and_run(
    registry: Registry,
) -> None:
    await registry.models.create(name="iris")
    await registry.models.create(name="iris-prod")
    first = await registry.registration.create_model_version(
        name="iris", source="runs:/run-1/model"
    )
    await registry.aliases.set(name="iris", alias="champion", version="1")

    copied = await registry.registration.create_model_version(
        name="iris-prod", source="models:/iris@champion"
    )

    assert (copied.name, copied.version, copied.run_id) == ("iris-prod", "1", "run-1")
    assert copied.files == first.files
    assert len(registry.files.stored) == 2
    assert registry.staged[-1] == CREATED
