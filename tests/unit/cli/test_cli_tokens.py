"""``driftloop token create|show`` and the admin token ``driftloop up`` keeps."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from driftloop_cli.credentials import ensure_admin_token, parse_ttl, secret_key, user_token
from driftloop_cli.main import app
from driftloop_kit.auth import Authenticator, Role, TokenSigner, Unauthenticated

pytestmark = pytest.mark.unit


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A home with a generated key, and no key or token in the environment."""
    for variable in ("DRIFTLOOP_SECRET_KEY", "DRIFTLOOP_TOKEN", "MLFLOW_TRACKING_TOKEN"):
        monkeypatch.delenv(variable, raising=False)
    secret_key(tmp_path, create=True)
    return tmp_path


async def test_a_created_token_has_its_role_and_subject_and_checks_with_the_suites_key(
    home: Path,
) -> None:
    result = CliRunner().invoke(
        app,
        [
            "token",
            "create",
            "--offline",
            "--role",
            "deployer",
            "--subject",
            "ci",
            "--ttl",
            "2h",
            "--home",
            str(home),
        ],
    )
    assert result.exit_code == 0, result.output
    token = result.output.strip()

    principal = await Authenticator(TokenSigner(secret_key(home))).verify_token(token)
    assert (principal.subject, principal.role) == ("ci", Role.DEPLOYER)
    shown = CliRunner().invoke(app, ["token", "show", token, "--home", str(home)])
    assert '"role": "deployer"' in shown.output
    with pytest.raises(Unauthenticated):
        await Authenticator(TokenSigner("another suite's key" * 3)).verify_token(token)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--role", "root"], "unknown role 'root'"),
        (["--role", "reader", "--ttl", "400d"], "between 1 s and 366 days"),
        (["--role", "reader", "--ttl", "soon"], "a number with s, m, h or d"),
    ],
)
def test_a_bad_role_or_lifetime_is_a_usage_error(
    home: Path, arguments: list[str], message: str
) -> None:
    result = CliRunner().invoke(app, ["token", "create", *arguments, "--home", str(home)])
    assert result.exit_code == 2
    assert message in result.output


def test_without_a_key_a_token_cannot_be_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DRIFTLOOP_SECRET_KEY", raising=False)
    result = CliRunner().invoke(
        app, ["token", "create", "--offline", "--role", "reader", "--home", str(tmp_path / "none")]
    )
    assert result.exit_code == 1
    assert "no key" in result.output


def test_the_admin_token_is_kept_private_reused_and_remade_when_the_key_changes(
    home: Path,
) -> None:
    first, made = ensure_admin_token(home, secret_key(home))
    again, made_again = ensure_admin_token(home, secret_key(home))
    other, remade = ensure_admin_token(home, "a different key, the old token no longer checks")

    assert (made, made_again, remade) == (True, False, True)
    assert again == first != other
    assert (home / "admin.token").stat().st_mode & 0o777 == 0o600
    assert user_token(home) == other


def test_lifetimes_read_as_seconds() -> None:
    assert [parse_ttl(t) for t in ("90", "90s", "15m", "12h", "30d")] == [
        90,
        90,
        900,
        43_200,
        2_592_000,
    ]
