"""Which local jobs have lost their trainer process (replicas share one database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from driftloop_trainer.domain.leases import ActiveJob, Owner, orphaned

pytestmark = pytest.mark.unit

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
ME = Owner(host="trainer-0", pid=41, boot="aaaa")


def job(owner: Owner | str | None, *, beat: float | None = 5.0) -> ActiveJob:
    return ActiveJob(
        id="job-1",
        owner=None if owner is None else str(owner),
        heartbeat_at=None if beat is None else NOW - timedelta(seconds=beat),
        created_at=NOW - timedelta(seconds=600),
    )


def is_orphan(found: ActiveJob, *, alive: bool = True) -> bool:
    return orphaned(found, me=ME, now=NOW, lease_seconds=60, alive=lambda _pid: alive)


def test_an_owner_round_trips_through_its_text() -> None:
    assert Owner.parse(str(ME)) == ME
    assert Owner.parse("pod/with/slashes/12/beef") == Owner("pod/with/slashes", 12, "beef")
    assert Owner.parse("not an owner") is None
    assert Owner.parse(None) is None


def test_this_process_jobs_are_never_orphans() -> None:
    assert not is_orphan(job(ME, beat=10_000), alive=False)


def test_on_this_host_a_dead_owner_or_a_reused_pid_is_gone_at_once() -> None:
    assert is_orphan(job(Owner("trainer-0", 7, "bbbb")), alive=False)
    assert is_orphan(job(Owner("trainer-0", 41, "old0")))  # a restarted container's pid
    assert not is_orphan(job(Owner("trainer-0", 7, "bbbb"), beat=10_000), alive=True)


def test_another_host_is_gone_only_once_its_lease_lapsed() -> None:
    other = Owner("trainer-1", 41, "cccc")
    assert not is_orphan(job(other, beat=59))
    assert is_orphan(job(other, beat=61))


def test_a_job_with_no_owner_or_heartbeat_counts_from_its_creation() -> None:
    assert is_orphan(job(None, beat=None))
    assert is_orphan(job("garbage", beat=None))
