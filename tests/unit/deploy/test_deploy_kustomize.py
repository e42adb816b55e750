"""The test renderer (tests/unit/deploy/kustomize.py) renders what kustomize renders."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.unit.deploy.kustomize import UnsupportedError, render, strategic_merge
from tests.unit.deploy.support import DEPLOY

pytestmark = pytest.mark.unit

OVERLAYS = [DEPLOY / "k8s" / "base", DEPLOY / "k8s" / "overlays" / "production"]

DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "api"},
    "spec": {
        "replicas": 1,
        "template": {
            "spec": {
                "containers": [
                    {
                        "name": "api",
                        "image": "example/api:1.0",
                        "args": ["--a"],
                        "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                    },
                    {"name": "sidecar", "image": "example/sidecar:1.0"},
                ]
            }
        },
    },
}


def write(folder: Path, name: str, documents: list[dict[str, Any]]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(yaml.safe_dump_all(documents))


def test_a_strategic_merge_merges_named_items_and_replaces_plain_lists() -> None:
    patch = {
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {"name": "api", "args": ["--b"], "env": [{"name": "B", "value": "3"}]}
                    ]
                }
            }
        },
        "metadata": {"labels": {"x": "y"}},
    }
    merged = strategic_merge(DEPLOYMENT, patch)
    api, sidecar = merged["spec"]["template"]["spec"]["containers"]
    assert api["args"] == ["--b"]
    assert api["env"] == [{"name": "A", "value": "1"}, {"name": "B", "value": "3"}]
    assert api["image"] == "example/api:1.0"
    assert sidecar == {"name": "sidecar", "image": "example/sidecar:1.0"}
    assert merged["metadata"] == {"name": "api", "labels": {"x": "y"}}
    assert DEPLOYMENT["metadata"] == {"name": "api"}, "the base is not changed"
    assert "replicas" not in strategic_merge(DEPLOYMENT, {"spec": {"replicas": None}})["spec"]


def test_an_overlay_sets_namespace_images_replicas_and_patches(tmp_path: Path) -> None:
    write(tmp_path / "base", "api.yaml", [DEPLOYMENT])
    (tmp_path / "base" / "kustomization.yaml").write_text(
        "namespace: ns\nresources:\n  - api.yaml\n"
    )
    patch = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "api"},
        "spec": {"template": {"spec": {"containers": [{"name": "api", "args": ["--b"]}]}}},
    }
    write(tmp_path / "prod", "patch.yaml", [patch])
    (tmp_path / "prod" / "kustomization.yaml").write_text(
        "resources:\n  - ../base\n"
        "images:\n  - name: example/api\n    newName: reg.example/api\n    newTag: '2.0'\n"
        "replicas:\n  - name: api\n    count: 3\n"
        "patches:\n  - path: patch.yaml\n"
    )
    (deployment,) = render(tmp_path / "prod").documents
    assert deployment["metadata"]["namespace"] == "ns"
    assert deployment["spec"]["replicas"] == 3
    api, sidecar = deployment["spec"]["template"]["spec"]["containers"]
    assert (api["image"], api["args"]) == ("reg.example/api:2.0", ["--b"])
    assert sidecar["image"] == "example/sidecar:1.0"


@pytest.mark.parametrize(
    "kustomization",
    [
        "resources:\n  - api.yaml\ncommonLabels:\n  a: b\n",
        "resources:\n  - api.yaml\npatches:\n  - patch: '{}'\n    target:\n      kind: Job\n",
        "resources:\n  - api.yaml\nimages:\n  - name: example/api\n    digest: sha256:00\n",
        "resources:\n  - missing.yaml\n",
        "resources:\n  - api.yaml\nimages:\n  - name: example/nothing\n    newTag: '2'\n",
    ],
)
def test_what_the_renderer_cannot_render_faithfully_is_refused(
    kustomization: str, tmp_path: Path
) -> None:
    write(tmp_path, "api.yaml", [DEPLOYMENT])
    (tmp_path / "kustomization.yaml").write_text(kustomization)
    with pytest.raises((UnsupportedError, FileNotFoundError, ValueError)):
        render(tmp_path)


def test_a_resource_declared_twice_is_refused(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", [DEPLOYMENT])
    write(tmp_path, "b.yaml", [DEPLOYMENT])
    (tmp_path / "kustomization.yaml").write_text("resources:\n  - a.yaml\n  - b.yaml\n")
    with pytest.raises(ValueError, match="declared twice"):
        render(tmp_path)


@pytest.mark.parametrize("folder", OVERLAYS, ids=lambda p: p.name)
def test_kubectl_kustomize_renders_what_the_test_renderer_renders(folder: Path) -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed; the other tests use the test renderer alone")
    built = subprocess.run(
        [kubectl, "kustomize", str(folder)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert built.returncode == 0, built.stderr
    theirs = {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(built.stdout) if d}
    ours = {(d["kind"], d["metadata"]["name"]): d for d in render(folder).documents}
    assert sorted(ours) == sorted(theirs)
    for key, document in ours.items():
        assert document == theirs[key], key
