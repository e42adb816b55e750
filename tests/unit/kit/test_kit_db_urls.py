"""Database URLs: the right driver for the async engine and for Alembic."""

from __future__ import annotations

import pytest

from driftloop_kit.db import async_url, sqlite_path, sync_url

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:///data/tracking.db", "sqlite+aiosqlite:///data/tracking.db"),
        ("sqlite:///:memory:", "sqlite+aiosqlite:///:memory:"),
        ("sqlite+aiosqlite:///x.db", "sqlite+aiosqlite:///x.db"),
        (
            "postgresql://u:p%40ss@db:5432/tracking",
            "postgresql+psycopg://u:p%40ss@db:5432/tracking",
        ),
        ("postgresql+psycopg://db/tracking", "postgresql+psycopg://db/tracking"),
    ],
)
def test_async_url_picks_the_async_driver_and_keeps_the_rest(url: str, expected: str) -> None:
    assert async_url(url) == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite+aiosqlite:///data/tracking.db", "sqlite:///data/tracking.db"),
        ("sqlite:///:memory:", "sqlite:///:memory:"),
        ("postgresql://db/tracking", "postgresql+psycopg://db/tracking"),
        ("postgresql+psycopg://db/tracking", "postgresql+psycopg://db/tracking"),
    ],
)
def test_sync_url_picks_a_sync_driver(url: str, expected: str) -> None:
    assert sync_url(url) == expected


@pytest.mark.parametrize("url", ["mysql://db/x", "postgresql+asyncpg://db/x", "tracking.db"])
def test_unsupported_urls_are_refused(url: str) -> None:
    with pytest.raises(ValueError, match="unsupported database URL scheme"):
        async_url(url)
    with pytest.raises(ValueError, match="unsupported database URL scheme"):
        sync_url(url)


def test_sqlite_path_is_the_file_or_none() -> None:
    assert str(sqlite_path("sqlite:///data/t.db")) == "data/t.db"
    assert sqlite_path("sqlite:///:memory:") is None
    assert sqlite_path("postgresql://db/t") is None
