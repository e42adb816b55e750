"""The trainer's holdout rule: the rows a job must not train on and the gate scores."""

from __future__ import annotations

import pandas as pd  # type: ignore[import-untyped]
import pytest

from driftloop_trainer.pipelines.holdout import Holdout, held_out, mask, row_keys, split

pytestmark = pytest.mark.unit


def frame(rows: int, *, start: str = "2030-01-01") -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": range(rows),
            "spend": [float(i % 7) for i in range(rows)],
            "churned": ["yes" if i % 3 else "no" for i in range(rows)],
            "event_timestamp": pd.date_range(start, periods=rows, freq="min", tz="UTC"),
        }
    )


def test_about_the_share_of_the_recent_rows_is_held_out_and_only_recent_ones() -> None:
    data = frame(2000)

    training, evaluation, rule = split(
        data, columns=["spend"], label="churned", salt="job-1", recent_rows=1000
    )

    assert 430 <= len(evaluation) <= 570  # half of 1000, give or take the hash
    assert len(training) + len(evaluation) == 2000
    assert evaluation["event_timestamp"].min() >= pd.Timestamp(rule.recent_start)
    assert rule.recent_start == data["event_timestamp"].iloc[1000].isoformat()


def test_a_row_is_held_out_whoever_loads_the_data_and_later_rows_change_nothing() -> None:
    data = frame(500)
    _, evaluation, rule = split(
        data, columns=["spend"], label="churned", salt="job-7", recent_rows=200
    )
    # The trainer reloads the rows later: more have arrived, in another order.
    later = pd.concat([frame(600), data.iloc[::-1]]).drop_duplicates(
        subset=["customer_id", "event_timestamp"]
    )

    chosen = later[mask(later, rule, columns=["spend"], label="churned")]
    original = chosen[chosen["event_timestamp"] <= data["event_timestamp"].max()]

    assert sorted(original["customer_id"]) == sorted(evaluation["customer_id"])
    # A feature value is not part of a row's key; its entity keys and time are.
    changed = data.assign(spend=data["spend"] + 1)
    assert row_keys(changed, columns=["spend"], label="churned") == row_keys(
        data, columns=["spend"], label="churned"
    )


def test_each_job_holds_out_other_rows() -> None:
    keys = [f"row-{i}" for i in range(1000)]

    one = held_out(keys, salt="job-1")
    other = held_out(keys, salt="job-2")

    assert (one != other).sum() > 300
    assert (held_out(keys, salt="job-1") == one).all()


def test_a_report_without_a_recent_start_is_no_holdout() -> None:
    assert Holdout.from_report(None, salt="job-1") is None
    assert Holdout.from_report({"recent_start": ""}, salt="job-1") is None
    found = Holdout.from_report({"recent_start": "2030-01-01T00:00:00+00:00"}, salt="job-1")
    assert found == Holdout(salt="job-1", recent_start="2030-01-01T00:00:00+00:00")
