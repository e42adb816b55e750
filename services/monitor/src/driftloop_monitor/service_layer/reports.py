"""Reports: links, HTML, and the full Evidently report of a decided window on request."""

from __future__ import annotations

import asyncio
import json
import secrets

from driftloop_kit.errors import NotFound
from driftloop_monitor.domain import drift
from driftloop_monitor.domain.performance import PerformanceResult, PerformanceWindow
from driftloop_monitor.domain.windows import VersionKey
from driftloop_monitor.service_layer.policies import Policies
from driftloop_monitor.service_layer.ports import MonitorStorePort, ReportFilesPort
from driftloop_monitor.service_layer.references import References

__all__ = ["Reports", "new_report_id", "performance_body"]


def new_report_id(prefix: str) -> str:
    """A fresh report id, e.g. ``rep-1a2b3c4d5e6f7a8b``."""
    return f"{prefix}-{secrets.token_hex(8)}"


def performance_body(
    key: VersionKey, window_id: str, window: PerformanceWindow, result: PerformanceResult
) -> str:
    """The JSON body of a performance report."""
    return json.dumps(
        {
            "kind": "performance",
            "model_name": key.model,
            "version": key.version,
            "window_id": window_id,
            "metric": result.metric,
            "value": result.value,
            "threshold": result.threshold,
            "higher_is_better": result.higher_is_better,
            "degraded": result.degraded,
            "labelled_rows": result.rows,
        }
    )


class Reports:
    """Where reports are, and reports made on request.

    Args:
        store: Report rows and drift results.
        files: Report HTML and the rows of recent windows.
        references: Each version's reference data.
        policies: Each model's policy (the report's test settings).
        base_url: Prefix of report links.
    """

    def __init__(
        self,
        *,
        store: MonitorStorePort,
        files: ReportFilesPort,
        references: References,
        policies: Policies,
        base_url: str,
    ) -> None:
        self.store = store
        self.files = files
        self.references = references
        self.policies = policies
        self.base_url = base_url.rstrip("/")

    def url(self, report_id: str, *, base_url: str | None = None) -> str:
        """Where clients read report ``report_id``: under ``base_url`` (where the asking
        client reached the monitor), by default the configured one (links in events)."""
        return f"{(base_url or self.base_url).rstrip('/')}/reports/{report_id}"

    async def for_window(self, window: str) -> str:
        """Make (or find) the full Evidently report of a decided window; return its id.

        Raises:
            NotFound: No such window, or its data is no longer kept.
        """
        result = await self.store.drift_result(window)
        if result is None:
            raise NotFound(f"no window {window!r}")
        if result["report_id"]:
            return str(result["report_id"])
        key = VersionKey(result["model_name"], int(result["version"]))
        reference = await self.references.get(key)
        current = self.files.window(window)
        if reference is None or current is None:
            raise NotFound(
                f"the data of window {window!r} is no longer kept (or it had no reference)"
            )
        policy = await self.policies.get(key.model)
        body, html = await asyncio.to_thread(drift.full_report, reference, current, policy)
        report_id = new_report_id("rep")
        await self.files.write_html(report_id, html)
        async with self.store.session() as session:
            await self.store.add_report(
                session,
                report_id=report_id,
                kind="drift",
                model=key.model,
                version=key.version,
                window_id=window,
                body=body,
                has_html=True,
            )
            await self.store.attach_report(session, window_id=window, report_id=report_id)
        return report_id
