"""Who runs a job: the trainer process that started (or adopted) it holds a lease on it.

A local job runs in a child of one trainer process and dies with it. With one trainer,
every job left queued or running at start-up is such an orphan. With replicas on one
database, the other replicas' jobs are alive: a job is an orphan only when its owner is
known to be gone (same host, and its process is no longer there or is now this one, as
after a container restart) or when its owner has not renewed the lease for
``lease_seconds`` (another host that stopped).
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

__all__ = ["ActiveJob", "Owner", "orphaned", "pid_alive"]


@dataclass(frozen=True)
class Owner:
    """A trainer process: its host, its pid, and a token told apart from a later
    process with the same pid."""

    host: str
    pid: int
    boot: str

    @classmethod
    def this_process(cls) -> Owner:
        return cls(host=socket.gethostname(), pid=os.getpid(), boot=secrets.token_hex(4))

    def __str__(self) -> str:
        return f"{self.host}/{self.pid}/{self.boot}"

    @classmethod
    def parse(cls, text: str | None) -> Owner | None:
        """The owner ``str(owner)`` wrote; None for anything else."""
        parts = (text or "").rsplit("/", 2)
        if len(parts) != 3 or not parts[1].isdigit():
            return None
        return cls(host=parts[0], pid=int(parts[1]), boot=parts[2])


@dataclass(frozen=True)
class ActiveJob:
    """A job some trainer process holds: a local one queued or running, or one running
    on a cluster (``local`` False), which outlives the process that started it."""

    id: str
    owner: str | None
    heartbeat_at: datetime | None
    created_at: datetime
    local: bool = True


def pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def orphaned(
    job: ActiveJob,
    *,
    me: Owner,
    now: datetime,
    lease_seconds: float,
    alive: Callable[[int], bool] = pid_alive,
) -> bool:
    """Whether ``job`` has lost the process that ran it."""
    if job.owner == str(me):
        return False
    owner = Owner.parse(job.owner)
    if owner is not None and owner.host == me.host:
        # On this host the answer is known: this process's pid (a restarted container
        # reuses it) or no process at all means the owner is gone.
        return owner.pid == me.pid or not alive(owner.pid)
    seen = job.heartbeat_at or job.created_at
    return now - seen > timedelta(seconds=lease_seconds)
