"""The training entry point's contract and the job process, at their earlier import path.

A training entry point (``module:function``) takes a :class:`JobContext` and returns a
:class:`TrainingOutput`; it may raise :class:`StageFailed`. Code written against
``driftloop_trainer.runtime`` keeps working, and ``python -m driftloop_trainer.runtime``
still runs a job (a Kubernetes Job template of an earlier version, for instance). The
contract lives in :mod:`driftloop_trainer.domain.jobs`, the process in
:mod:`driftloop_trainer.entrypoints.job`.
"""

from __future__ import annotations

from driftloop_trainer.domain.jobs import JobContext, StageFailed, TrainingOutput
from driftloop_trainer.entrypoints.job import main

__all__ = ["JobContext", "StageFailed", "TrainingOutput", "main"]

if __name__ == "__main__":
    raise SystemExit(main())
