"""A training entry point that fails in its data stage after a few seconds: long enough
for a burst of alerts to be decided while its job still runs (the debounce), short
enough for a test to see it finish (then the cooldown).

Named by ``tests.integration.trainer.slow_failing_pipeline:train`` (``PYTHONPATH`` holds
the repository).
"""

from __future__ import annotations

import time

from driftloop_trainer.domain.jobs import JobContext, Stage, StageFailed, TrainingOutput

#: Seconds the job runs before it fails.
RUNS_FOR = 4.0


def train(context: JobContext) -> TrainingOutput:
    time.sleep(RUNS_FOR)
    raise StageFailed(Stage.DATA, f"job {context.job_id}: no rows (on purpose)")
