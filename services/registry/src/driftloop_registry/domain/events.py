"""The events the registry publishes, built from the versions and aliases it stores.

``alias.set`` carries the version the alias pointed to before, so serving and the
trainer never have to ask.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from driftloop.registry.v1 import events_pb2 as events
from driftloop_registry.domain.model import EventRef, Lineage, ModelVersion, VersionStatus

#: ``model_version.updated``'s changed field for a new description.
DESCRIPTION_CHANGED = events.MODEL_VERSION_FIELD_DESCRIPTION
#: ``model_version.updated``'s changed field for a tag set or removed.
TAGS_CHANGED = events.MODEL_VERSION_FIELD_TAGS

_STATUS = {
    VersionStatus.PENDING_REGISTRATION: events.MODEL_VERSION_STATUS_PENDING_REGISTRATION,
    VersionStatus.FAILED_REGISTRATION: events.MODEL_VERSION_STATUS_FAILED_REGISTRATION,
    VersionStatus.READY: events.MODEL_VERSION_STATUS_READY,
}


def timestamp(ms: int) -> Timestamp:
    """A protobuf timestamp of milliseconds since the epoch."""
    stamp = Timestamp()
    stamp.FromMilliseconds(ms)
    return stamp


def _copy_ref(target: Message, ref: EventRef) -> None:
    target.id, target.type, target.source = ref.id, ref.type, ref.source  # type: ignore[attr-defined]


def version_created(version: ModelVersion) -> events.ModelVersionCreated:
    """The ``model_version.created`` event of a stored version."""
    lineage = version.lineage or Lineage()
    message = events.ModelVersionCreated(
        name=version.name,
        version=int(version.version),
        source=version.source,
        run_id=version.run_id or "",
        tags={tag.key: tag.value for tag in version.tags},
        description=version.description or "",
        status=_STATUS[version.status],
        create_time=timestamp(version.creation_timestamp),
        artifact_checksums={file.path: file.sha256 for file in version.files or []},
        user_id=version.user_id or "",
    )
    message.lineage.feature_views.extend(lineage.feature_views)
    message.lineage.dataset_digests.extend(d.digest for d in lineage.datasets if d.digest)
    message.lineage.training_job_id = lineage.training_job_id
    if lineage.triggering_event is not None:
        _copy_ref(message.lineage.triggering_event, lineage.triggering_event)
    return message


def version_updated(version: ModelVersion, changed: Sequence[Any]) -> events.ModelVersionUpdated:
    """The ``model_version.updated`` event after a change of ``changed`` fields."""
    return events.ModelVersionUpdated(
        name=version.name,
        version=int(version.version),
        changed_fields=changed,
        description=version.description or "",
        status=_STATUS[version.status],
        tags={tag.key: tag.value for tag in version.tags},
        update_time=timestamp(version.last_updated_timestamp),
        user_id=version.user_id or "",
    )


def alias_set(
    version: ModelVersion,
    *,
    alias: str,
    previous: int | None,
    now: int,
    cause: EventRef | None = None,
    user_id: str | None = None,
) -> events.AliasSet:
    """The ``alias.set`` event of ``alias`` moved to ``version`` from ``previous``."""
    event = events.AliasSet(
        name=version.name,
        alias=alias,
        version=int(version.version),
        run_id=version.run_id or "",
        source=version.source,
        set_time=timestamp(now),
        user_id=user_id or "",
    )
    if previous is not None:
        event.previous_version = previous
    if cause is not None:
        _copy_ref(event.cause, cause)
    return event


def alias_deleted(
    name: str, *, alias: str, version: int, now: int, user_id: str | None = None
) -> events.AliasDeleted:
    """The ``alias.deleted`` event of ``alias``, which pointed to ``version``."""
    return events.AliasDeleted(
        name=name,
        alias=alias,
        version=version,
        delete_time=timestamp(now),
        user_id=user_id or "",
    )
