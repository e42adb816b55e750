"""The monitor's SQL store: policies, reference data, results, reports, version state."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from driftloop_kit.db import Database
from driftloop_monitor.adapters.blobs import Waiting, decode_rows, decode_waiting, encode
from driftloop_monitor.adapters.tables import (
    drift_results,
    label_joins,
    performance_results,
    policies,
    references,
    reports,
    stream_offsets,
    version_state,
    waiting_batches,
    window_chunks,
)
from driftloop_monitor.domain.drift import ReferenceSet, from_parquet, to_parquet
from driftloop_monitor.domain.drift_state import VersionState
from driftloop_monitor.domain.policy import MonitorPolicy
from driftloop_monitor.domain.windows import RowChunk, VersionKey


@dataclass(frozen=True)
class ReferenceInfo:
    """Reference data without the data."""

    model: str
    version: int
    digest: str
    rows: int
    column_types: dict[str, str]
    source: str
    created_at: datetime | None


class MonitorStore:
    """Reads and writes the monitor's tables.

    Writes that go with an event take the caller's session, so the change and the outbox
    row commit together.
    """

    def __init__(self, database: Database) -> None:
        self.database = database

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session in one transaction."""
        async with self.database.session() as session:
            yield session

    # -- policies ------------------------------------------------------------------

    async def get_policy(self, model: str) -> MonitorPolicy | None:
        """The model's policy, or None."""
        async with self.session() as session:
            found = await session.scalar(
                select(policies.c.policy).where(policies.c.model_name == model)
            )
        return None if found is None else MonitorPolicy.model_validate(found)

    async def list_policies(self) -> dict[str, MonitorPolicy]:
        """Every model's policy."""
        async with self.session() as session:
            rows = (await session.execute(select(policies).order_by(policies.c.model_name))).all()
        return {row.model_name: MonitorPolicy.model_validate(row.policy) for row in rows}

    async def put_policy(self, model: str, policy: MonitorPolicy) -> None:
        """Create or replace the model's policy."""
        body = policy.model_dump(mode="json", exclude_defaults=True)
        async with self.session() as session:
            await session.execute(delete(policies).where(policies.c.model_name == model))
            await session.execute(insert(policies).values(model_name=model, policy=body))

    async def delete_policy(self, model: str) -> bool:
        """Remove the model's policy; whether there was one."""
        async with self.session() as session:
            result = await session.execute(delete(policies).where(policies.c.model_name == model))
        return bool(result.rowcount)  # type: ignore[attr-defined]

    # -- reference data ------------------------------------------------------------

    async def put_reference(self, model: str, version: int, reference: ReferenceSet) -> None:
        """Create or replace the reference data of a model version."""
        async with self.session() as session:
            await session.execute(
                delete(references).where(
                    references.c.model_name == model, references.c.version == version
                )
            )
            await session.execute(
                insert(references).values(
                    model_name=model,
                    version=version,
                    digest=reference.digest,
                    rows=len(reference.data),
                    column_types=reference.column_types,
                    source=reference.source[:2000],
                    data=to_parquet(reference.data),
                )
            )

    async def get_reference(self, model: str, version: int) -> ReferenceSet | None:
        """The reference data of a model version, or None."""
        async with self.session() as session:
            row = (
                await session.execute(
                    select(references).where(
                        references.c.model_name == model, references.c.version == version
                    )
                )
            ).first()
        if row is None:
            return None
        return ReferenceSet(
            data=from_parquet(row.data),
            column_types=dict(row.column_types),
            digest=row.digest,
            source=row.source,
        )

    async def reference_digest(self, model: str, version: int) -> str | None:
        """The digest of a version's reference data (cheap: no data), or None."""
        async with self.session() as session:
            found: str | None = await session.scalar(
                select(references.c.digest).where(
                    references.c.model_name == model, references.c.version == version
                )
            )
        return found

    async def list_references(self, model: str | None = None) -> list[ReferenceInfo]:
        """Reference data sets, without their data."""
        query = select(
            references.c.model_name,
            references.c.version,
            references.c.digest,
            references.c.rows,
            references.c.column_types,
            references.c.source,
            references.c.created_at,
        ).order_by(references.c.model_name, references.c.version)
        if model is not None:
            query = query.where(references.c.model_name == model)
        async with self.session() as session:
            rows = (await session.execute(query)).all()
        return [
            ReferenceInfo(
                model=r.model_name,
                version=r.version,
                digest=r.digest,
                rows=r.rows,
                column_types=dict(r.column_types),
                source=r.source,
                created_at=r.created_at,
            )
            for r in rows
        ]

    async def delete_reference(self, model: str, version: int) -> bool:
        """Remove a version's reference data; whether there was one."""
        async with self.session() as session:
            result = await session.execute(
                delete(references).where(
                    references.c.model_name == model, references.c.version == version
                )
            )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    # -- version state -------------------------------------------------------------

    async def version_state(
        self, session: AsyncSession, *, model: str, version: int
    ) -> VersionState:
        """The state of a model version (a fresh one when never seen)."""
        row = (
            await session.execute(
                select(version_state).where(
                    version_state.c.model_name == model, version_state.c.version == version
                )
            )
        ).first()
        if row is None:
            return VersionState(model=model, version=version)
        return VersionState(
            model=model,
            version=version,
            drifted=row.drifted,
            detected_event_id=row.detected_event_id,
            windows=row.windows,
            rows=row.rows,
            unreferenced_rows=row.unreferenced_rows,
            unreferenced_windows=row.unreferenced_windows,
            labelled_rows=row.labelled_rows,
            drift_episode_id=row.drift_episode_id,
            drift_episode_windows=row.drift_episode_windows,
            drift_clear_windows=row.drift_clear_windows,
            performance_episode_id=row.performance_episode_id,
            degraded_event_id=row.degraded_event_id,
            performance_episode_windows=row.performance_episode_windows,
            performance_clear_windows=row.performance_clear_windows,
            exists=True,
        )

    async def save_state(self, session: AsyncSession, *, state: VersionState) -> None:
        """Write a version's state back."""
        values = {
            "drifted": state.drifted,
            "detected_event_id": state.detected_event_id,
            "windows": state.windows,
            "rows": state.rows,
            "unreferenced_rows": state.unreferenced_rows,
            "unreferenced_windows": state.unreferenced_windows,
            "labelled_rows": state.labelled_rows,
            "drift_episode_id": state.drift_episode_id,
            "drift_episode_windows": state.drift_episode_windows,
            "drift_clear_windows": state.drift_clear_windows,
            "performance_episode_id": state.performance_episode_id,
            "degraded_event_id": state.degraded_event_id,
            "performance_episode_windows": state.performance_episode_windows,
            "performance_clear_windows": state.performance_clear_windows,
            "updated_at": func.now(),
        }
        if state.exists:
            await session.execute(
                update(version_state)
                .where(
                    version_state.c.model_name == state.model,
                    version_state.c.version == state.version,
                )
                .values(**values)
            )
        else:
            await session.execute(
                insert(version_state).values(
                    model_name=state.model, version=state.version, **values
                )
            )
            state.exists = True

    async def list_states(self, model: str) -> list[VersionState]:
        """The state of every version of ``model`` the monitor has seen."""
        async with self.session() as session:
            versions = await session.scalars(
                select(version_state.c.version)
                .where(version_state.c.model_name == model)
                .order_by(version_state.c.version)
            )
            return [
                await self.version_state(session, model=model, version=v) for v in list(versions)
            ]

    # -- results and reports -------------------------------------------------------

    async def add_drift_result(self, session: AsyncSession, **values: Any) -> None:
        """Insert one window's drift result (columns of ``monitor_drift_results``)."""
        await session.execute(insert(drift_results).values(**values))

    async def add_performance_result(self, session: AsyncSession, **values: Any) -> None:
        """Insert one performance window's result."""
        await session.execute(insert(performance_results).values(**values))

    async def add_report(
        self,
        session: AsyncSession,
        *,
        report_id: str,
        kind: str,
        model: str,
        version: int,
        window_id: str,
        body: str,
        has_html: bool,
    ) -> None:
        """Insert a report's JSON (its HTML lives in the report folder)."""
        await session.execute(
            insert(reports).values(
                id=report_id,
                kind=kind,
                model_name=model,
                version=version,
                window_id=window_id,
                body=body,
                has_html=has_html,
            )
        )

    async def attach_report(self, session: AsyncSession, *, window_id: str, report_id: str) -> None:
        """Point a drift result at a report made later (on request)."""
        await session.execute(
            update(drift_results)
            .where(drift_results.c.window_id == window_id)
            .values(report_id=report_id)
        )

    async def get_report(self, report_id: str) -> dict[str, Any] | None:
        """A report row, or None."""
        async with self.session() as session:
            row = (await session.execute(select(reports).where(reports.c.id == report_id))).first()
        return None if row is None else dict(row._mapping)

    async def drift_result(self, window_id: str) -> dict[str, Any] | None:
        """One window's drift result, or None."""
        async with self.session() as session:
            row = (
                await session.execute(
                    select(drift_results).where(drift_results.c.window_id == window_id)
                )
            ).first()
        return None if row is None else dict(row._mapping)

    async def decided(self, *, kind: str, window_id: str) -> bool:
        """Whether a ``drift`` or ``performance`` window's result is stored."""
        table = drift_results if kind == "drift" else performance_results
        async with self.session() as session:
            found = await session.scalar(
                select(table.c.id).where(table.c.window_id == window_id).limit(1)
            )
        return found is not None

    async def forget_window(self, session: AsyncSession, *, window_id: str) -> None:
        """Delete the stored rows of a decided window (drift), or mark its predictions'
        joins decided (performance: their waiting batches still hold the predictions)."""
        await session.execute(delete(window_chunks).where(window_chunks.c.window_id == window_id))
        await session.execute(
            update(label_joins)
            .where(label_joins.c.perf_window == window_id, label_joins.c.decided.is_(False))
            .values(decided=True)
        )

    # -- stream state (the durable engine) --------------------------------------------

    async def store_batch(
        self,
        *,
        windows: list[RowChunk],
        pending: list[dict[str, Any]],
        joined: list[dict[str, Any]],
        group: str,
        offsets: dict[tuple[str, int], int],
    ) -> None:
        """Write one consumed batch's state and its next offsets in one transaction.

        One row per window (its new rows encoded together, ``adapters/blobs.py``), one per
        partition of ``pending`` predictions (keys of the label join's entries plus
        ``request_id``), one per ``joined`` one; a row already stored (the same batch
        written again after a failed commit) is left as it is.
        """
        chunks = [_chunk_row(chunk) for chunk in windows]
        waiting = _waiting_rows(pending)
        async with self.session() as session:
            connection = await session.connection()
            if chunks:
                await connection.execute(self._insert_new(window_chunks), chunks)
            if waiting:
                await connection.execute(self._insert_new(waiting_batches), waiting)
            if joined:
                await connection.execute(self._insert_new(label_joins), joined)
            if offsets:
                await connection.execute(
                    self._upsert_offsets(),
                    [
                        {"group_id": group, "topic": t, "partition": p, "next_offset": o}
                        for (t, p), o in offsets.items()
                    ],
                )

    async def stream_state(
        self, *, group: str, partitions: list[int], now: float | None = None
    ) -> tuple[list[RowChunk], list[dict[str, Any]], dict[tuple[str, int], int]]:
        """The stored chunks of open windows of ``partitions``, their predictions that
        wait for a label (``perf_window`` None; those whose wait is over at ``now`` left
        out) or joined with it and not decided yet (oldest first), and the group's next
        offsets of every topic."""
        now = time.time() if now is None else now
        async with self.session() as session:
            chunks = (
                await session.execute(
                    select(window_chunks)
                    .where(window_chunks.c.partition.in_(partitions))
                    .order_by(window_chunks.c.window_id, window_chunks.c.position)
                )
            ).all()
            batches = (
                await session.execute(
                    select(waiting_batches.c.partition, waiting_batches.c.data).where(
                        waiting_batches.c.partition.in_(partitions),
                        waiting_batches.c.expires > now,
                    )
                )
            ).all()
            joins = (
                await session.execute(
                    select(label_joins).where(label_joins.c.partition.in_(partitions))
                )
            ).all()
            offsets = (
                await session.execute(
                    select(stream_offsets).where(stream_offsets.c.group_id == group)
                )
            ).all()
        joined = {j.event_id for j in joins}
        pending = [
            w.pending(batch.partition)
            for batch in batches
            for w in decode_waiting(batch.data)
            if w.event_id not in joined and w.expires > now
        ]
        pending += [dict(j._mapping) for j in joins if not j.decided]
        pending.sort(key=lambda p: p["time"])
        return (
            [_chunk(r) for r in chunks],
            pending,
            {(o.topic, o.partition): o.next_offset for o in offsets},
        )

    async def expire_pending(self, now: float) -> int:
        """Delete waiting predictions whose wait is over (with the notes of decided joins
        of predictions whose wait is over); how many batches of them."""
        async with self.session() as session:
            result = await session.execute(
                delete(waiting_batches).where(waiting_batches.c.expires <= now)
            )
            await session.execute(
                delete(label_joins).where(
                    label_joins.c.decided.is_(True), label_joins.c.expires <= now
                )
            )
        return int(result.rowcount)  # type: ignore[attr-defined]

    def _insert_new(self, table: Any) -> Any:
        dialect = self.database.engine.dialect.name
        module = postgresql if dialect == "postgresql" else sqlite
        return module.insert(table).on_conflict_do_nothing()

    def _upsert_offsets(self) -> Any:
        dialect = self.database.engine.dialect.name
        module = postgresql if dialect == "postgresql" else sqlite
        statement = module.insert(stream_offsets)
        return statement.on_conflict_do_update(
            index_elements=["group_id", "topic", "partition"],
            set_={"next_offset": statement.excluded.next_offset},
        )

    async def drift_history(
        self,
        *,
        model: str,
        version: int | None = None,
        limit: int = 100,
        before_id: int | None = None,
        only_drift: bool = False,
    ) -> list[dict[str, Any]]:
        """Drift results of a model (or one version), newest first."""
        query = select(drift_results).where(drift_results.c.model_name == model)
        if version is not None:
            query = query.where(drift_results.c.version == version)
        if before_id is not None:
            query = query.where(drift_results.c.id < before_id)
        if only_drift:
            query = query.where(drift_results.c.dataset_drift.is_(True))
        query = query.order_by(drift_results.c.id.desc()).limit(limit)
        async with self.session() as session:
            rows = (await session.execute(query)).all()
        return [dict(row._mapping) for row in rows]

    async def performance_history(
        self, *, model: str, version: int | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        """Performance results of a model (or one version), newest first."""
        query = select(performance_results).where(performance_results.c.model_name == model)
        if version is not None:
            query = query.where(performance_results.c.version == version)
        query = query.order_by(performance_results.c.id.desc()).limit(limit)
        async with self.session() as session:
            rows = (await session.execute(query)).all()
        return [dict(row._mapping) for row in rows]


def _chunk_row(chunk: RowChunk) -> dict[str, Any]:
    return {
        "window_id": chunk.window_id,
        "position": chunk.position,
        "partition": chunk.partition,
        "model_name": chunk.key.model,
        "version": chunk.key.version,
        "run_id": chunk.run_id,
        "start": chunk.start,
        "last": chunk.last,
        "seen": chunk.seen,
        "rows": len(chunk.rows),
        "data": encode(chunk.rows),
        "traceparent": chunk.traceparent,
    }


def _chunk(row: Row[Any]) -> RowChunk:
    return RowChunk(
        window_id=row.window_id,
        position=row.position,
        partition=row.partition,
        key=VersionKey(row.model_name, int(row.version)),
        run_id=row.run_id,
        start=row.start,
        last=row.last,
        seen=row.seen,
        rows=decode_rows(row.data),
        traceparent=row.traceparent,
    )


def _waiting_rows(pending: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One ``monitor_waiting_batches`` row per partition of a batch's waiting predictions."""
    by_partition: dict[int, list[Waiting]] = {}
    for p in pending:
        by_partition.setdefault(p["partition"], []).append(
            Waiting(
                event_id=p["id"],
                request_id=p["request_id"],
                model_name=p["model"],
                version=p["version"],
                run_id=p["run_id"],
                prediction=p["prediction"],
                time=p["time"],
                expires=p["expires"],
            )
        )
    return [
        {
            "id": entries[0].event_id,
            "partition": partition,
            "expires": max(w.expires for w in entries),
            "data": encode(entries),
        }
        for partition, entries in by_partition.items()
    ]
