"""``driftloop apply`` and ``driftloop get models``: model documents, as kubectl and
feast handle theirs.

A file (or every ``*.yaml``/``*.yml``/``*.json`` of a folder) holds one or more model
documents (YAML, separated by ``---``). Every document is checked here first, against
the same models the services use (:mod:`driftloop_kit.declarations`), and every error of
every document is listed; only when all of them are valid are they sent to the trainer
(``PUT /models/{name}``), which checks them again, stores each as a new revision and
publishes it, so serving and the monitor take it up without a restart.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml
from pydantic import ValidationError

from driftloop_cli.credentials import auth_header, service_url
from driftloop_kit.declarations import ModelDeclaration

__all__ = [
    "DEFAULT_TRAINER_URL",
    "ApplyError",
    "InvalidDocuments",
    "apply_documents",
    "get_models",
    "read_documents",
    "trainer_url",
    "validate_documents",
]

#: The trainer of a suite started with the defaults.
DEFAULT_TRAINER_URL = "http://127.0.0.1:8008"
#: Files of a folder that are read.
SUFFIXES = (".yaml", ".yml", ".json")


class InvalidDocuments(Exception):
    """One or more documents do not validate; ``errors`` lists every error."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


class ApplyError(Exception):
    """The trainer refused a document or could not be reached."""


@dataclass(frozen=True)
class Source:
    """One document and where it was read."""

    where: str
    body: Any


def trainer_url(explicit: str | None, home: Path) -> str:
    """``explicit``, else the trainer ``driftloop up`` announced in ``home``, else local."""
    if explicit:
        return explicit.rstrip("/")
    return service_url(home, "trainer") or DEFAULT_TRAINER_URL


def _files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.suffix in SUFFIXES and p.is_file())
    return [path]


def read_documents(paths: Iterable[Path]) -> list[Source]:
    """Every document of the files (a folder: its YAML and JSON files), in order.

    Raises:
        InvalidDocuments: A file cannot be read or parsed, or holds no document.
    """
    found: list[Source] = []
    errors: list[str] = []
    for given in paths:
        if not given.exists():
            errors.append(f"{given}: no such file or folder")
            continue
        for path in _files(given):
            try:
                documents = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
            except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
                errors.append(f"{path}: cannot be read as YAML: {error}")
                continue
            if not documents:
                errors.append(f"{path}: holds no document")
            many = len(documents) > 1
            for index, body in enumerate(documents, start=1):
                found.append(Source(f"{path} (document {index})" if many else str(path), body))
    if errors:
        raise InvalidDocuments(errors)
    return found


def _located(error: Any) -> str:
    where = ".".join(str(part) for part in error["loc"]) or "(document)"
    return f"{where}: {error['msg']}"


def validate_documents(sources: Iterable[Source]) -> list[ModelDeclaration]:
    """Every document as a model declaration.

    Raises:
        InvalidDocuments: With every error of every document (and a model declared twice).
    """
    declarations: list[ModelDeclaration] = []
    errors: list[str] = []
    seen: dict[str, str] = {}
    for source in sources:
        if not isinstance(source.body, dict):
            errors.append(f"{source.where}: a model document is a mapping (apiVersion, kind ...)")
            continue
        try:
            declaration = ModelDeclaration.model_validate(source.body)
        except ValidationError as error:
            errors.extend(f"{source.where}: {_located(e)}" for e in error.errors())
            continue
        if declaration.name in seen:
            errors.append(
                f"{source.where}: model {declaration.name!r} is declared twice "
                f"(also in {seen[declaration.name]})"
            )
            continue
        seen[declaration.name] = source.where
        declarations.append(declaration)
    if errors:
        raise InvalidDocuments(errors)
    return declarations


def _call(
    method: str, url: str, home: Path, *, body: Any = None, params: dict[str, str] | None = None
) -> httpx.Response:
    try:
        return httpx.request(
            method,
            url,
            json=body,
            params=params,
            headers=auth_header(home),
            timeout=30,
            trust_env=False,
        )
    except httpx.HTTPError as error:
        raise ApplyError(f"cannot reach the trainer at {url}: {error}") from error


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:500] or f"answered {response.status_code}"
    return str(body.get("message") or body.get("detail") or f"answered {response.status_code}")


def apply_documents(
    declarations: Iterable[ModelDeclaration], *, base_url: str, home: Path
) -> Iterator[dict[str, Any]]:
    """Send each document to the trainer; yields what it answered (name, revision,
    changed), one by one.

    Raises:
        ApplyError: The trainer refused one (the ones before it are applied).
    """
    for declaration in declarations:
        response = _call(
            "PUT", f"{base_url}/models/{declaration.name}", home, body=declaration.document()
        )
        if response.status_code >= 400:
            raise ApplyError(
                f"the trainer refused model {declaration.name!r} ({response.status_code}): "
                f"{_message(response)}"
            )
        yield dict(response.json())


def get_models(base_url: str, home: Path, name: str | None = None) -> list[dict[str, Any]]:
    """The trainer's models (one when ``name``): their revision and latest document.

    Raises:
        ApplyError: The trainer answered an error or could not be reached.
    """
    path = f"/models/{name}" if name else "/models"
    response = _call("GET", f"{base_url}{path}", home)
    if response.status_code >= 400:
        raise ApplyError(f"the trainer answered {response.status_code}: {_message(response)}")
    body = response.json()
    return [body] if name else list(body["models"])


def render(models: list[dict[str, Any]], output: str) -> str:
    """The models as a table (``output="table"``), YAML documents or JSON."""
    if output == "json":
        return json.dumps(models if len(models) != 1 else models[0], indent=2) + "\n"
    if output == "yaml":
        documents = [
            m.get("document") or {"name": m["name"], "declared_by": "settings"} for m in models
        ]
        return yaml.safe_dump_all(documents, sort_keys=False)
    rows = [("NAME", "REVISION", "FEATURES", "LABEL", "ENTRY POINT")]
    for model in models:
        job = model.get("job", {})
        features = job.get("feature_service") or ",".join(job.get("features", [])) or "-"
        revision = str(model.get("revision") or "settings")
        rows.append(
            (model["name"], revision, features, job.get("label") or "-", job["entry_point"])
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "".join(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() + "\n"
        for row in rows
    )
