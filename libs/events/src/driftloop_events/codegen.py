"""Generate the Python code of the event contract (and of serving's gRPC protocol) from ``proto/``.

Usage::

    python -m driftloop_events.codegen            # write every target's generated code
    python -m driftloop_events.codegen --check    # exit 1 when the generated code is stale

Two targets (:data:`TARGETS`), one folder of ``proto/`` each:

- ``proto/driftloop/``: the event contract, into ``libs/events/src/driftloop/``.
- ``proto/driftloop_serving/``: KServe's V2 inference protocol over gRPC, as KServe
  publishes it, into ``services/serving/src/driftloop_serving/`` (messages and the
  service's stubs). Its messages are registered in a descriptor pool of their own, not
  protobuf's default one: the same ``inference.*`` messages are in the default pool of
  any process that imports ``tritonclient.grpc`` (Triton's own copy of the protocol),
  and protobuf refuses a second file defining them. The wire format does not carry
  the pool, so clients and server still understand each other.

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
_GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")


@dataclass(frozen=True)
class Target:
    """One folder of ``proto/`` and where its Python code goes.

    Attributes:
        namespace: The folder under ``proto/``, also the Python package generated.
        out_dir: The directory that receives ``<namespace>/...``.
        grpc: Generate the services' stubs too (``*_pb2_grpc.py``).
        own_pool: Register the messages in a descriptor pool of their own.
    """

    namespace: str
    out_dir: Path
    grpc: bool = False
    own_pool: bool = False


#: The event contract.
EVENTS = Target(_NAMESPACE, DEFAULT_OUT_DIR)
#: KServe's V2 inference protocol over gRPC, served by the serving service.
SERVING_GRPC = Target(
    "driftloop_serving",
    _REPO_ROOT / "services" / "serving" / "src",
    grpc=True,
    own_pool=True,
)
TARGETS = (EVENTS, SERVING_GRPC)

# What protoc writes in a ``_pb2.py``, and what an ``own_pool`` target has instead.
_DEFAULT_POOL = "DESCRIPTOR = _descriptor_pool.Default().AddSerializedFile("
_OWN_POOL = (
    "# driftloop_events.codegen: a descriptor pool of this module's own (see its docstring).\n"
    "DESCRIPTOR = _descriptor_pool.DescriptorPool().AddSerializedFile("
)


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


def proto_files(proto_dir: Path = DEFAULT_PROTO_DIR, namespace: str = _NAMESPACE) -> list[str]:
    """Return the ``.proto`` files under ``proto_dir/<namespace>``, relative and sorted."""
    root = proto_dir / namespace
    return sorted(path.relative_to(proto_dir).as_posix() for path in root.rglob("*.proto"))


def _run_protoc(proto_dir: Path, args: Sequence[str], namespace: str = _NAMESPACE) -> None:
    try:
        from grpc_tools import protoc  # type: ignore[import-untyped]
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise CodegenError(
            "grpcio-tools is not installed; run `uv sync --all-packages` (it is a dev dependency)"
        ) from exc
    files = proto_files(proto_dir, namespace)
    if not files:
        raise CodegenError(f"no .proto files under {proto_dir / namespace}")
    # The bundled include dir provides google/protobuf/*.proto (timestamp, struct, ...).
    well_known = resources.files("grpc_tools") / "_proto"
    argv = ["grpc_tools.protoc", f"-I{proto_dir}", f"-I{well_known}", *args, *files]
    # protoc resolves the relative file names against the -I paths, not the cwd.
    code = protoc.main(argv)
    if code != 0:
        raise CodegenError(f"protoc failed with exit code {code}: {' '.join(argv)}")


def generate_into(
    out_dir: Path, proto_dir: Path = DEFAULT_PROTO_DIR, target: Target = EVENTS
) -> list[Path]:
    """Compile a target's ``.proto`` files into ``out_dir`` (``*_pb2.py`` and ``*_pb2.pyi``,
    and ``*_pb2_grpc.py`` for a target with services).

    Args:
        out_dir: Directory that receives ``driftloop/<domain>/v1/<file>_pb2.py(i)``.
        proto_dir: Root of the ``.proto`` tree (the ``-I`` path).
        target: Which folder of ``proto_dir`` (default: the event contract).

    Returns:
        The generated files, sorted.

    Raises:
        CodegenError: protoc failed, or its output has changed shape.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    args = [f"--python_out={out_dir}", f"--pyi_out={out_dir}"]
    if target.grpc:
        args.append(f"--grpc_python_out={out_dir}")
    _run_protoc(proto_dir, args, target.namespace)
    generated = _generated_files(out_dir, target.namespace)
    if target.own_pool:
        for path in generated:
            if path.name.endswith("_pb2.py"):
                _use_own_pool(path)
    return generated


def _use_own_pool(path: Path) -> None:
    text = path.read_text()
    if text.count(_DEFAULT_POOL) != 1:
        raise CodegenError(
            f"{path.name}: protoc's output no longer registers its file with "
            f"{_DEFAULT_POOL!r} once; update driftloop_events.codegen"
        )
    path.write_text(text.replace(_DEFAULT_POOL, _OWN_POOL))


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


def _generated_files(out_dir: Path, namespace: str = _NAMESPACE) -> list[Path]:
    root = out_dir / namespace
    if not root.is_dir():
        return []
    return sorted(
        path
        for path in root.rglob("*")
        if path.is_file() and path.name.endswith(_GENERATED_SUFFIXES)
    )


def _expected(proto_dir: Path, target: Target) -> dict[str, bytes]:
    with tempfile.TemporaryDirectory(prefix="driftloop-codegen-") as tmp:
        root = Path(tmp)
        return {
            path.relative_to(root).as_posix(): path.read_bytes()
            for path in generate_into(root, proto_dir, target)
        }


def _diff(out_dir: Path, expected: dict[str, bytes], namespace: str = _NAMESPACE) -> Drift:
    actual = {
        path.relative_to(out_dir).as_posix(): path for path in _generated_files(out_dir, namespace)
    }
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


def check(
    out_dir: Path = DEFAULT_OUT_DIR, proto_dir: Path = DEFAULT_PROTO_DIR, target: Target = EVENTS
) -> Drift:
    """Compare the generated code in ``out_dir`` with a fresh build, changing nothing.

    Raises:
        CodegenError: protoc failed.
    """
    return _diff(out_dir, _expected(proto_dir, target), target.namespace)


def generate(
    out_dir: Path = DEFAULT_OUT_DIR, proto_dir: Path = DEFAULT_PROTO_DIR, target: Target = EVENTS
) -> Drift:
    """Bring the generated code in ``out_dir`` up to date.

    Writes changed and missing files, and deletes generated files whose ``.proto`` is
    gone. Unchanged files are left alone so their timestamps do not move.

    Returns:
        What was out of date before the run (``Drift.clean`` when nothing changed).

    Raises:
        CodegenError: protoc failed.
    """
    expected = _expected(proto_dir, target)
    drift = _diff(out_dir, expected, target.namespace)
    for name in (*drift.stale, *drift.missing):
        path = out_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(expected[name])
    for name in drift.extra:
        (out_dir / name).unlink()
    return drift


def _run(target: Target, out_dir: Path, proto_dir: Path, *, check_only: bool) -> int:
    if check_only:
        drift = check(out_dir, proto_dir, target)
        if drift.clean:
            print(f"generated code of proto/{target.namespace} in {out_dir} is up to date")
            return 0
        print(f"generated code in {out_dir} is out of date:", file=sys.stderr)
        print(drift.describe(), file=sys.stderr)
        print("run: python -m driftloop_events.codegen", file=sys.stderr)
        return 1
    drift = generate(out_dir, proto_dir, target)
    print(f"updated {out_dir}:\n{drift.describe()}" if not drift.clean else "nothing to do")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the process exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m driftloop_events.codegen",
        description="Generate Python code for the driftloop event contract (and serving's "
        "gRPC protocol) from proto/.",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="change nothing; exit 1 and list stale, missing and extra files if out of date",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="output root of the event contract only (default: every target in its place)",
    )
    parser.add_argument(
        "--proto", type=Path, default=DEFAULT_PROTO_DIR, help="proto root (default: %(default)s)"
    )
    args = parser.parse_args(argv)
    proto_dir: Path = args.proto.resolve()
    runs = (
        [(EVENTS, args.out.resolve())]
        if args.out is not None
        else [(target, target.out_dir) for target in TARGETS]
    )
    code = 0
    try:
        for target, out_dir in runs:
            code = max(code, _run(target, out_dir, proto_dir, check_only=args.check))
    except CodegenError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    raise SystemExit(main())
