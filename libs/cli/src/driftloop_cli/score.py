"""``driftloop score``: batch scoring of a file with a registered model.

The scoring itself is serving's (it loads the model as serving does and logs the
predictions in serving's format): this module finds the suite (``<home>/up.json``: the
registry and the broker; the CLI's token) and runs
``python -m driftloop_serving.entrypoints.batch`` with the same interpreter, as the
trainer runs a job, so the CLI imports no service code.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from driftloop_cli.credentials import service_url, user_token

__all__ = ["BATCH_MODULE", "DEFAULT_REGISTRY_URL", "ScoreCall", "ScoringUnavailable", "run_score"]

#: The process that scores (serving's batch entrypoint).
BATCH_MODULE = "driftloop_serving.entrypoints.batch"
DEFAULT_REGISTRY_URL = "http://127.0.0.1:5001"
DEFAULT_BROKER = "127.0.0.1:9092"


class ScoringUnavailable(Exception):
    """Serving is not installed here: batch scoring is its code."""


@dataclass(frozen=True)
class ScoreCall:
    """One ``driftloop score`` command line."""

    model: str
    input: Path
    output: Path
    home: Path
    registry_url: str | None = None
    bootstrap_servers: str | None = None
    log: bool = True
    keep: tuple[str, ...] = ()
    chunk_rows: int = 65_536
    unpickle: bool = False


def _broker(home: Path) -> str | None:
    import json

    try:
        found = json.loads((home / "up.json").read_text())["broker"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return str(found) if isinstance(found, str) else None


def command(call: ScoreCall) -> list[str]:
    """The batch process's command line."""
    registry = call.registry_url or service_url(call.home, "registry") or DEFAULT_REGISTRY_URL
    broker = call.bootstrap_servers or _broker(call.home) or DEFAULT_BROKER
    args = [
        sys.executable,
        "-m",
        BATCH_MODULE,
        call.model,
        "--input",
        str(call.input),
        "--output",
        str(call.output),
        "--registry-url",
        registry,
        "--bootstrap-servers",
        broker,
        "--chunk-rows",
        str(call.chunk_rows),
        "--cache",
        str(call.home / "models"),
    ]
    for column in call.keep:
        args += ["--keep", column]
    if not call.log:
        args.append("--no-log")
    if call.unpickle:
        args.append("--unpickle")
    return args


def run_score(call: ScoreCall) -> int:
    """Score; the batch process's exit status (its result and errors on the terminal).

    Raises:
        ScoringUnavailable: driftloop-serving is not installed in this environment.
    """
    if importlib.util.find_spec("driftloop_serving") is None:
        raise ScoringUnavailable(
            "batch scoring is serving's: install driftloop-serving in this environment"
        )
    env = dict(os.environ)
    token = user_token(call.home)
    if token:
        env["DRIFTLOOP_TOKEN"] = token
    return subprocess.run(command(call), env=env, check=False).returncode
