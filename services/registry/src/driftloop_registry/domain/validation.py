"""MLflow's input rules for registered models, versions, aliases and tags.

The messages follow MLflow's (``mlflow/utils/validation.py``) so that users see
the errors they know; every rule raises :class:`~driftloop_kit.errors.InvalidInput`
(400 ``INVALID_PARAMETER_VALUE``).
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from driftloop_kit.errors import InvalidInput
from driftloop_registry.domain.model import Stage

#: Longest alias MLflow accepts.
MAX_ALIAS_LENGTH = 255
#: Longest name, tag key and tag value stored (MLflow's SQL schema limits).
MAX_NAME_LENGTH = 256
MAX_TAG_KEY_LENGTH = 250
MAX_TAG_VALUE_LENGTH = 100_000

_ALIAS = re.compile(r"^[\w\-]*$")
_VERSION_ALIAS = re.compile(r"^[vV]\d+$")


def validate_model_name(name: str | None, field: str = "name") -> str:
    """A registered model name: not empty, no ``/`` or ``:``, no odd path segments."""
    if name is None or not name.strip():
        raise InvalidInput(f"Missing value for required parameter '{field}'.")
    if "/" in name or ":" in name:
        raise InvalidInput(f"Invalid model name '{name}'. Names cannot contain '/' or ':'.")
    if name != name.strip() or name in (".", ".."):
        raise InvalidInput(f"Invalid value '{name}' for parameter '{field}'.")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidInput(
            f"Model name '{name[:40]}...' exceeds the maximum length of {MAX_NAME_LENGTH}."
        )
    return name


def validate_version(version: str | int | None) -> int:
    """A version number: a positive integer (sent as a string by the client)."""
    try:
        number = int(str(version))
    except ValueError:
        raise InvalidInput(f"Parameter 'version' must be an integer, got '{version}'.") from None
    if number < 1:
        raise InvalidInput(f"Parameter 'version' must be a positive integer, got '{version}'.")
    return number


def validate_alias(alias: str | None) -> str:
    """An alias name: letters, digits, ``_`` and ``-``; not ``latest``, not ``v<n>``."""
    if not alias:
        raise InvalidInput("Registered model alias name cannot be empty.")
    if not _ALIAS.match(alias):
        raise InvalidInput(
            f"Invalid alias name: '{alias}'. Names may only contain alphanumerics, "
            "underscores (_), and dashes (-)."
        )
    if len(alias) > MAX_ALIAS_LENGTH:
        raise InvalidInput(
            f"Registered model alias name '{alias[:40]}...' exceeds the maximum length of "
            f"{MAX_ALIAS_LENGTH}."
        )
    if alias.lower() == "latest":
        raise InvalidInput("'latest' alias name (case insensitive) is reserved.")
    if _VERSION_ALIAS.match(alias):
        raise InvalidInput(f"Version alias name '{alias}' is reserved.")
    return alias


def validate_tag(key: str | None, value: str | None) -> None:
    """A tag: a non-empty key within MLflow's length limits, and a value."""
    if not key:
        raise InvalidInput("Missing value for required parameter 'key'.")
    if len(key) > MAX_TAG_KEY_LENGTH:
        raise InvalidInput(
            f"Tag key '{key[:40]}...' exceeds the maximum length of {MAX_TAG_KEY_LENGTH}."
        )
    if value is None:
        raise InvalidInput("Tag value cannot be None")
    if len(value) > MAX_TAG_VALUE_LENGTH:
        raise InvalidInput(
            f"Tag value of '{key}' exceeds the maximum length of {MAX_TAG_VALUE_LENGTH}."
        )


def validate_stage(value: str) -> Stage:
    """A legacy stage by name (case-insensitive)."""
    try:
        return Stage.parse(value)
    except ValueError:
        raise InvalidInput(
            f"Invalid Model Version stage: {value}. Value must be one of "
            f"{', '.join(stage.value for stage in Stage)}."
        ) from None


def registry_source(source: str) -> tuple[str, str] | None:
    """``(name, version-or-@alias)`` of a ``models:/<name>/<version>|@<alias>`` source.

    None for any other source, including ``models:/<model_id>`` (a logged model in
    tracking).
    """
    parts = urlsplit(source)
    if parts.scheme != "models":
        return None
    rest = (parts.netloc + parts.path).strip("/")
    if "@" in rest:
        name, _, alias = rest.rpartition("@")
        return name, "@" + alias
    if "/" in rest:
        name, _, version = rest.rpartition("/")
        return name, version
    return None
