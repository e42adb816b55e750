"""``driftloop demo`` as the e2e tests run it: a subprocess on free ports, its timeline
written to a file, its output kept for the assertion messages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["DemoRun", "run_demo"]


@dataclass
class DemoRun:
    """A finished demo: its exit code, the tail of its output, and its timeline."""

    returncode: int
    output: str
    timeline: Path

    def result(self) -> dict[str, Any]:
        """The timeline the demo wrote (fails with the demo's output when it wrote none)."""
        assert self.timeline.exists(), (
            f"the demo wrote no timeline (exit {self.returncode}):\n{self.output}"
        )
        found: dict[str, Any] = json.loads(self.timeline.read_text())
        return found


def run_demo(
    tmp_path: Path, *, world: str = "iris", env: Mapping[str, str] | None = None
) -> DemoRun:
    """Run ``driftloop demo --world WORLD --free-ports`` in ``tmp_path`` with ``env``
    added to this process's environment."""
    timeline = tmp_path / "timeline.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "driftloop_cli",
            "demo",
            "--world",
            world,
            "--free-ports",
            "--home",
            str(tmp_path / "home"),
            "--timeline-json",
            str(timeline),
        ],
        capture_output=True,
        text=True,
        timeout=840,
        check=False,
        env={**os.environ, **(env or {})},
    )
    return DemoRun(done.returncode, done.stdout[-6000:] + done.stderr[-3000:], timeline)
