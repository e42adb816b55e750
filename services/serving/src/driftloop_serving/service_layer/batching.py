"""Adaptive micro-batching: concurrent requests to one model scored in one call.

What MLServer's adaptive batching (``max_batch_size``, ``max_batch_time``) and
Triton's dynamic batcher do: the first request for a model opens a batch; requests
for the same version (and the same outputs) that arrive within ``max_batch_time``
join it; the batch is scored when it holds ``max_batch_size`` rows or when the time
is up, with one call of the model, and each request gets its own rows of the answer.

Serving scores in its event loop, so while the model answers one batch the next
requests queue up in the loop and form the next batch: under load the batch grows
by itself, and a request alone waits ``max_batch_time`` at most.

Each request stays its own: its own answer, its own prediction record (the caller
logs it) and its own error. A batch the model refuses as a whole (one request's
rows it cannot score, or an answer with a row count that does not match) is scored
again request by request, so only the bad request fails.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from prometheus_client import Histogram

from driftloop_kit.declarations import BatchingPolicy
from driftloop_serving.domain.models import ServedModel
from driftloop_serving.domain.signature import Batch

__all__ = ["BATCH_SIZE", "MicroBatcher", "Outputs", "merge", "split"]

BATCH_SIZE = Histogram(
    "driftloop_serving_batch_size",
    "Rows per call of the model when micro-batching merges requests, by model.",
    ["model"],
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096),
)

Array = np.ndarray[Any, Any]
Inputs = Array | Batch
#: A model's predictions for some rows, and their class probabilities when asked for.
Outputs = tuple[Array, Array | None]
#: Scores inputs with a model: ``predict(model, inputs, probabilities)``.
Predict = Callable[[ServedModel, Inputs, bool], Outputs]


def merge(parts: list[Inputs]) -> Inputs:
    """The rows of several requests as one input, in order.

    Raises:
        ValueError: If the parts do not stack (different columns or widths).
    """
    first = parts[0]
    if isinstance(first, Batch):
        batches = [part for part in parts if isinstance(part, Batch)]
        names = list(first.columns)
        if len(batches) != len(parts) or any(list(b.columns) != names for b in batches):
            raise ValueError("the requests' columns differ")
        return Batch(
            columns={n: np.concatenate([b.columns[n] for b in batches]) for n in names},
            rows=sum(b.rows for b in batches),
            tensor=first.tensor,
        )
    return np.concatenate([np.asarray(part) for part in parts])


def split(outputs: Array, sizes: list[int]) -> list[Array]:
    """Each request's rows of a batch's outputs.

    Raises:
        ValueError: If the outputs do not have one row per input row.
    """
    if outputs.ndim == 0 or len(outputs) != sum(sizes):
        raise ValueError(f"{outputs.shape} outputs for {sum(sizes)} rows")
    return np.split(outputs, np.cumsum(sizes)[:-1])


@dataclass
class _Open:
    """A batch that requests are still joining."""

    model: ServedModel
    probabilities: bool
    inputs: list[Inputs] = field(default_factory=list)
    waiting: list[asyncio.Future[Outputs]] = field(default_factory=list)
    rows: int = 0
    timer: asyncio.TimerHandle | None = None


class MicroBatcher:
    """Merges concurrent requests to the same model version into batches.

    Args:
        predict: Scores inputs with a model (raises when the model refuses them).
    """

    def __init__(self, predict: Predict) -> None:
        self._predict = predict
        self._open: dict[tuple[int, bool], _Open] = {}

    async def submit(
        self,
        model: ServedModel,
        inputs: Inputs,
        *,
        policy: BatchingPolicy,
        probabilities: bool = False,
    ) -> Outputs:
        """Score ``inputs`` with ``model`` in a batch with other concurrent requests.

        Returns:
            This request's predictions (and probabilities when asked for).

        Raises:
            Exception: What the model raised on this request's own rows.
        """
        rows = len(inputs)
        if rows >= policy.max_batch_size:  # fills a batch alone: no reason to wait
            return self._predict(model, inputs, probabilities)
        key = (id(model), probabilities)
        batch = self._open.get(key)
        if batch is not None and batch.rows + rows > policy.max_batch_size:
            self._flush(key)
            batch = None
        loop = asyncio.get_running_loop()
        if batch is None:
            batch = self._open[key] = _Open(model, probabilities)
            batch.timer = loop.call_later(policy.max_batch_time, self._flush, key)
        waiting: asyncio.Future[Outputs] = loop.create_future()
        batch.inputs.append(inputs)
        batch.waiting.append(waiting)
        batch.rows += rows
        if batch.rows >= policy.max_batch_size:
            self._flush(key)
        return await waiting

    def _flush(self, key: tuple[int, bool]) -> None:
        batch = self._open.pop(key, None)
        if batch is None:
            return
        if batch.timer is not None:
            batch.timer.cancel()
        BATCH_SIZE.labels(batch.model.name).observe(batch.rows)
        if len(batch.inputs) > 1:
            try:
                self._answer_together(batch)
                return
            except Exception:  # one request's rows, or a row count: each on its own
                pass
        self._answer_each(batch)

    def _answer_together(self, batch: _Open) -> None:
        predictions, proba = self._predict(batch.model, merge(batch.inputs), batch.probabilities)
        sizes = [len(part) for part in batch.inputs]
        answers = split(np.asarray(predictions), sizes)
        probas: list[Array | None] = (
            list(split(np.asarray(proba), sizes)) if proba is not None else [None] * len(sizes)
        )
        for waiting, answer, probability in zip(batch.waiting, answers, probas, strict=True):
            if not waiting.done():
                waiting.set_result((answer, probability))

    def _answer_each(self, batch: _Open) -> None:
        for waiting, inputs in zip(batch.waiting, batch.inputs, strict=True):
            if waiting.done():  # the caller went away
                continue
            try:
                waiting.set_result(self._predict(batch.model, inputs, batch.probabilities))
            except Exception as error:
                waiting.set_exception(error)
