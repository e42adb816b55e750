"""MLflow's input rules: names, value sizes and batch limits. Pure functions."""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence

from driftloop_kit.errors import InvalidInput
from driftloop_tracking.domain.model import Metric, Param, Tag

MAX_METRICS_PER_BATCH = 1000
MAX_PARAMS_PER_BATCH = 100
MAX_TAGS_PER_BATCH = 100
MAX_ENTITIES_PER_BATCH = 1000
MAX_KEY_LENGTH = 250
MAX_PARAM_VALUE_LENGTH = 6000
MAX_TAG_VALUE_LENGTH = 8000
MAX_EXPERIMENT_NAME_LENGTH = 256

# MLflow: alphanumerics, underscores, dashes, periods, spaces, slashes (and colons).
_VALID_KEY = re.compile(r"^[/\w.\- :]*$")


def validate_key(key: str, kind: str) -> None:
    """A metric, param or tag name MLflow accepts."""
    if problem := _key_problem(key, kind):
        raise InvalidInput(problem)


@functools.lru_cache(maxsize=4096)
def _key_problem(key: str, kind: str) -> str | None:
    # Cached: a batch of 1000 metrics names a few keys many times, and runs reuse them.
    if not key:
        return f"Invalid {kind} name: '{key}'. Names may not be empty."
    if len(key) > MAX_KEY_LENGTH:
        return (
            f"{kind.capitalize()} name '{key[:40]}...' is {len(key)} characters long; "
            f"the limit is {MAX_KEY_LENGTH}."
        )
    if not _VALID_KEY.match(key) or ".." in key.split("/") or key.startswith("/"):
        return (
            f"Invalid {kind} name: '{key}'. Names may only contain alphanumerics, underscores "
            "(_), dashes (-), periods (.), spaces ( ), colons (:) and slashes (/)."
        )
    return None


def validate_tag_value(value: str) -> None:
    """A tag value within MLflow's size limit."""
    if len(value) > MAX_TAG_VALUE_LENGTH:
        raise InvalidInput(
            f"Tag value is {len(value)} characters long; the limit is {MAX_TAG_VALUE_LENGTH}."
        )


def validate_experiment_name(name: str) -> None:
    """A non-empty experiment name within MLflow's limit."""
    if not name or not name.strip():
        raise InvalidInput("Invalid experiment name: '' (must be a non-empty string).")
    if len(name) > MAX_EXPERIMENT_NAME_LENGTH:
        raise InvalidInput(
            f"Experiment name is {len(name)} characters long; "
            f"the limit is {MAX_EXPERIMENT_NAME_LENGTH}."
        )


def validate_batch(metrics: Sequence[Metric], params: Sequence[Param], tags: Sequence[Tag]) -> None:
    """MLflow's log-batch limits and the rules for each entry."""
    if len(metrics) > MAX_METRICS_PER_BATCH:
        raise InvalidInput(
            f"A batch logging request can contain at most {MAX_METRICS_PER_BATCH} metrics. "
            f"Got {len(metrics)} metrics."
        )
    if len(params) > MAX_PARAMS_PER_BATCH:
        raise InvalidInput(
            f"A batch logging request can contain at most {MAX_PARAMS_PER_BATCH} params. "
            f"Got {len(params)} params."
        )
    if len(tags) > MAX_TAGS_PER_BATCH:
        raise InvalidInput(
            f"A batch logging request can contain at most {MAX_TAGS_PER_BATCH} tags. "
            f"Got {len(tags)} tags."
        )
    total = len(metrics) + len(params) + len(tags)
    if total > MAX_ENTITIES_PER_BATCH:
        raise InvalidInput(
            f"A batch logging request can contain at most {MAX_ENTITIES_PER_BATCH} metrics, "
            f"params and tags in total. Got {total}."
        )
    for metric in metrics:
        validate_key(metric.key, "metric")
    for param in params:
        validate_key(param.key, "param")
        if len(param.value) > MAX_PARAM_VALUE_LENGTH:
            raise InvalidInput(
                f"Param value for '{param.key}' is {len(param.value)} characters long; "
                f"the limit is {MAX_PARAM_VALUE_LENGTH}."
            )
    for tag in tags:
        validate_key(tag.key, "tag")
        validate_tag_value(tag.value)
