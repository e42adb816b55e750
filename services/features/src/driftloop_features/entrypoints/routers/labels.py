"""Labels over HTTP, for clients without Kafka: send them, read them back."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from driftloop_features.domain.labels import Label, LabelRejected, Scalar
from driftloop_features.entrypoints.deps import LabelsDep
from driftloop_kit.auth import READER, WRITER
from driftloop_kit.errors import InvalidInput

router = APIRouter(prefix="/labels", tags=["labels"])

#: At most this many labels in one POST.
MAX_LABELS_PER_REQUEST = 10_000


class LabelIn(BaseModel):
    """One label: the ground truth of a prediction (request id) or of entity keys."""

    model_config = ConfigDict(extra="forbid")

    model_name: str = Field(min_length=1, max_length=255, examples=["churn"])
    request_id: str | None = Field(default=None, max_length=255, examples=["req-5b0e6c1f"])
    entity_keys: dict[str, str | int | bool] = Field(default_factory=dict)
    ground_truth: Scalar = Field(examples=["yes"])
    event_time: AwareDatetime = Field(examples=["2026-12-01T14:00:00Z"])


class LabelsIn(BaseModel):
    """One or many labels."""

    model_config = ConfigDict(extra="forbid")

    labels: list[LabelIn] = Field(min_length=1, max_length=MAX_LABELS_PER_REQUEST)


def _label_out(label_id: int, label: Label) -> dict[str, Any]:
    return {
        "id": label_id,
        "model_name": label.model_name,
        "request_id": label.request_id,
        "entity_keys": dict(label.entity_keys),
        "ground_truth": label.ground_truth,
        "event_time": label.event_time.isoformat(),
    }


@router.post(
    "", status_code=202, summary="Store labels and publish them on `labels`", dependencies=[WRITER]
)
async def post_labels(body: LabelsIn, labels: LabelsDep) -> dict[str, Any]:
    """Store each label (a resent label is one label; a later event time replaces an
    earlier one) and publish it on the ``labels`` topic, as a Kafka producer would."""
    parsed: list[Label] = []
    for index, item in enumerate(body.labels):
        try:
            parsed.append(
                Label(
                    model_name=item.model_name,
                    ground_truth=item.ground_truth,
                    event_time=item.event_time,
                    request_id=item.request_id or None,
                    entity_keys=item.entity_keys,
                )
            )
        except LabelRejected as exc:
            raise InvalidInput(f"labels[{index}]: {exc}") from exc
    await labels.submit(parsed)
    return {"accepted": len(parsed)}


@router.get(
    "/{model_name}", summary="A model's labels, by time range, paged", dependencies=[READER]
)
async def get_labels(
    model_name: str,
    *,
    labels: LabelsDep,
    start: Annotated[datetime | None, Query(description="event_time >= start")] = None,
    end: Annotated[datetime | None, Query(description="event_time < end")] = None,
    after: Annotated[int, Query(ge=0, description="the last id of the previous page")] = 0,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> dict[str, Any]:
    """Labels of ``model_name`` in id order; pass ``next_after`` as ``after`` for more."""
    for name, value in (("start", start), ("end", end)):
        if value is not None and value.tzinfo is None:
            raise InvalidInput(f"{name} has no time zone (e.g. 2026-12-01T00:00:00Z)")
    page = await labels.read(model_name, start=start, end=end, after_id=after, limit=limit)
    return {
        "labels": [_label_out(i, label) for i, label in page],
        "next_after": page[-1][0] if len(page) == limit else None,
    }
