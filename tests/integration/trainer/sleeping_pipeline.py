"""A training entry point that writes its process id into its work folder and sleeps for
minutes: a job that is surely still running when a test cancels it.

Named by ``tests.integration.trainer.sleeping_pipeline:train`` (``PYTHONPATH`` holds the
repository).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from driftloop_trainer.domain.jobs import JobContext, TrainingOutput

#: The file in the job's work folder that holds its process id.
PID_FILE = "pid"


def train(context: JobContext) -> TrainingOutput:
    (Path(context.work_dir) / PID_FILE).write_text(str(os.getpid()))
    time.sleep(300)
    raise AssertionError("a sleeping job must be cancelled, not finish")
