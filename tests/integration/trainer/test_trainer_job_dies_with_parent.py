"""A local job's process ends with the trainer that started it, even on ``kill -9``
(Linux ``PR_SET_PDEATHSIG``): the lease rule fails the job then, and no orphan goes on
training and registering a version no gate judges."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from driftloop_trainer.domain.jobs import JOB_MODULE, PARENT_ENV

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's"),
]

#: A stand-in for the trainer: starts a warm job process, as the local executor does
#: (its pid in PARENT_ENV), prints the job's pid, and waits to be killed.
TRAINER = f"""
import os, subprocess, sys, time
job = subprocess.Popen(
    [sys.executable, "-m", "{JOB_MODULE}", "--warm"],
    env={{**os.environ, "{PARENT_ENV}": str(os.getpid())}},
    stdin=subprocess.PIPE,
)
print(job.pid, flush=True)
time.sleep(120)
"""


def alive(pid: int) -> bool:
    """Whether the process runs (a zombie waiting for its reaper does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_a_local_job_process_dies_when_its_trainer_is_killed() -> None:
    trainer = subprocess.Popen([sys.executable, "-c", TRAINER], stdout=subprocess.PIPE, text=True)
    job = 0
    try:
        assert trainer.stdout is not None
        job = int(trainer.stdout.readline())
        time.sleep(1.0)  # the job process is past its start
        assert alive(job)
        trainer.send_signal(signal.SIGKILL)
        trainer.wait(10)
        deadline = time.monotonic() + 10
        while alive(job) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not alive(job)
    finally:
        if trainer.poll() is None:
            trainer.kill()
        if job and alive(job):
            os.kill(job, signal.SIGKILL)
