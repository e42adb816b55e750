"""The import-boundary check (``lint-imports``, run by ``make lint``) catches what it promises.

The contracts live in ``pyproject.toml`` (``[tool.importlinter]``). These tests run the
same layers contract over a copy of one service, once as it is and once with a domain
module that imports an adapter, and expect the check to pass and then to fail.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[1].parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
SERVICE = "registry"


def _layers() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (contract,) = [c for c in config["contracts"] if c["id"] == "layers"]
    assert f"driftloop_{SERVICE}" in contract["containers"]
    layers: list[str] = contract["layers"]
    return layers


def _copy_service(tmp_path: Path) -> Path:
    package = f"driftloop_{SERVICE}"
    source = ROOT / "services" / SERVICE / "src" / package
    target = tmp_path / "src" / package
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    layers = ", ".join(f'"{layer}"' for layer in _layers())
    (tmp_path / "contracts.toml").write_text(
        f'[tool.importlinter]\nroot_package = "{package}"\n\n'
        "[[tool.importlinter.contracts]]\n"
        'name = "layers"\ntype = "layers"\n'
        f'containers = ["{package}"]\nlayers = [{layers}]\n'
    )
    return target


def _lint(tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", "contracts.toml", "--no-cache"],
        cwd=tmp_path,
        env={"PYTHONPATH": str(tmp_path / "src"), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_layers_contract_holds_for_a_service_as_it_is(tmp_path: Path) -> None:
    _copy_service(tmp_path)
    result = _lint(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 kept, 0 broken" in result.stdout


def test_a_domain_module_that_imports_an_adapter_breaks_the_check(tmp_path: Path) -> None:
    package = _copy_service(tmp_path)
    adapter = sorted(p.stem for p in (package / "adapters").glob("*.py") if p.stem != "__init__")[0]
    domain = sorted(p for p in (package / "domain").glob("*.py") if p.stem != "__init__")[0]
    domain.write_text(
        domain.read_text() + f"\nfrom {package.name}.adapters import {adapter}  # noqa\n"
    )
    result = _lint(tmp_path)
    assert result.returncode != 0
    assert "0 kept, 1 broken" in result.stdout
    assert f"{package.name}.domain.{domain.stem} -> {package.name}.adapters.{adapter}" in (
        result.stdout
    )
