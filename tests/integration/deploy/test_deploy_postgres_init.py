"""deploy/postgres/init-databases.sh run for real against this machine's PostgreSQL:
a database and a login role per service, each role with its own password, each
database closed to the others."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from tests.conftest import require_or_skip

pytestmark = pytest.mark.integration

SCRIPT = Path(__file__).resolve().parents[3] / "deploy" / "postgres" / "init-databases.sh"


def scram_matches(stored: str, password: str) -> bool:
    """Whether PostgreSQL's SCRAM-SHA-256 verifier ``stored`` is of ``password`` (RFC 5802)."""
    method, _, rest = stored.partition("$")
    assert method == "SCRAM-SHA-256", stored
    iterations_salt, _, keys = rest.partition("$")
    iterations, _, salt = iterations_salt.partition(":")
    stored_key = keys.partition(":")[0]
    salted = hashlib.pbkdf2_hmac(
        "sha256", password.encode(), base64.b64decode(salt), int(iterations)
    )
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    return base64.b64encode(hashlib.sha256(client_key).digest()).decode() == stored_key


@pytest.fixture
def admin() -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    require_or_skip("psql", shutil.which("psql") is not None, "the psql client is not installed")
    try:
        connection = psycopg.connect(
            "postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True, connect_timeout=3
        )
    except psycopg.OperationalError as error:
        require_or_skip("PostgreSQL", reachable=False, reason=str(error))
        raise AssertionError("unreachable") from error
    with connection:
        yield connection


@pytest.fixture
def names(admin: psycopg.Connection[tuple[object, ...]]) -> Iterator[dict[str, str]]:
    tag = uuid.uuid4().hex[:8]
    found = {"a": f"dl_init_{tag}_a", "b": f"dl_init_{tag}_b", "b2": f"dl_init_{tag}_b2"}
    yield found
    for database in found.values():
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database))
        )
    for role in (found["a"], found["b"]):
        admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


def run_script(environ: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": os.environ["PATH"],
        "PGHOST": "127.0.0.1",
        "PGPORT": "5432",
        "POSTGRES_USER": "postgres",
        "POSTGRES_PASSWORD": "the-superusers-password",
        **environ,
    }
    return subprocess.run(
        ["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_each_role_gets_its_own_password_and_its_databases_only(
    admin: psycopg.Connection[tuple[object, ...]], names: dict[str, str]
) -> None:
    a, b, b2 = names["a"], names["b"], names["b2"]
    done = run_script(
        {
            "POSTGRES_SERVICE_DATABASES": f"{a} {b} {b2}:{b}",
            f"POSTGRES_PASSWORD_{a.upper()}": "password-of-a",
            f"POSTGRES_PASSWORD_{b.upper()}": "password-of-b",
        }
    )
    assert done.returncode == 0, done.stderr

    owners = {
        str(database): str(owner)
        for database, owner in admin.execute(
            "SELECT d.datname, r.rolname FROM pg_database d JOIN pg_roles r ON r.oid = d.datdba "
            "WHERE d.datname = ANY(%s)",
            [[a, b, b2]],
        ).fetchall()
    }
    assert owners == {a: a, b: b, b2: b}
    verifiers = {
        str(role): str(verifier)
        for role, verifier in admin.execute(
            "SELECT rolname, rolpassword FROM pg_authid WHERE rolname = ANY(%s)", [[a, b]]
        ).fetchall()
    }
    assert scram_matches(str(verifiers[a]), "password-of-a")
    assert scram_matches(str(verifiers[b]), "password-of-b")
    assert not scram_matches(str(verifiers[a]), "password-of-b")
    # Closed to PUBLIC: a's role cannot connect to b's database.
    can_connect = admin.execute(
        "SELECT has_database_privilege(%s, %s, 'CONNECT')", [a, b]
    ).fetchone()
    assert can_connect == (False,)


@pytest.mark.parametrize("password", [None, "the-superusers-password"])
def test_a_role_without_its_own_password_is_refused(
    admin: psycopg.Connection[tuple[object, ...]], names: dict[str, str], password: str | None
) -> None:
    a = names["a"]
    environ = {"POSTGRES_SERVICE_DATABASES": a}
    if password is not None:
        environ[f"POSTGRES_PASSWORD_{a.upper()}"] = password
    done = run_script(environ)
    assert done.returncode != 0
    assert f"POSTGRES_PASSWORD_{a.upper()}" in done.stderr
    exists = admin.execute("SELECT count(*) FROM pg_roles WHERE rolname = %s", [a]).fetchone()
    assert exists == (0,)
