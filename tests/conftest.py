"""Fixtures shared by every tier: a real broker, real databases, Redis.

PostgreSQL and Redis are what production uses. Where they are not running, the
tests that need them skip with the reason, unless ``DRIFTLOOP_REQUIRE_SERVICES=1``
(set by ``.ci/run``) turns the skip into a failure.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from hypothesis import HealthCheck, settings
from psycopg import sql
from sqlalchemy.engine import make_url

from driftloop_bus.embedded import EmbeddedBroker, port_accepts
from driftloop_kit.auth import Role, TokenSigner

# Every service a test starts (in process or as a subprocess) signs and checks tokens
# with this key, and the mlflow client sends an admin token: authentication stays on
# in every test; tests/integration/test_auth_*.py check it refuses what it must.
os.environ.setdefault("DRIFTLOOP_SECRET_KEY", f"driftloop-tests-{uuid.uuid4().hex}")
os.environ["MLFLOW_TRACKING_TOKEN"] = TokenSigner(os.environ["DRIFTLOOP_SECRET_KEY"]).issue(
    subject="tests", role=Role.ADMIN, ttl_seconds=7 * 86_400
)

# Serving's V2 gRPC server listens on 8081 by default: tests start many servings at once
# (two xdist workers, subprocesses), each on a free gRPC port unless a test says otherwise.
os.environ.setdefault("DRIFTLOOP_SERVING_GRPC_PORT", "0")

# Property tests assert what is generated, not how fast: on a loaded 2-core CI machine
# Hypothesis' timing checks (deadline, too_slow) fail tests whose behaviour is right.
settings.register_profile("driftloop", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("driftloop")

#: Server used by integration tests (trust auth); override for another server.
POSTGRES_ADMIN_URL = os.environ.get(
    "DRIFTLOOP_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_HOST = os.environ.get("DRIFTLOOP_TEST_REDIS_HOST", "127.0.0.1")
REDIS_PORT = int(os.environ.get("DRIFTLOOP_TEST_REDIS_PORT", "6379"))


def services_required() -> bool:
    """Whether a missing PostgreSQL/Redis must fail the run instead of skipping."""
    return os.environ.get("DRIFTLOOP_REQUIRE_SERVICES", "") not in ("", "0", "false")


def require_or_skip(name: str, reachable: bool, reason: str) -> None:
    """Skip (or, when services are required, fail) a test that needs ``name``."""
    if reachable:
        return
    if services_required():
        pytest.fail(f"{name} is required (DRIFTLOOP_REQUIRE_SERVICES=1) but unreachable: {reason}")
    pytest.skip(f"{name} is not reachable ({reason}); set DRIFTLOOP_REQUIRE_SERVICES=1 to fail")


@pytest.fixture(scope="session")
def broker() -> Iterator[EmbeddedBroker]:
    """One real tansu broker for the whole session, on a free port."""
    with EmbeddedBroker() as running:
        yield running


@pytest.fixture
def own_broker() -> Iterator[EmbeddedBroker]:
    """A broker of the test's own, which the test may stop and start (outages)."""
    instance = EmbeddedBroker()
    instance.start()
    try:
        yield instance
    finally:
        instance.stop()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A fresh SQLite database file for one test."""
    return f"sqlite:///{tmp_path / 'test.db'}"


def _admin_connection() -> psycopg.Connection[tuple[object, ...]] | str:
    try:
        return psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        return f"{POSTGRES_ADMIN_URL}: {' '.join(str(exc).split())}"


@pytest.fixture(scope="module")
def postgres_databases() -> Iterator[Callable[[], str]]:
    """Factory of fresh, empty PostgreSQL databases; all are dropped after the module."""
    admin = _admin_connection()
    if isinstance(admin, str):
        require_or_skip("PostgreSQL", reachable=False, reason=admin)
        raise AssertionError("unreachable")  # require_or_skip skipped or failed
    created: list[str] = []

    def create() -> str:
        name = f"driftloop_test_{uuid.uuid4().hex[:12]}"
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        created.append(name)
        return make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(False)

    with admin:
        try:
            yield create
        finally:
            for name in created:
                admin.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )


@pytest.fixture(scope="module")
def postgres_url(postgres_databases: Callable[[], str]) -> str:
    """URL of a fresh, empty PostgreSQL database shared by the module's tests."""
    return postgres_databases()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each test using it runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'test.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def redis_url() -> str:
    """The Redis server production uses for the online store."""
    require_or_skip(
        "Redis",
        port_accepts(REDIS_HOST, REDIS_PORT),
        f"nothing listens on {REDIS_HOST}:{REDIS_PORT}",
    )
    return f"redis://{REDIS_HOST}:{REDIS_PORT}/0"


TIERS = ("unit", "integration", "e2e", "deploy")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test belongs to exactly one tier, so ``-m unit`` and friends select them all."""
    wrong = [
        item.nodeid
        for item in items
        if sum(1 for tier in TIERS if item.get_closest_marker(tier)) != 1
    ]
    if wrong:
        raise pytest.UsageError(
            "each test needs exactly one of the markers "
            + ", ".join(TIERS)
            + ": "
            + ", ".join(wrong[:10])
        )


@pytest.fixture(autouse=True)
def _forget_mlflow_experiment() -> Iterator[None]:
    """Each test starts without the mlflow client's active experiment of an earlier one.

    ``mlflow.set_experiment`` keeps the id in a global and in ``MLFLOW_EXPERIMENT_ID``
    (inherited by subprocesses such as training jobs); a later module talks to another
    tracking server, where that id does not exist.
    """
    yield
    fluent = sys.modules.get("mlflow.tracking.fluent")
    if fluent is not None:
        fluent._active_experiment_id = None  # type: ignore[attr-defined]
    os.environ.pop("MLFLOW_EXPERIMENT_ID", None)
