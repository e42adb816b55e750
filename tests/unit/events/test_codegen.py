"""Code generation: the checked-in code is current, and the generator is deterministic."""

from __future__ import annotations

import importlib
import shutil
from pathlib import Path

import pytest

from driftloop_events.codegen import (
    DEFAULT_OUT_DIR,
    DEFAULT_PROTO_DIR,
    check,
    generate,
    generate_into,
    main,
)

pytestmark = pytest.mark.unit


def test_generated_code_is_up_to_date_with_the_protos() -> None:
    drift = check(DEFAULT_OUT_DIR, DEFAULT_PROTO_DIR)

    assert drift.clean, (
        f"run `python -m driftloop_events.codegen`; generated code is stale:\n{drift.describe()}"
    )


def test_generation_gives_the_same_bytes_twice(tmp_path: Path) -> None:
    first = generate_into(tmp_path / "a")
    second = generate_into(tmp_path / "b")

    assert [p.relative_to(tmp_path / "a") for p in first] == [
        p.relative_to(tmp_path / "b") for p in second
    ]
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in second]


def test_every_proto_gives_an_importable_module_and_a_stub(tmp_path: Path) -> None:
    names = {p.relative_to(tmp_path).as_posix() for p in generate_into(tmp_path)}

    assert "driftloop/common/v1/common_pb2.py" in names
    for domain in ("tracking", "registry", "features", "trainer", "serving", "monitor"):
        assert f"driftloop/{domain}/v1/events_pb2.py" in names
        assert f"driftloop/{domain}/v1/events_pb2.pyi" in names
        module = importlib.import_module(f"driftloop.{domain}.v1.events_pb2")
        assert module.DESCRIPTOR.package == f"driftloop.{domain}.v1"


def _copy_of_generated(tmp_path: Path) -> Path:
    out = tmp_path / "out"
    shutil.copytree(DEFAULT_OUT_DIR / "driftloop", out / "driftloop")
    return out


def test_check_lists_stale_missing_and_extra_files(tmp_path: Path) -> None:
    out = _copy_of_generated(tmp_path)
    (out / "driftloop/registry/v1/events_pb2.py").write_text("# edited by hand\n")
    (out / "driftloop/serving/v1/events_pb2.pyi").unlink()
    (out / "driftloop/old/v1").mkdir(parents=True)
    (out / "driftloop/old/v1/gone_pb2.py").write_text("")

    drift = check(out)

    assert drift.stale == ("driftloop/registry/v1/events_pb2.py",)
    assert drift.missing == ("driftloop/serving/v1/events_pb2.pyi",)
    assert drift.extra == ("driftloop/old/v1/gone_pb2.py",)
    assert not drift.clean


def test_generate_repairs_what_check_reported(tmp_path: Path) -> None:
    out = _copy_of_generated(tmp_path)
    (out / "driftloop/registry/v1/events_pb2.py").write_text("# edited by hand\n")
    (out / "driftloop/old/v1").mkdir(parents=True)
    (out / "driftloop/old/v1/gone_pb2.py").write_text("")
    untouched = out / "driftloop/common/v1/common_pb2.py"
    mtime = untouched.stat().st_mtime_ns

    generate(out)

    assert check(out).clean
    assert untouched.stat().st_mtime_ns == mtime


def test_cli_check_exits_1_and_names_the_stale_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = _copy_of_generated(tmp_path)
    (out / "driftloop/monitor/v1/events_pb2.py").write_text("")

    assert main(["--check", "--out", str(out)]) == 1
    assert "stale: driftloop/monitor/v1/events_pb2.py" in capsys.readouterr().err
    assert main(["--out", str(out)]) == 0
    assert main(["--check", "--out", str(out)]) == 0
