"""Artifact repository and proxy routes on an in-memory fsspec root (no disk, no server)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI
from fsspec.implementations.memory import MemoryFileSystem  # type: ignore[import-untyped]
from httpx import AsyncClient

from driftloop_kit.artifacts import (
    ArtifactRepository,
    FileInfo,
    clean_path,
    proxied_path,
)
from driftloop_kit.errors import InvalidInput, NotFound, install_error_handlers
from driftloop_kit.testing import app_client, authenticator
from driftloop_tracking.entrypoints.routers.artifacts import router
from driftloop_tracking.service_layer.artifacts import ArtifactListing
from tests.fakes.tracking import RUN_ID, FakeRunLookup

pytestmark = pytest.mark.unit

ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"


async def chunks_of(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def read_all(repository: ArtifactRepository, path: str) -> bytes:
    reader = await repository.read(path)
    return b"".join([chunk async for chunk in reader.chunks()])


@pytest.fixture
def root() -> str:
    """A fresh prefix in fsspec's (process-wide) memory file system."""
    return f"memory://artifacts-{uuid.uuid4().hex}"


@pytest.fixture
def repository(root: str) -> ArtifactRepository:
    return ArtifactRepository(root, chunk_size=1024)


@pytest.fixture
async def client(repository: ArtifactRepository) -> AsyncIterator[AsyncClient]:
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(router)
    app.state.artifacts = repository
    app.state.authenticator = authenticator()
    app.state.artifact_listing = ArtifactListing(runs=FakeRunLookup(), files=repository)
    async with app_client(app, lifespan=False) as http:
        yield http


# -- paths --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "../secret",
        "a/../../secret",
        "a/..",
        "%2e%2e/secret",
        "a/%2E%2E/secret",
        "%252e%252e/secret",
        "/etc/passwd",
        "%2Fetc/passwd",
        "C:/Windows/system.ini",
        "C:secret",
        "..\\secret",
        "a\\b",
        "a/b\x00.txt",
        "a/b\n.txt",
    ],
)
def test_a_path_that_could_leave_the_root_is_refused(path: str) -> None:
    with pytest.raises(InvalidInput, match="Invalid path"):
        clean_path(path)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("", ""),
        ("model.pkl", "model.pkl"),
        ("1/abc/artifacts/data/train.csv", "1/abc/artifacts/data/train.csv"),
        ("a//./b/", "a/b"),
        ("dots..in..name/..hidden", "dots..in..name/..hidden"),
        ("100%25 done.txt", "100%25 done.txt"),
    ],
)
def test_a_safe_path_is_normalized_and_kept_literally(path: str, expected: str) -> None:
    assert clean_path(path) == expected


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("mlflow-artifacts:/1/abc/artifacts", "1/abc/artifacts"),
        ("mlflow-artifacts://tracking:5000/1/abc/artifacts", "1/abc/artifacts"),
        (
            "http://tracking:5000/api/2.0/mlflow-artifacts/artifacts/1/abc/artifacts",
            "1/abc/artifacts",
        ),
        ("s3://bucket/1/abc/artifacts", None),
        ("http://elsewhere/files/1/abc", None),
    ],
)
def test_only_proxied_artifact_uris_map_to_a_path_under_the_root(
    uri: str, expected: str | None
) -> None:
    assert proxied_path(uri) == expected


def test_locations_stay_under_the_root_of_an_fsspec_url(root: str) -> None:
    repository = ArtifactRepository(root)
    prefix = root.removeprefix("memory:/")
    assert isinstance(repository.fs, MemoryFileSystem)
    assert repository.location("1/r/artifacts/m.pkl") == f"{prefix}/1/r/artifacts/m.pkl"
    assert repository.location("") == prefix
    assert not repository.is_local


# -- repository on memory:// --------------------------------------------------------


async def test_a_file_written_in_chunks_reads_back_identical(root: str) -> None:
    repository = ArtifactRepository(root, chunk_size=4)
    written = await repository.write(
        "1/r/artifacts/blob.bin", chunks_of(b"ab", b"cdefg", b"\x00\xff")
    )
    assert written == 9
    reader = await repository.read("1/r/artifacts/blob.bin")
    assert reader.size == 9
    assert [chunk async for chunk in reader.chunks()] == [b"abcd", b"efg\x00", b"\xff"]


async def test_writing_again_replaces_the_file(repository: ArtifactRepository) -> None:
    await repository.write("notes.txt", chunks_of(b"first version"))
    await repository.write("notes.txt", chunks_of(b"second"))
    assert await read_all(repository, "notes.txt") == b"second"


async def test_a_listing_names_entries_relative_to_the_directory_with_file_sizes(
    repository: ArtifactRepository,
) -> None:
    await repository.write("run/model/model.pkl", chunks_of(b"12345"))
    await repository.write("run/model/MLmodel", chunks_of(b"flavors: {}"))
    await repository.write("run/metrics.json", chunks_of(b"{}"))
    assert await repository.list_dir("run") == [
        FileInfo(path="metrics.json", is_dir=False, file_size=2),
        FileInfo(path="model", is_dir=True, file_size=None),
    ]
    assert await repository.list_dir("run/model") == [
        FileInfo(path="MLmodel", is_dir=False, file_size=11),
        FileInfo(path="model.pkl", is_dir=False, file_size=5),
    ]


async def test_listing_a_missing_path_or_a_file_is_empty(repository: ArtifactRepository) -> None:
    await repository.write("run/a.txt", chunks_of(b"a"))
    assert await repository.list_dir("nothing/here") == []
    assert await repository.list_dir("run/a.txt") == []


async def test_reading_a_missing_file_is_not_found(repository: ArtifactRepository) -> None:
    with pytest.raises(NotFound):
        await repository.read("run/missing.txt")


async def test_reading_a_directory_is_invalid(repository: ArtifactRepository) -> None:
    await repository.write("run/sub/a.txt", chunks_of(b"a"))
    with pytest.raises(InvalidInput, match="directory"):
        await repository.read("run/sub")


async def test_writing_over_a_directory_or_below_a_file_is_invalid(
    repository: ArtifactRepository,
) -> None:
    await repository.write("run/sub/a.txt", chunks_of(b"a"))
    with pytest.raises(InvalidInput, match="is a directory"):
        await repository.write("run/sub", chunks_of(b"b"))
    with pytest.raises(InvalidInput, match="parent"):
        await repository.write("run/sub/a.txt/b.txt", chunks_of(b"b"))
    assert await read_all(repository, "run/sub/a.txt") == b"a"


async def test_a_failed_upload_of_a_new_file_leaves_nothing(
    repository: ArtifactRepository,
) -> None:
    async def broken() -> AsyncIterator[bytes]:
        yield b"partial content"
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        await repository.write("run/new.bin", broken())
    assert await repository.list_dir("run") == []


async def test_deleting_a_directory_removes_everything_below_it(
    repository: ArtifactRepository,
) -> None:
    await repository.write("run/model/a.bin", chunks_of(b"a"))
    await repository.write("run/model/deep/b.bin", chunks_of(b"b"))
    await repository.write("run/keep.txt", chunks_of(b"k"))
    assert await repository.delete("run/model") is True
    assert await repository.list_dir("run") == [FileInfo("keep.txt", False, 1)]
    assert await repository.delete("run/model") is False


async def test_the_root_itself_cannot_be_written_read_or_deleted(
    repository: ArtifactRepository,
) -> None:
    await repository.write("run/a.txt", chunks_of(b"a"))
    for path in ("", "/", "./"):
        with pytest.raises(InvalidInput):
            await repository.delete(path)
        with pytest.raises(InvalidInput):
            await repository.read(path)
        with pytest.raises(InvalidInput):
            await repository.write(path, chunks_of(b"x"))
    assert await repository.list_dir("") == [FileInfo("run", True)]


# -- routes -------------------------------------------------------------------------


async def test_upload_download_and_list_round_trip_through_the_routes(
    client: AsyncClient, repository: ArtifactRepository
) -> None:
    payload = bytes(range(256)) * 40
    response = await client.put(f"{ARTIFACTS}/1/{RUN_ID}/artifacts/data/blob.bin", content=payload)
    assert (response.status_code, response.json()) == (200, {})
    assert await read_all(repository, f"1/{RUN_ID}/artifacts/data/blob.bin") == payload

    download = await client.get(f"{ARTIFACTS}/1/{RUN_ID}/artifacts/data/blob.bin")
    assert download.status_code == 200
    assert download.content == payload
    assert download.headers["content-length"] == str(len(payload))
    assert download.headers["content-disposition"] == 'attachment; filename="blob.bin"'

    listing = await client.get(ARTIFACTS, params={"path": f"1/{RUN_ID}/artifacts/data"})
    assert listing.json() == {
        "files": [{"path": "blob.bin", "is_dir": False, "file_size": len(payload)}]
    }
    parent = await client.get(ARTIFACTS, params={"path": f"1/{RUN_ID}/artifacts"})
    assert parent.json() == {"files": [{"path": "data", "is_dir": True}]}


async def test_downloading_a_missing_artifact_is_a_404_in_mlflow_form(client: AsyncClient) -> None:
    response = await client.get(f"{ARTIFACTS}/1/{RUN_ID}/artifacts/missing.txt")
    assert response.status_code == 404
    assert response.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"


@pytest.mark.parametrize(
    "path",
    ["%2e%2e/escape.txt", "1/%2E%2E/%2e%2e/escape.txt", "%252e%252e/escape.txt", "%2Fescape.txt"],
)
async def test_encoded_traversal_is_refused_by_every_route_and_writes_nothing(
    client: AsyncClient, repository: ArtifactRepository, path: str
) -> None:
    for method in ("PUT", "GET", "DELETE"):
        response = await client.request(method, f"{ARTIFACTS}/{path}", content=b"owned")
        assert response.status_code == 400, method
        assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    listing = await client.get(ARTIFACTS, params={"path": "../.."})
    assert listing.status_code == 400
    fs = repository.fs
    assert not [name for name in fs.find("/") if name.endswith("escape.txt")]


async def test_deleting_through_the_route_removes_the_tree_and_is_idempotent(
    client: AsyncClient, repository: ArtifactRepository
) -> None:
    await repository.write(f"1/{RUN_ID}/artifacts/a/b.txt", chunks_of(b"b"))
    for _ in range(2):
        response = await client.delete(f"{ARTIFACTS}/1/{RUN_ID}/artifacts/a")
        assert (response.status_code, response.json()) == (200, {})
    assert await repository.list_dir(f"1/{RUN_ID}/artifacts") == []


async def test_a_run_listing_names_files_relative_to_the_run_root(
    client: AsyncClient, repository: ArtifactRepository
) -> None:
    await repository.write(f"1/{RUN_ID}/artifacts/model/model.pkl", chunks_of(b"pickle"))
    await repository.write(f"1/{RUN_ID}/artifacts/readme.md", chunks_of(b"# hi"))
    root_uri = f"mlflow-artifacts:/1/{RUN_ID}/artifacts"

    top = await client.get("/api/2.0/mlflow/artifacts/list", params={"run_id": RUN_ID})
    assert top.json() == {
        "root_uri": root_uri,
        "files": [
            {"path": "model", "is_dir": True},
            {"path": "readme.md", "is_dir": False, "file_size": 4},
        ],
    }
    below = await client.get(
        "/api/2.0/mlflow/artifacts/list", params={"run_uuid": RUN_ID, "path": "model"}
    )
    assert below.json()["files"] == [{"path": "model/model.pkl", "is_dir": False, "file_size": 6}]


async def test_a_run_listing_refuses_unknown_runs_missing_ids_and_traversal(
    client: AsyncClient,
) -> None:
    url = "/api/2.0/mlflow/artifacts/list"
    unknown = await client.get(url, params={"run_id": "b" * 32})
    assert (unknown.status_code, unknown.json()["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST")
    missing = await client.get(url)
    assert (missing.status_code, missing.json()["error_code"]) == (400, "INVALID_PARAMETER_VALUE")
    escape = await client.get(url, params={"run_id": RUN_ID, "path": "../../other-run"})
    assert (escape.status_code, escape.json()["error_code"]) == (400, "INVALID_PARAMETER_VALUE")


async def test_multipart_upload_is_declined_so_the_client_falls_back(client: AsyncClient) -> None:
    response = await client.post(
        f"/api/2.0/mlflow-artifacts/mpu/create/1/{RUN_ID}/artifacts", json={"path": "big.bin"}
    )
    assert response.status_code == 501
    # The mlflow client matches this prefix to retry as a single PUT.
    assert response.json()["message"].startswith(
        "Multipart upload is not supported for the current artifact repository"
    )
