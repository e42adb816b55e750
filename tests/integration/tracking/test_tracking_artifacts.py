"""Artifacts through the running service with the official mlflow client, and on a real disk."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import mlflow
import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from driftloop_kit.artifacts import ArtifactRepository
from driftloop_kit.errors import InvalidInput
from driftloop_kit.testing import auth_headers
from tests.fakes.common import unique

from .conftest import RunningServer

pytestmark = pytest.mark.integration

ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"


def tree(folder: Path) -> dict[str, bytes]:
    """Every file below ``folder`` by relative path, with its bytes."""
    return {
        path.relative_to(folder).as_posix(): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def make_bundle(folder: Path) -> dict[str, bytes]:
    """A folder with subfolders, a text file and a binary file of a few MB."""
    files = {
        "config.yaml": b"alpha: 0.5\nsolver: lbfgs\n",
        "data/train.csv": b"x,y\n" + b"".join(f"{i},{i % 2}\n".encode() for i in range(5000)),
        "data/nested/weights.bin": os.urandom(3 * 1024 * 1024 + 17),
        "data/nested/empty.txt": b"",
    }
    for name, content in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    return files


def test_logged_artifacts_list_and_download_byte_identical(
    tracking_server: RunningServer, tmp_path: Path
) -> None:
    mlflow.set_tracking_uri(tracking_server.url)
    client = MlflowClient(tracking_server.url)
    experiment_id = client.create_experiment(unique("artifacts"))
    bundle = tmp_path / "bundle"
    files = make_bundle(bundle)
    report = tmp_path / "report.txt"
    report.write_text("accuracy: 0.93\n")
    model = tmp_path / "model.bin"
    model.write_bytes(os.urandom(2 * 1024 * 1024))

    with mlflow.start_run(experiment_id=experiment_id) as run:
        mlflow.log_artifact(str(report))
        mlflow.log_artifact(str(model), artifact_path="models/v1")
        mlflow.log_artifacts(str(bundle), artifact_path="bundle")
    run_id = run.info.run_id
    assert run.info.artifact_uri == f"mlflow-artifacts:/{experiment_id}/{run_id}/artifacts"

    top = client.list_artifacts(run_id)
    assert [(f.path, f.is_dir) for f in top] == [
        ("bundle", True),
        ("models", True),
        ("report.txt", False),
    ]
    nested = client.list_artifacts(run_id, "bundle/data/nested")
    assert [(f.path, f.file_size) for f in nested] == [
        ("bundle/data/nested/empty.txt", 0),
        ("bundle/data/nested/weights.bin", len(files["data/nested/weights.bin"])),
    ]

    everything = Path(
        mlflow.artifacts.download_artifacts(run_id=run_id, dst_path=str(tmp_path / "all"))
    )
    assert tree(everything) == {
        "report.txt": report.read_bytes(),
        "models/v1/model.bin": model.read_bytes(),
        **{f"bundle/{name}": content for name, content in files.items()},
    }
    single = mlflow.artifacts.download_artifacts(
        artifact_uri=f"runs:/{run_id}/models/v1/model.bin", dst_path=str(tmp_path / "one")
    )
    assert Path(single).read_bytes() == model.read_bytes()

    # Stored under the configured root, at the path the run's artifact URI names.
    stored = Path(tracking_server.settings.artifact_root) / experiment_id / run_id / "artifacts"
    assert tree(stored) == tree(everything)


def test_the_run_artifact_listing_endpoint_names_files_relative_to_the_run(
    tracking_server: RunningServer, tmp_path: Path
) -> None:
    client = MlflowClient(tracking_server.url)
    run = client.create_run("0")
    source = tmp_path / "metrics.json"
    source.write_text('{"auc": 0.9}')
    client.log_artifact(run.info.run_id, str(source), artifact_path="eval")

    listing = httpx.get(
        f"{tracking_server.url}/api/2.0/mlflow/artifacts/list",
        params={"run_id": run.info.run_id, "path": "eval"},
        headers=auth_headers(),
    )
    assert listing.status_code == 200
    assert listing.json() == {
        "root_uri": run.info.artifact_uri,
        "files": [{"path": "eval/metrics.json", "is_dir": False, "file_size": 12}],
    }
    unknown = httpx.get(
        f"{tracking_server.url}/api/2.0/mlflow/artifacts/list",
        params={"run_id": "f" * 32},
        headers=auth_headers(),
    )
    assert (unknown.status_code, unknown.json()["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST")


def test_a_missing_artifact_is_a_404_and_the_client_raises(tracking_server: RunningServer) -> None:
    client = MlflowClient(tracking_server.url)
    run = client.create_run("0")
    response = httpx.get(
        f"{tracking_server.url}{ARTIFACTS}/0/{run.info.run_id}/artifacts/nope.txt",
        headers=auth_headers(),
    )
    assert response.status_code == 404
    assert response.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(MlflowException):
        mlflow.artifacts.download_artifacts(
            artifact_uri=f"runs:/{run.info.run_id}/nope.txt", tracking_uri=tracking_server.url
        )


def test_a_deleted_artifact_is_gone_and_deleting_it_again_succeeds(
    tracking_server: RunningServer, tmp_path: Path
) -> None:
    client = MlflowClient(tracking_server.url)
    run = client.create_run("0")
    source = tmp_path / "old.txt"
    source.write_text("stale")
    client.log_artifact(run.info.run_id, str(source), artifact_path="tmp")
    url = f"{tracking_server.url}{ARTIFACTS}/0/{run.info.run_id}/artifacts/tmp"
    for _ in range(2):
        response = httpx.delete(url, headers=auth_headers())
        assert (response.status_code, response.json()) == (200, {})
    assert client.list_artifacts(run.info.run_id) == []


def test_traversal_attempts_are_refused_and_write_nothing_outside_the_root(
    tracking_server: RunningServer, tmp_path: Path
) -> None:
    name = unique("escape")
    outside = tmp_path / "outside"
    outside.mkdir()
    # Literal "../" must reach the server unnormalized: httpx would resolve it,
    # so those requests set the raw request target.
    targets = [
        f"{ARTIFACTS}/../../../{name}",
        f"{ARTIFACTS}/0/../../../../outside/{name}",
        f"{ARTIFACTS}/%2e%2e/%2e%2e/%2E%2E/{name}",
        f"{ARTIFACTS}/0/%252e%252e/%252e%252e/{name}",
        f"{ARTIFACTS}/..%2f..%2f..%2f{name}",
        f"{ARTIFACTS}//{outside.as_posix().lstrip('/')}/{name}",
        f"{ARTIFACTS}/%2F{outside.as_posix().lstrip('/')}/{name}",
        f"{ARTIFACTS}/..%5c..%5c{name}",
    ]
    with httpx.Client(headers=auth_headers(), base_url=tracking_server.url) as http:
        for target in targets:
            for method in ("PUT", "GET", "DELETE"):
                response = http.request(
                    method, target, content=b"owned", extensions={"target": target.encode()}
                )
                assert response.status_code == 400, (method, target, response.text)
                assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
        for path in ("../..", "/etc", "%2e%2e/%2e%2e", f"0/../../{name}"):
            listing = http.get(ARTIFACTS, params={"path": path})
            assert listing.status_code == 400, path
            run_listing = http.get(
                "/api/2.0/mlflow/artifacts/list", params={"run_id": "0" * 32, "path": path}
            )
            assert run_listing.status_code == 400, path

    assert list(tmp_path.rglob(f"*{name}*")) == []
    assert not Path("/", name).exists()


# -- the repository on a local disk ------------------------------------------------


async def chunks_of(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def broken_stream() -> AsyncIterator[bytes]:
    yield b"half of the "
    raise ConnectionResetError("client went away")


async def test_a_local_upload_appears_whole_or_not_at_all(tmp_path: Path) -> None:
    repository = ArtifactRepository(str(tmp_path / "root"), chunk_size=8)
    await repository.write("run/model.bin", chunks_of(b"version one, complete"))

    with pytest.raises(ConnectionResetError):
        await repository.write("run/model.bin", broken_stream())
    with pytest.raises(ConnectionResetError):
        await repository.write("run/new.bin", broken_stream())

    # The earlier version is intact, no partial file or upload leftovers remain.
    assert os.listdir(tmp_path / "root" / "run") == ["model.bin"]
    assert (tmp_path / "root" / "run" / "model.bin").read_bytes() == b"version one, complete"
    assert [info.path for info in await repository.list_dir("run")] == ["model.bin"]


async def test_upload_leftovers_are_hidden_from_listings(tmp_path: Path) -> None:
    repository = ArtifactRepository(str(tmp_path))
    await repository.write("run/a.txt", chunks_of(b"a"))
    (tmp_path / "run" / f".b.txt.{uuid.uuid4().hex}.upload").write_bytes(b"in flight")
    assert [info.path for info in await repository.list_dir("run")] == ["a.txt"]


async def test_a_symlink_inside_the_root_does_not_lead_outside_it(tmp_path: Path) -> None:
    root = tmp_path / "root"
    outside = tmp_path / "outside"
    (root / "run").mkdir(parents=True)
    outside.mkdir()
    (outside / "secret.txt").write_text("top secret")
    (root / "run" / "link").symlink_to(outside, target_is_directory=True)
    repository = ArtifactRepository(str(root))

    with pytest.raises(InvalidInput, match="outside"):
        await repository.read("run/link/secret.txt")
    with pytest.raises(InvalidInput, match="outside"):
        await repository.write("run/link/planted.txt", chunks_of(b"x"))
    with pytest.raises(InvalidInput, match="outside"):
        await repository.list_dir("run/link")
    with pytest.raises(InvalidInput, match="outside"):
        await repository.delete("run/link/secret.txt")
    assert sorted(os.listdir(outside)) == ["secret.txt"]
