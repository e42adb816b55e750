"""Files next to the database: Evidently HTML reports and the data of recent windows."""

from __future__ import annotations

import asyncio
import collections
import re
from pathlib import Path

import pandas as pd  # type: ignore[import-untyped]

_SAFE = re.compile(r"[^A-Za-z0-9_.-]")


class ReportFiles:
    """HTML reports (``<root>/html/<report id>.html``) and the rows of recent windows.

    Args:
        root: The folder; created on first write.
        kept_windows: How many windows per model version are kept for on-request reports.
    """

    def __init__(self, root: Path, *, kept_windows: int = 20) -> None:
        self.root = root
        self.kept_windows = kept_windows
        self._kept: dict[str, collections.OrderedDict[str, pd.DataFrame]] = {}

    def _html_path(self, report_id: str) -> Path:
        if _SAFE.search(report_id):
            raise ValueError(f"invalid report id {report_id!r}")
        return self.root / "html" / f"{report_id}.html"

    async def write_html(self, report_id: str, html: str) -> None:
        """Store a report's HTML."""
        path = self._html_path(report_id)
        await asyncio.to_thread(_write_text, path, html)

    async def read_html(self, report_id: str) -> str | None:
        """A report's HTML, or None."""
        path = self._html_path(report_id)
        return await asyncio.to_thread(_read_text, path)

    def keep_window(self, version_key: str, window_id: str, data: pd.DataFrame) -> None:
        """Keep a window's rows in memory; the oldest kept window of that version goes.

        In memory, not on disk: writing every window would cost more than deciding it.
        After a restart, reports on request cover the windows decided since.
        """
        if self.kept_windows <= 0:
            return
        kept = self._kept.setdefault(version_key, collections.OrderedDict())
        kept[window_id] = data
        while len(kept) > self.kept_windows:
            kept.popitem(last=False)

    def window(self, window_id: str) -> pd.DataFrame | None:
        """A kept window's rows, or None when it is no longer kept."""
        for kept in self._kept.values():
            if window_id in kept:
                return kept[window_id]
        return None


def _write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None


def _write_bytes(path: Path, blob: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(blob)
    tmp.replace(path)


def _read_bytes(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
