"""The trainer's own scoring of a challenger against the champion, in its own process.

``python -m driftloop_trainer.pipelines.gate REQUEST OUT``: the trainer writes the
request (the job's context, the two versions' folders, downloaded from the registry and
checked against their registered SHA-256, and the job's holdout) and reads the answer
from ``OUT``. The process reloads the labelled rows the job read (the label store, or the
spec's ``labels_source``, joined point-in-time with the features), keeps the held-out
rows by the trainer's rule (:mod:`driftloop_trainer.pipelines.holdout`), loads both
models with ``mlflow.pyfunc`` and scores them on exactly those rows. The job's own
figures are never used: a pipeline that reports inflated scores gets the scores its
model earns here.

A process of its own, not the service's: loading a model may import its flavor's
libraries and run its code, and a large model must not weigh on the service.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd  # type: ignore[import-untyped]

from driftloop_trainer.domain.jobs import JobContext
from driftloop_trainer.pipelines.holdout import TIMESTAMP, Holdout, mask, usable
from driftloop_trainer.pipelines.sklearn import WARM_UP, feature_columns, load_data, scores

__all__ = ["main", "score"]


def _predict(folder: str, rows: pd.DataFrame, columns: list[str]) -> np.ndarray[Any, Any]:
    import mlflow

    model = mlflow.pyfunc.load_model(folder)
    schema = model.metadata.get_input_schema()
    names = schema.input_names() if schema is not None and schema.has_input_names() else []
    inputs = rows[[n for n in names if n in rows.columns]] if names else rows[columns]
    return np.asarray(model.predict(inputs)).astype(str)


def _say(message: str) -> None:
    print(f"[{time.monotonic() - _STARTED[0]:7.2f}s] {message}", flush=True)


_STARTED = [time.monotonic()]


def score(request: dict[str, Any]) -> dict[str, Any]:
    """The held-out rows' scores of both models (see the module docstring)."""
    _STARTED[0] = time.monotonic()
    context = JobContext.from_json(request["context"])
    spec = context.spec
    frame, source = load_data(context)
    _say(f"{len(frame)} labelled rows from {source}")
    columns = feature_columns(frame, spec, dict(context.parameters))
    frame = usable(frame, columns=columns, label=spec.label)
    holdout = Holdout.from_report(request.get("holdout"), salt=context.job_id)
    if holdout is not None:
        chosen = mask(frame, holdout, columns=columns, label=spec.label)
        rule = f"held out by the trainer's rule (salt {holdout.salt}, since {holdout.recent_start})"
    else:
        chosen = (frame[TIMESTAMP] > pd.Timestamp(request["since"])).to_numpy()
        rule = f"labelled after the job started ({request['since']})"
    rows = frame[chosen]
    answer: dict[str, Any] = {
        "rows": len(rows),
        "rule": rule,
        "source": source,
        "holdout_start": rows[TIMESTAMP].min().isoformat() if len(rows) else "",
        "holdout_end": rows[TIMESTAMP].max().isoformat() if len(rows) else "",
        "challenger_metrics": {},
        "champion_metrics": None,
        "paired": None,
    }
    if not len(rows):
        return answer
    _say(f"{len(rows)} held-out rows ({rule})")
    truth = rows[spec.label].astype(str).to_numpy()
    answer["labels"] = label_check(
        frame[~chosen & (frame[TIMESTAMP] < rows[TIMESTAMP].min())], truth, spec.label
    )
    mine = _predict(request["challenger"]["path"], rows, columns)
    answer["challenger_metrics"] = scores(truth, mine)
    _say(f"challenger version {request['challenger']['version']}: {answer['challenger_metrics']}")
    champion = request.get("champion")
    if champion:
        theirs = _predict(champion["path"], rows, columns)
        answer["champion_metrics"] = scores(truth, theirs)
        right, their_right = mine == truth, theirs == truth
        answer["paired"] = {
            "challenger_only": int((right & ~their_right).sum()),
            "champion_only": int((their_right & ~right).sum()),
        }
        _say(f"champion version {champion['version']}: {answer['champion_metrics']}")
    return answer


def label_check(earlier: pd.DataFrame, truth: np.ndarray[Any, Any], label: str) -> dict[str, Any]:
    """The held-out labels against chance (their most frequent label's share) and against
    the labels of the rows before them (total variation distance), for the gate's
    suspect-labels rule (``domain/gate.py``)."""
    held = pd.Series(truth).value_counts(normalize=True)
    before = earlier[label].astype(str).value_counts(normalize=True)
    shift = None
    if len(earlier):
        both = held.index.union(before.index)
        shift = float(
            0.5
            * (held.reindex(both, fill_value=0) - before.reindex(both, fill_value=0)).abs().sum()
        )
    return {
        "majority_label": str(held.index[0]),
        "majority_share": float(held.iloc[0]),
        "label_shift": shift,
        "earlier_rows": len(earlier),
    }


def wait_for_request() -> list[str] | None:
    """A warm process: its imports done, wait for ``{"request", "answer", "log"}`` on
    stdin; its output goes to the log from then on. None when stdin closed."""
    import importlib

    for module in ("mlflow.pyfunc", *WARM_UP):  # the imports are the warm-up
        importlib.import_module(module)
    line = sys.stdin.readline()
    if not line.strip():
        return None
    order = json.loads(line)
    sys.stdout.flush()
    sys.stderr.flush()
    log = os.open(order["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(log, 1)
    os.dup2(log, 2)
    return [order["request"], order["answer"]]


def main(argv: list[str] | None = None) -> int:
    """Read the request, score, write the answer; 1 (and the error in the answer) on failure.

    ``--warm`` imports first, then waits for its request on stdin.
    """
    args = argv if argv is not None else sys.argv[1:]
    if args and args[0] == "--warm":
        waited = wait_for_request()
        if waited is None:
            return 0
        args = waited
    request_path, out_path = args[:2]
    request = json.loads(Path(request_path).read_text())
    try:
        answer: dict[str, Any] = {"ok": True, **score(request)}
    except Exception as error:  # reported to the trainer, which fails the job's evaluation
        import traceback

        traceback.print_exc()
        answer = {"ok": False, "error": f"{type(error).__name__}: {error}"}
    Path(out_path).write_text(json.dumps(answer))
    return 0 if answer["ok"] else 1


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # The outcome is written and reported: skip the interpreter's teardown of pandas,
    # scikit-learn and mlflow (one to several seconds on a busy machine), which the
    # trainer would otherwise wait for before it goes on with the loop.
    os._exit(code)
