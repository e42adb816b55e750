"""The second world, end to end: subscribers of a service, not flowers.

``driftloop demo --world churn`` declares ``churn-classifier`` with ``driftloop apply``
only (no model in any setting), sends every label through the features service's label
route seconds after its prediction (no labels file), and shifts the market. The loop must
close as it does for iris, with the retrained version's run naming the labels it learned
from and their time range, and no service process replaced on the way.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from tests.e2e.demo import run_demo

pytestmark = pytest.mark.e2e


@pytest.mark.timeout(900)
def test_the_churn_world_closes_the_loop_from_a_declared_model_and_rest_labels(
    tmp_path: Path,
) -> None:
    done = run_demo(tmp_path, world="churn")
    output = done.output
    result = done.result()
    assert result["world"] == "churn"
    assert result["model"] == "churn-classifier"
    v1, v2 = result["first_version"], result["new_version"]
    events = result["timeline"]
    kinds = [(e["kind"], e.get("version")) for e in events]
    assert ("registry.alias.set", v1) in kinds
    assert ("registry.alias.set", v2) in kinds, output
    # The market's shift moved the prices and the new region (a categorical column).
    alert = next(e for e in events if e["kind"] == "monitor.drift.detected")
    assert {"monthly_charges", "region"} <= set(alert["columns"]), alert
    # Declared once, by its document: one revision, applied with the suite's admin token.
    assert [r["revision"] for r in result["document_revisions"]] == [1]
    # No labels file: the suite holds the labels; the home has only the document, the
    # keys and the logs of `driftloop up`.
    assert not [f for f in result["files_in_home"] if f.endswith((".csv", ".parquet"))]
    assert "churn-classifier.yaml" in result["files_in_home"]
    # The retrained version's run names the labels it learned from and their time range.
    (dataset,) = [
        d for d in result["retrained_run"]["dataset_inputs"] if "driftloop.labels" in d["tags"]
    ]
    tags = dataset["tags"]
    assert tags["driftloop.labels"] == "label store"
    assert int(tags["driftloop.labels_rows"]) > 100
    assert tags["driftloop.labels_start"] < tags["driftloop.labels_end"]
    assert tags["driftloop.labels_end"] >= result["shift_time"]  # it saw the new market
    # It was judged on rows of the new market, and the monitor watches it against them:
    # its reference sample comes from the rows since the change began, not the old market.
    run = result["retrained_run"]
    assert run["params"]["holdout_end"] >= result["shift_time"]
    since = run["tags"]["driftloop.reference_from"]
    assert since.startswith("since "), since
    shift = datetime.fromisoformat(result["shift_time"])
    assert shift - timedelta(seconds=60) <= datetime.fromisoformat(since.removeprefix("since "))
    assert result["services_restarted"] == []
    requests = result["requests"]
    assert requests["failed"] == 0, requests["errors"]
    assert requests["accuracy_after_shift"][str(v2)] > requests["accuracy_after_shift"][str(v1)]
    assert done.returncode == 0, output
