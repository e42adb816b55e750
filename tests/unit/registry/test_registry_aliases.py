"""Aliases with fakes: every move stages one event and logs it; no move stages nothing."""

from __future__ import annotations

import pytest

from driftloop_kit.errors import InvalidInput, NotFound
from driftloop_registry.domain.model import EventRef
from tests.fakes.registry import Registry

pytestmark = pytest.mark.unit

SET = "driftloop.registry.alias.set"
DELETED = "driftloop.registry.alias.deleted"
UPDATED = "driftloop.registry.model_version.updated"


async def two_versions(registry: Registry) -> None:
    await registry.models.create(name="iris")
    for _ in range(2):
        await registry.registration.create_model_version(name="iris", source="runs:/run-1/model")
    registry.outbox.events.clear()


async def test_setting_an_alias_stages_alias_set_with_the_version_it_named_before(
    registry: Registry,
) -> None:
    await two_versions(registry)
    cause = EventRef(id="evt-9", type="driftloop.trainer.training.completed", source="/trainer")

    await registry.aliases.set(name="iris", alias="champion", version="1")
    await registry.aliases.set(name="iris", alias="champion", version=2, cause=cause)

    assert registry.staged == [SET, SET]
    first, second = (event.data for event in registry.outbox.events)
    assert (first.version, first.HasField("previous_version")) == (1, False)
    assert (second.version, second.previous_version) == (2, 1)
    assert (second.run_id, second.source) == ("run-1", "runs:/run-1/model")
    assert (second.cause.id, second.cause.type) == ("evt-9", cause.type)
    assert (await registry.versions.by_alias("iris", "champion")).version == "2"
    assert [e.type for e in registry.log.entries][-2:] == [SET, SET]


async def test_setting_an_alias_to_the_version_it_already_names_stages_nothing(
    registry: Registry,
) -> None:
    await two_versions(registry)
    await registry.aliases.set(name="iris", alias="champion", version="1")

    await registry.aliases.set(name="iris", alias="champion", version="1")

    assert registry.staged == [SET]


async def test_an_alias_on_a_missing_version_or_with_a_bad_name_is_refused(
    registry: Registry,
) -> None:
    await two_versions(registry)

    with pytest.raises(NotFound, match="version=7"):
        await registry.aliases.set(name="iris", alias="champion", version="7")
    with pytest.raises(InvalidInput):
        await registry.aliases.set(name="iris", alias="v1", version="1")

    assert registry.staged == []


async def test_deleting_an_alias_stages_alias_deleted_with_the_version_it_named(
    registry: Registry,
) -> None:
    await two_versions(registry)
    await registry.aliases.set(name="iris", alias="champion", version="2")

    await registry.aliases.delete(name="iris", alias="champion", user_id="ana")

    assert registry.staged == [SET, DELETED]
    deleted = registry.outbox.events[-1].data
    assert (deleted.name, deleted.alias, deleted.version, deleted.user_id) == (
        "iris",
        "champion",
        2,
        "ana",
    )
    assert registry.log.entries[-1].type == DELETED
    with pytest.raises(NotFound, match="alias champion not found"):
        await registry.versions.by_alias("iris", "champion")


async def test_deleting_a_missing_alias_is_not_found_and_stages_nothing(
    registry: Registry,
) -> None:
    await two_versions(registry)

    with pytest.raises(NotFound, match="alias champion not found"):
        await registry.aliases.delete(name="iris", alias="champion")

    assert registry.staged == []


async def test_deleting_a_version_stages_alias_deleted_for_each_alias_naming_it(
    registry: Registry,
) -> None:
    await two_versions(registry)
    for alias, version in (("champion", "1"), ("stable", "1"), ("challenger", "2")):
        await registry.aliases.set(name="iris", alias=alias, version=version)
    registry.outbox.events.clear()

    await registry.versions.delete(name="iris", version="1")

    assert registry.staged == [DELETED, DELETED]
    assert sorted(e.data.alias for e in registry.outbox.events) == ["champion", "stable"]
    assert [a.alias for a in (await registry.models.get("iris")).aliases] == ["challenger"]
    assert len(registry.files.removed) == 1


async def test_deleting_a_model_announces_every_alias_it_had_and_forgets_its_log(
    registry: Registry,
) -> None:
    await two_versions(registry)
    await registry.aliases.set(name="iris", alias="champion", version="1")
    registry.outbox.events.clear()

    await registry.models.delete("iris")

    assert registry.staged == [DELETED]
    assert registry.log.entries == []
    assert len(registry.files.removed) == 2
    with pytest.raises(NotFound):
        await registry.models.get("iris")


async def test_a_version_tag_change_stages_model_version_updated_with_the_tags(
    registry: Registry,
) -> None:
    await two_versions(registry)

    await registry.versions.set_tag(name="iris", version="1", key="stage", value="canary")
    await registry.versions.delete_tag(name="iris", version="1", key="stage")

    assert registry.staged == [UPDATED, UPDATED]
    set_tag, deleted_tag = (event.data for event in registry.outbox.events)
    assert dict(set_tag.tags) == {"stage": "canary"}
    assert dict(deleted_tag.tags) == {}
    with pytest.raises(NotFound, match="No tag with name: stage"):
        await registry.versions.delete_tag(name="iris", version="1", key="stage")
    assert len(registry.staged) == 2
