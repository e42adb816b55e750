"""What the registry reacts to: monitor alerts and training jobs go into the lineage log.

Each event is claimed in the inbox in the transaction that writes its log row, so
a redelivered event adds nothing. An event the log cannot take (no model name, no
job id) fails its handler and, once retried, goes to the dead-letter topic.
"""

from __future__ import annotations

from typing import Any

from driftloop.monitor.v1 import events_pb2 as monitor
from driftloop.trainer.v1 import events_pb2 as trainer
from driftloop_bus.consumer import HandlerTable
from driftloop_events.envelope import CloudEvent
from driftloop_registry.service_layer.lineage import LineageRecording

__all__ = ["HANDLERS", "on_monitor_verdict", "on_training_step"]


async def on_monitor_verdict(recording: LineageRecording, event: CloudEvent[Any]) -> None:
    """A drift or performance verdict on a version: added to its model's lineage log."""
    await recording.record(event)


async def on_training_step(recording: LineageRecording, event: CloudEvent[Any]) -> None:
    """A training job requested, started, completed or failed: added to the model's log."""
    await recording.record(event)


HANDLERS: HandlerTable[LineageRecording] = {
    monitor.DriftDetected: [on_monitor_verdict],
    monitor.DriftCleared: [on_monitor_verdict],
    monitor.PerformanceDegraded: [on_monitor_verdict],
    monitor.PerformanceRecovered: [on_monitor_verdict],
    trainer.TrainingRequested: [on_training_step],
    trainer.TrainingStarted: [on_training_step],
    trainer.TrainingCompleted: [on_training_step],
    trainer.TrainingFailed: [on_training_step],
    trainer.TrainingEscalated: [on_training_step],
}
