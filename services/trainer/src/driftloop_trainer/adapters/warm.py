"""One process started ahead, its imports done, waiting on stdin for its one order.

Local jobs (``entrypoints/job.py --warm``) and the gate's scoring
(``pipelines/gate.py --warm``) spend seconds importing pandas, scikit-learn and mlflow;
a spare that has done so takes the next order at once, and a new spare starts once
that work is over, not competing with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = ["WarmProcess"]


class WarmProcess:
    """Keeps one spare process of ``command`` (which reads one JSON order from stdin).

    Args:
        command: The spare's command line.
        environment: Its environment, read when it starts (None: the service's own).
        enabled: False keeps no spare: :meth:`take` always answers None.
    """

    def __init__(
        self,
        command: Sequence[str],
        *,
        environment: Callable[[], Mapping[str, str]] | None = None,
        enabled: bool = True,
    ) -> None:
        self.command = list(command)
        self.environment = environment
        self.enabled = enabled
        self._spare: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        """Start a spare, unless one waits already."""
        if self.enabled and self._spare is None:
            self._spare = await asyncio.create_subprocess_exec(
                *self.command,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
                env=dict(self.environment()) if self.environment else None,
            )

    async def close(self) -> None:
        """Stop the spare."""
        spare, self._spare = self._spare, None
        if spare is not None and spare.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                spare.kill()
            await spare.wait()

    async def take(self, order: Mapping[str, Any]) -> asyncio.subprocess.Process | None:
        """Hand ``order`` to the spare and return it; None when no spare is alive."""
        spare, self._spare = self._spare, None
        if spare is None or spare.returncode is not None or spare.stdin is None:
            return None
        spare.stdin.write((json.dumps(dict(order)) + "\n").encode())
        await spare.stdin.drain()
        spare.stdin.close()
        return spare
