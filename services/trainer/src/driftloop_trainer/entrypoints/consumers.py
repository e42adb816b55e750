"""What the trainer reacts to: monitor alerts and new-data events become trigger decisions.

Each event is claimed in the inbox in the transaction that records its decision,
so a redelivered event decides nothing twice and starts no second job.

The handlers translate an event into a :class:`Trigger` for :meth:`Training.submit`;
:data:`HANDLERS` is bound to the container's :class:`Training` at wiring time.
"""

from __future__ import annotations

import logging
from datetime import UTC
from typing import Any

from driftloop.features.v1 import events_pb2 as features
from driftloop.monitor.v1 import events_pb2 as monitor
from driftloop_bus.consumer import HandlerTable
from driftloop_events.envelope import CloudEvent
from driftloop_trainer.domain.policy import Trigger, TriggerKind
from driftloop_trainer.service_layer.training import Training

__all__ = [
    "HANDLERS",
    "on_drift_cleared",
    "on_drift_detected",
    "on_features_ingested",
    "on_performance_degraded",
    "on_performance_recovered",
]

log = logging.getLogger(__name__)


def _iso(stamp: Any) -> str:
    """A protobuf ``Timestamp`` as ISO 8601 (UTC)."""
    return str(stamp.ToDatetime(tzinfo=UTC).isoformat())


def _from(event: CloudEvent[Any], **fields: Any) -> Trigger:
    return Trigger(
        event_id=event.id,
        event_type=event.type,
        event_source=event.source,
        traceparent=event.traceparent or "",
        **fields,
    )


async def on_drift_detected(training: Training, event: CloudEvent[Any]) -> None:
    """A model's inputs drifted: a drift trigger, decided by the model's policy."""
    alert: monitor.DriftDetected = event.data
    name = alert.model.name
    config = training.models.get(name)
    if config is None or not config.policy.on_drift:
        log.debug("drift alert for a model without a drift trigger", extra={"model": name})
        return
    drifted = sum(1 for column in alert.columns if column.drifted)
    reason = (
        f"{drifted} of {len(alert.columns)} columns drifted (share {alert.drift_share:.2f} "
        f">= {alert.dataset_drift_threshold:.2f}) in window {alert.window.id}"
    )
    await training.submit(
        _from(
            event,
            kind=TriggerKind.DRIFT,
            model=name,
            version=int(alert.model.version),
            window=alert.window.id,
            reason=reason,
            # An alert without an episode (a monitor before episodes, or a hand-made
            # one) is decided alone, never deferred: each would be an episode of its own.
            episode_id=alert.episode_id,
            onset=_iso(alert.window.start_time) if alert.window.HasField("start_time") else "",
            alerted_at=event.time.isoformat(),
        ),
        event=event,
    )


async def on_drift_cleared(training: Training, event: CloudEvent[Any]) -> None:
    """A drift episode closed: a retrain still deferred for it is dropped."""
    cleared: monitor.DriftCleared = event.data
    episode = cleared.episode_id or cleared.cleared_event.id
    if episode:
        await training.close_episode(
            cleared.model.name, episode, why=f"drift cleared in window {cleared.window.id}"
        )


async def on_performance_recovered(training: Training, event: CloudEvent[Any]) -> None:
    """A performance episode closed: a retrain still deferred for it is dropped."""
    recovered: monitor.PerformanceRecovered = event.data
    if recovered.episode_id:
        await training.close_episode(
            recovered.model.name,
            recovered.episode_id,
            why=f"{recovered.metric} {recovered.value:.4f} meets {recovered.threshold:.4f} again",
        )


async def on_performance_degraded(training: Training, event: CloudEvent[Any]) -> None:
    """A model's measured performance crossed its threshold: a performance trigger."""
    alert: monitor.PerformanceDegraded = event.data
    name = alert.model.name
    config = training.models.get(name)
    if config is None or not config.policy.on_performance:
        return
    reason = (
        f"{alert.metric} {alert.value:.4f} crossed {alert.threshold:.4f} "
        f"on {alert.labelled_rows} labelled rows in window {alert.window.id}"
    )
    await training.submit(
        _from(
            event,
            kind=TriggerKind.PERFORMANCE,
            model=name,
            version=int(alert.model.version),
            window=alert.window.id,
            reason=reason,
            episode_id=alert.episode_id,
            onset=_iso(alert.window.start_time) if alert.window.HasField("start_time") else "",
            alerted_at=event.time.isoformat(),
        ),
        event=event,
    )


async def on_features_ingested(training: Training, event: CloudEvent[Any]) -> None:
    """Rows written offline: a new-data trigger for each model that reads those views."""
    ingested: features.FeaturesIngested = event.data
    if not ingested.offline_store_written or ingested.rows_written <= 0:
        return
    for name in training.models_reading(list(ingested.feature_views)):
        if training.models[name].policy.new_data_rows <= 0:
            continue
        await training.submit(
            _from(
                event,
                kind=TriggerKind.NEW_DATA,
                model=name,
                rows=int(ingested.rows_written),
                window=event.id,
                reason=(
                    f"{ingested.rows_written} rows ingested into "
                    f"{', '.join(ingested.feature_views)} from {ingested.push_source}"
                ),
            ),
            event=event,
        )


HANDLERS: HandlerTable[Training] = {
    monitor.DriftDetected: [on_drift_detected],
    monitor.DriftCleared: [on_drift_cleared],
    monitor.PerformanceDegraded: [on_performance_degraded],
    monitor.PerformanceRecovered: [on_performance_recovered],
    features.FeaturesIngested: [on_features_ingested],
}
