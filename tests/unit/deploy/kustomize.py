"""Enough of kustomize to render deploy/k8s without the binary.

It supports the fields the kustomizations under deploy/ use — ``resources``
(files and directories), ``namespace``, ``images``, ``replicas`` and ``patches``
(strategic merge patches from files) — and refuses every other field, so a
kustomization that starts using more fails the tests instead of rendering
wrong. Where ``kubectl`` is installed, a test compares its rendering with this.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "Kustomization",
    "UnsupportedError",
    "load_yaml_documents",
    "pod_spec",
    "render",
    "strategic_merge",
]

SUPPORTED_FIELDS = frozenset(
    {"apiVersion", "kind", "namespace", "resources", "images", "replicas", "patches"}
)

#: Kinds that live outside namespaces (the namespace transformer leaves them alone).
CLUSTER_SCOPED_KINDS = frozenset(
    {
        "Namespace",
        "PersistentVolume",
        "StorageClass",
        "ClusterRole",
        "ClusterRoleBinding",
        "CustomResourceDefinition",
        "PriorityClass",
    }
)

#: Merge keys of the lists a strategic merge patch merges item by item.
MERGE_KEYS = ("name", "mountPath", "containerPort")

Document = dict[str, Any]


class UnsupportedError(ValueError):
    """The kustomization uses something this renderer does not implement."""


@dataclass
class Kustomization:
    """A rendered kustomization: its documents and every file it was built from."""

    documents: list[Document]
    files: set[Path] = field(default_factory=set)

    def find(self, kind: str, name: str) -> Document:
        """The one document of ``kind`` named ``name``."""
        found = [d for d in self.documents if d["kind"] == kind and d["metadata"]["name"] == name]
        if len(found) != 1:
            raise LookupError(f"{len(found)} documents of kind {kind} named {name!r}")
        return found[0]

    def of_kind(self, kind: str) -> list[Document]:
        """Every document of ``kind``, in order."""
        return [d for d in self.documents if d["kind"] == kind]


#: libyaml's loader where PyYAML was built with it (several times faster), else Python's.
_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_yaml_documents(path: Path) -> list[Document]:
    """The non-empty documents of a (multi-document) YAML file."""
    with path.open() as stream:
        return [d for d in yaml.load_all(stream, Loader=_LOADER) if d is not None]


def render(directory: Path) -> Kustomization:
    """Render the kustomization in ``directory`` as ``kustomize build`` would."""
    path = directory / "kustomization.yaml"
    spec = yaml.safe_load(path.read_text())
    unknown = set(spec) - SUPPORTED_FIELDS
    if unknown:
        raise UnsupportedError(f"{path}: fields not supported here: {sorted(unknown)}")
    if spec.get("kind", "Kustomization") != "Kustomization":
        raise UnsupportedError(f"{path}: kind {spec['kind']!r} is not a Kustomization")

    result = Kustomization(documents=[], files={path.resolve()})
    for entry in spec.get("resources", []):
        _load_resource(result, directory, entry)
    _check_unique(result.documents, path)

    for entry in spec.get("patches", []):
        if set(entry) != {"path"}:
            raise UnsupportedError(f"{path}: only `patches: - path: <file>` is supported")
        patch_file = (directory / entry["path"]).resolve()
        result.files.add(patch_file)
        for patch in load_yaml_documents(patch_file):
            _apply_patch(result.documents, patch, patch_file)
    for replica in spec.get("replicas", []):
        _set_replicas(result.documents, replica, path)
    for image in spec.get("images", []):
        _set_image(result.documents, image, path)
    if "namespace" in spec:
        for document in result.documents:
            if document["kind"] not in CLUSTER_SCOPED_KINDS:
                document["metadata"]["namespace"] = spec["namespace"]
    return result


def _load_resource(result: Kustomization, directory: Path, entry: str) -> None:
    target = (directory / entry).resolve()
    if target.is_dir():
        nested = render(target)
        result.documents += nested.documents
        result.files |= nested.files
    elif target.is_file():
        result.documents += load_yaml_documents(target)
        result.files.add(target)
    else:
        raise FileNotFoundError(f"{directory}: resource {entry!r} does not exist")


def strategic_merge(base: Any, patch: Any) -> Any:
    """``patch`` merged into ``base`` the way a strategic merge patch merges them.

    Maps merge key by key (a ``null`` value deletes the key); lists of maps that
    all carry one of :data:`MERGE_KEYS` merge item by item; any other value is
    replaced. Directives (``$patch``, ``$retainKeys`` ...) are refused.
    """
    if isinstance(base, dict) and isinstance(patch, dict):
        merged = copy.deepcopy(base)
        for key, value in patch.items():
            if key.startswith("$"):
                raise UnsupportedError(f"patch directive {key!r} is not supported")
            if value is None:
                merged.pop(key, None)
            elif key in merged:
                merged[key] = strategic_merge(merged[key], value)
            else:
                merged[key] = copy.deepcopy(value)
        return merged
    if isinstance(base, list) and isinstance(patch, list):
        key = _merge_key(base, patch)
        if key is None:
            return copy.deepcopy(patch)
        merged_items = [copy.deepcopy(item) for item in base]
        for item in patch:
            index = next((i for i, b in enumerate(merged_items) if b[key] == item[key]), None)
            if index is None:
                merged_items.append(copy.deepcopy(item))
            else:
                merged_items[index] = strategic_merge(merged_items[index], item)
        return merged_items
    return copy.deepcopy(patch)


def _merge_key(base: list[Any], patch: list[Any]) -> str | None:
    items = base + patch
    if not items or not all(isinstance(item, dict) for item in items):
        return None
    return next((k for k in MERGE_KEYS if all(k in item for item in items)), None)


def _check_unique(documents: list[Document], path: Path) -> None:
    seen: set[tuple[str, str]] = set()
    for document in documents:
        key = (document["kind"], document["metadata"]["name"])
        if key in seen:
            raise ValueError(f"{path}: {key[0]} {key[1]!r} is declared twice")
        seen.add(key)


def _apply_patch(documents: list[Document], patch: Document, source: Path) -> None:
    targets = [
        i
        for i, d in enumerate(documents)
        if d["kind"] == patch["kind"]
        and d["metadata"]["name"] == patch["metadata"]["name"]
        and d["apiVersion"] == patch["apiVersion"]
    ]
    if len(targets) != 1:
        raise ValueError(
            f"{source}: patch of {patch['kind']} {patch['metadata']['name']!r} "
            f"matches {len(targets)} resources"
        )
    documents[targets[0]] = strategic_merge(documents[targets[0]], patch)


def _set_replicas(documents: list[Document], replica: dict[str, Any], path: Path) -> None:
    # kustomize's replica transformer: Deployments, ReplicaSets and StatefulSets by name.
    matched = [
        d
        for d in documents
        if d["kind"] in ("Deployment", "ReplicaSet", "StatefulSet")
        and d["metadata"]["name"] == replica["name"]
    ]
    if not matched:
        raise ValueError(f"{path}: replicas of {replica['name']!r} match no workload")
    for document in matched:
        document["spec"]["replicas"] = replica["count"]


def _set_image(documents: list[Document], image: dict[str, Any], path: Path) -> None:
    unknown = set(image) - {"name", "newName", "newTag"}
    if unknown:
        raise UnsupportedError(f"{path}: image fields not supported here: {sorted(unknown)}")
    matched = False
    for container in _containers(documents):
        name, _, tag = container["image"].partition(":")
        if name != image["name"]:
            continue
        matched = True
        new_tag = image.get("newTag", tag)
        container["image"] = image.get("newName", name) + (f":{new_tag}" if new_tag else "")
    if not matched:
        raise ValueError(f"{path}: image {image['name']!r} is used by no container")


def _containers(documents: list[Document]) -> Iterator[dict[str, Any]]:
    for document in documents:
        pod = pod_spec(document)
        if pod is not None:
            yield from pod.get("initContainers", [])
            yield from pod.get("containers", [])


def pod_spec(document: Document) -> dict[str, Any] | None:
    """The pod spec of a workload (Deployment, Job, CronJob ...), or None."""
    spec = document.get("spec", {})
    if document["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    template = spec.get("template")
    if document["kind"] in (
        "Deployment",
        "StatefulSet",
        "DaemonSet",
        "ReplicaSet",
        "Job",
        "CronJob",
    ):
        return template["spec"] if template else None
    return None
