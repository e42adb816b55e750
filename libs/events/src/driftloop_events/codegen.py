"""Generate the Python code of the event contract from ``proto/``.

Usage::

    python -m driftloop_events.codegen            # write libs/events/src/driftloop/...
    python -m driftloop_events.codegen --check    # exit 1 when the generated code is stale

The compiler is ``grpc_tools.protoc`` (a dev dependency, imported lazily), so the output
depends only on the pinned grpcio-tools version and the ``.proto`` files: the same input
gives the same bytes. Files are written only when their content changes.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from google.protobuf import descriptor_pb2

# libs/events/src/driftloop_events/codegen.py -> the repository root is four levels up.
_REPO_ROOT = Path(__file__).resolve().parents[4]
DEFAULT_PROTO_DIR = _REPO_ROOT / "proto"
DEFAULT_OUT_DIR = _REPO_ROOT / "libs" / "events" / "src"
# Only this namespace is generated; anything else under the output dir is not ours.
_NAMESPACE = "driftloop"
_GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi")


class CodegenError(RuntimeError):
    """protoc rejected the ``.proto`` files (the message carries its diagnostics)."""


@dataclass(frozen=True)
class Drift:
    """Differences between the generated code on disk and what the protos produce.

    Paths are relative to the output directory, e.g. ``driftloop/registry/v1/events_pb2.py``.
    """

    stale: tuple[str, ...]
    missing: tuple[str, ...]
    extra: tuple[str, ...]

    @property
    def clean(self) -> bool:
        """True when the generated code is up to date."""
        return not (self.stale or self.missing or self.extra)

    def describe(self) -> str:
        """Return one line per problem, e.g. ``stale: driftloop/common/v1/common_pb2.py``."""
        lines = [f"stale: {path}" for path in self.stale]
        lines += [f"missing: {path}" for path in self.missing]
        lines += [f"extra: {path}" for path in self.extra]
        return "\n".join(lines)


def proto_files(proto_dir: Path = DEFAULT_PROTO_DIR) -> list[str]:
    """Return the ``.proto`` files under ``proto_dir/driftloop``, relative and sorted."""
    root = proto_dir / _NAMESPACE
    return sorted(path.relative_to(proto_dir).as_posix() for path in root.rglob("*.proto"))


def _run_protoc(proto_dir: Path, args: Sequence[str]) -> None:
    try:
        from grpc_tools import protoc  # type: ignore[import-untyped]
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise CodegenError(
            "grpcio-tools is not installed; run `uv sync --all-packages` (it is a dev dependency)"
        ) from exc
    files = proto_files(proto_dir)
    if not files:
        raise CodegenError(f"no .proto files under {proto_dir / _NAMESPACE}")
    # The bundled include dir provides google/protobuf/*.proto (timestamp, struct, ...).
    well_known = resources.files("grpc_tools") / "_proto"
    argv = ["grpc_tools.protoc", f"-I{proto_dir}", f"-I{well_known}", *args, *files]
    # protoc resolves the relative file names against the -I paths, not the cwd.
    code = protoc.main(argv)
    if code != 0:
        raise CodegenError(f"protoc failed with exit code {code}: {' '.join(argv)}")


def generate_into(out_dir: Path, proto_dir: Path = DEFAULT_PROTO_DIR) -> list[Path]:
    """Compile every ``.proto`` into ``out_dir`` (``*_pb2.py`` and ``*_pb2.pyi``).

    Args:
        out_dir: Directory that receives ``driftloop/<domain>/v1/<file>_pb2.py(i)``.
        proto_dir: Root of the ``.proto`` tree (the ``-I`` path).

    Returns:
        The generated files, sorted.

    Raises:
        CodegenError: protoc failed.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    _run_protoc(proto_dir, [f"--python_out={out_dir}", f"--pyi_out={out_dir}"])
    return _generated_files(out_dir)


def descriptor_set(
    proto_dir: Path = DEFAULT_PROTO_DIR, *, include_source_info: bool = True
) -> descriptor_pb2.FileDescriptorSet:
    """Compile the protos into a descriptor set, with comments when ``include_source_info``.

    Used to check the contract itself (e.g. that every field carries a comment).
    """
    with tempfile.TemporaryDirectory(prefix="driftloop-descriptors-") as tmp:
        target = Path(tmp) / "set.pb"
        args = [f"--descriptor_set_out={target}"]
        if include_source_info:
            args.append("--include_source_info")
        _run_protoc(proto_dir, args)
        fds = descriptor_pb2.FileDescriptorSet()
        fds.ParseFromString(target.read_bytes())
        return fds


def _generated_files(out_dir: Path) -> list[Path]:
    root = out_dir / _NAMESPACE
    if not root.is_dir():
        return []
    return sorted(
        path
        for path in root.rglob("*")
        if path.is_file() and path.name.endswith(_GENERATED_SUFFIXES)
    )


def _expected(proto_dir: Path) -> dict[str, bytes]:
    with tempfile.TemporaryDirectory(prefix="driftloop-codegen-") as tmp:
        root = Path(tmp)
        return {
            path.relative_to(root).as_posix(): path.read_bytes()
            for path in generate_into(root, proto_dir)
        }


def _diff(out_dir: Path, expected: dict[str, bytes]) -> Drift:
    actual = {path.relative_to(out_dir).as_posix(): path for path in _generated_files(out_dir)}
    return Drift(
        stale=tuple(
            sorted(
                name
                for name, path in actual.items()
                if name in expected and path.read_bytes() != expected[name]
            )
        ),
        missing=tuple(sorted(set(expected) - set(actual))),
        extra=tuple(sorted(set(actual) - set(expected))),
    )


def check(out_dir: Path = DEFAULT_OUT_DIR, proto_dir: Path = DEFAULT_PROTO_DIR) -> Drift:
    """Compare the generated code in ``out_dir`` with a fresh build, changing nothing.

    Raises:
        CodegenError: protoc failed.
    """
    return _diff(out_dir, _expected(proto_dir))


def generate(out_dir: Path = DEFAULT_OUT_DIR, proto_dir: Path = DEFAULT_PROTO_DIR) -> Drift:
    """Bring the generated code in ``out_dir`` up to date.

    Writes changed and missing files, and deletes generated files whose ``.proto`` is
    gone. Unchanged files are left alone so their timestamps do not move.

    Returns:
        What was out of date before the run (``Drift.clean`` when nothing changed).

    Raises:
        CodegenError: protoc failed.
    """
    expected = _expected(proto_dir)
    drift = _diff(out_dir, expected)
    for name in (*drift.stale, *drift.missing):
        target = out_dir / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(expected[name])
    for name in drift.extra:
        (out_dir / name).unlink()
    return drift


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the process exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m driftloop_events.codegen",
        description="Generate Python code for the driftloop event contract from proto/.",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="change nothing; exit 1 and list stale, missing and extra files if out of date",
    )
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT_DIR, help="output root (default: %(default)s)"
    )
    parser.add_argument(
        "--proto", type=Path, default=DEFAULT_PROTO_DIR, help="proto root (default: %(default)s)"
    )
    args = parser.parse_args(argv)
    out_dir: Path = args.out.resolve()
    proto_dir: Path = args.proto.resolve()
    try:
        if args.check:
            drift = check(out_dir, proto_dir)
            if drift.clean:
                print(f"generated code in {out_dir} is up to date")
                return 0
            print(f"generated code in {out_dir} is out of date:", file=sys.stderr)
            print(drift.describe(), file=sys.stderr)
            print("run: python -m driftloop_events.codegen", file=sys.stderr)
            return 1
        drift = generate(out_dir, proto_dir)
    except CodegenError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"updated {out_dir}:\n{drift.describe()}" if not drift.clean else "nothing to do")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
