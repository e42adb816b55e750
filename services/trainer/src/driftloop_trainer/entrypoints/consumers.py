"""The trigger consumer: monitor alerts and new-data events become trigger decisions.

Each event is claimed in the inbox in the transaction that records its decision,
so a redelivered event decides nothing twice and starts no second job.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from driftloop.features.v1 import events_pb2 as features
from driftloop.monitor.v1 import events_pb2 as monitor
from driftloop_bus.consumer import EventKey, Handler
from driftloop_events.envelope import CloudEvent
from driftloop_trainer.domain.policy import Trigger, TriggerKind
from driftloop_trainer.service_layer.training import Training

log = logging.getLogger(__name__)


def _from(event: CloudEvent[Any], **fields: Any) -> Trigger:
    return Trigger(event_id=event.id, event_type=event.type, event_source=event.source, **fields)


class TriggerHandlers:
    """Translates events into :class:`Trigger` s for :meth:`Training.submit`."""

    def __init__(self, training: Training) -> None:
        self.training = training

    def table(self) -> Mapping[EventKey, Sequence[Handler]]:
        """The dispatch table of the trigger consumer."""
        return {
            monitor.DriftDetected: [self.on_drift_detected],
            monitor.PerformanceDegraded: [self.on_performance_degraded],
            features.FeaturesIngested: [self.on_features_ingested],
        }

    async def on_drift_detected(self, event: CloudEvent[Any]) -> None:
        """A model's inputs drifted."""
        alert: monitor.DriftDetected = event.data
        name = alert.model.name
        config = self.training.models.get(name)
        if config is None or not config.policy.on_drift:
            log.debug("drift alert for a model without a drift trigger", extra={"model": name})
            return
        drifted = sum(1 for column in alert.columns if column.drifted)
        reason = (
            f"{drifted} of {len(alert.columns)} columns drifted (share {alert.drift_share:.2f} "
            f">= {alert.dataset_drift_threshold:.2f}) in window {alert.window.id}"
        )
        await self.training.submit(
            _from(
                event,
                kind=TriggerKind.DRIFT,
                model=name,
                version=int(alert.model.version),
                window=alert.window.id,
                reason=reason,
            ),
            event=event,
        )

    async def on_performance_degraded(self, event: CloudEvent[Any]) -> None:
        """A model's measured performance crossed its threshold."""
        alert: monitor.PerformanceDegraded = event.data
        name = alert.model.name
        config = self.training.models.get(name)
        if config is None or not config.policy.on_performance:
            return
        reason = (
            f"{alert.metric} {alert.value:.4f} crossed {alert.threshold:.4f} "
            f"on {alert.labelled_rows} labelled rows in window {alert.window.id}"
        )
        await self.training.submit(
            _from(
                event,
                kind=TriggerKind.PERFORMANCE,
                model=name,
                version=int(alert.model.version),
                window=alert.window.id,
                reason=reason,
            ),
            event=event,
        )

    async def on_features_ingested(self, event: CloudEvent[Any]) -> None:
        """New rows for feature views some models are trained on."""
        ingested: features.FeaturesIngested = event.data
        if not ingested.offline_store_written or ingested.rows_written <= 0:
            return
        for name in self.training.models_reading(list(ingested.feature_views)):
            if self.training.models[name].policy.new_data_rows <= 0:
                continue
            await self.training.submit(
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
