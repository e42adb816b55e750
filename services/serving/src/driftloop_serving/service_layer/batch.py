"""Batch scoring: a file's rows through a loaded model, a chunk at a time, into an output
file and onto the prediction log.

Each chunk is read, typed (:mod:`driftloop_serving.domain.batch`), scored, appended to
the output, and its prediction records sent and acknowledged before the next chunk is
read: memory holds one chunk whatever the file's size. The records are serving's
(``PredictionLogged``, :class:`~driftloop_serving.domain.events.PredictionEvents`),
several rows each as for a multi-row request, on route ``batch``, so the monitor counts
batch traffic in its windows. Any error (a value that does not fit, a model that
raises, a broker that does not take the records) removes the partial output: the
output file is either complete or absent.

Used by ``python -m driftloop_serving.entrypoints.batch`` (``driftloop score``, and the
trainer's jobs of kind ``score``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import anyio
import numpy as np
import pyarrow as pa

from driftloop_events.envelope import KafkaRecord
from driftloop_serving.domain.batch import (
    BatchInputError,
    ChunkPlan,
    chunk_inputs,
    output_columns,
    plan_chunks,
)
from driftloop_serving.domain.events import PredictionEvents
from driftloop_serving.domain.models import ServedModel
from driftloop_serving.domain.signature import Batch

__all__ = ["BatchResult", "BatchScorer", "RecordSenderPort", "TableSinkPort", "TableSourcePort"]


class TableSourcePort(Protocol):
    """The input file, in chunks (Arrow record batches)."""

    columns: list[str]
    text: bool

    def __iter__(self) -> Iterator[Any]:
        """The chunks, first to last."""
        ...

    def close(self) -> None:
        """Close the file."""


class TableSinkPort(Protocol):
    """The output file: written in chunks, in place only once committed."""

    def write(self, table: Any) -> None:
        """Append a chunk's output rows."""

    def commit(self) -> None:
        """Put the complete output in place."""

    def abort(self) -> None:
        """Remove what was written."""


class RecordSenderPort(Protocol):
    """Where prediction records go, acknowledged before :meth:`send` returns."""

    async def send(self, records: list[KafkaRecord]) -> None:
        """Send and wait for the acknowledgements."""
        ...


@dataclass(frozen=True)
class BatchResult:
    """What a run did.

    Attributes:
        model: The registered model.
        version: Its version that scored.
        alias: The alias it was resolved through ("" for a version asked by number).
        rows: Rows scored (and written).
        chunks: Chunks read.
        records: Prediction records logged (0 with logging off).
        seconds: Wall time of the run.
    """

    model: str
    version: int
    alias: str
    rows: int
    chunks: int
    records: int
    seconds: float

    def to_json(self) -> dict[str, Any]:
        """The result as JSON."""
        return asdict(self)


def _rows_of(inputs: np.ndarray[Any, Any] | Batch, start: int, stop: int) -> Any:
    if isinstance(inputs, Batch):
        return Batch(
            columns={name: array[start:stop] for name, array in inputs.columns.items()},
            rows=stop - start,
            tensor=inputs.tensor,
        )
    return inputs[start:stop]


class BatchScorer:
    """Scores files with one loaded model version.

    Args:
        model: The version, loaded.
        log: Where prediction records go; None logs nothing.
        run_id: Prefix of the records' request ids (``<run_id>-<first row>``).
        rows_per_record: Rows per prediction record, at most.
        max_record_bytes: Largest record sent; a larger one is split in two.
    """

    def __init__(
        self,
        model: ServedModel,
        *,
        log: RecordSenderPort | None,
        run_id: str,
        rows_per_record: int = 500,
        max_record_bytes: int = 900_000,
    ) -> None:
        self.model = model
        self.log = log
        self.run_id = run_id
        self.rows_per_record = rows_per_record
        self.max_record_bytes = max_record_bytes
        self._events = PredictionEvents()

    async def run(
        self, source: TableSourcePort, sink: TableSinkPort, *, keep: Sequence[str] = ()
    ) -> BatchResult:
        """Score every row of ``source`` into ``sink`` (and the log).

        Raises:
            BatchInputError: The file does not fit the model, or the model cannot score
                it; the message names the column and the row. Nothing is left in place
                of the output.
            Exception: The log's error when records cannot be delivered.
        """
        started = time.monotonic()
        rows = chunks = records = 0
        try:
            plan = plan_chunks(source.columns, self.model.predictor, keep)
            chunk_iterator = iter(source)
            while True:
                chunk = await anyio.to_thread.run_sync(next, chunk_iterator, None)
                if chunk is None:
                    break
                found = await anyio.to_thread.run_sync(
                    self._score_chunk, chunk, plan, rows, source.text, sink
                )
                if self.log is not None:
                    await self.log.send(found)
                    records += len(found)
                rows += chunk.num_rows
                chunks += 1
            if not rows:
                raise BatchInputError("the input has no rows to score")
            await anyio.to_thread.run_sync(sink.commit)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(sink.abort)
            raise
        finally:
            source.close()
        return BatchResult(
            model=self.model.name,
            version=self.model.version,
            alias=self.model.alias,
            rows=rows,
            chunks=chunks,
            records=records,
            seconds=round(time.monotonic() - started, 3),
        )

    def _score_chunk(
        self, chunk: Any, plan: ChunkPlan, first_row: int, text: bool, sink: TableSinkPort
    ) -> list[KafkaRecord]:
        """Score one chunk, append its output; its prediction records (none when not
        logging)."""
        predictor = self.model.predictor
        inputs = chunk_inputs(chunk, plan, predictor, first_row=first_row, text=text)
        began = time.perf_counter()
        try:
            predictions = np.asarray(predictor.predict(inputs))
        except Exception as error:
            raise BatchInputError(
                f"version {self.model.version} of {self.model.name} cannot score rows "
                f"{first_row} to {first_row + chunk.num_rows - 1}: "
                f"{type(error).__name__}: {error}"
            ) from None
        elapsed = time.perf_counter() - began
        outputs = output_columns(predictions, chunk.num_rows)
        kept = {name: chunk.column(name) for name in plan.keep}
        sink.write(pa.table({**kept, **outputs}))
        if self.log is None:
            return []
        return self._records(inputs, predictions, first_row, elapsed / max(chunk.num_rows, 1))

    def _records(
        self,
        inputs: np.ndarray[Any, Any] | Batch,
        predictions: np.ndarray[Any, Any],
        first_row: int,
        per_row: float,
    ) -> list[KafkaRecord]:
        """The chunk's prediction records, ``rows_per_record`` rows each (fewer when a
        record would be larger than ``max_record_bytes``)."""
        total = len(predictions)
        found: list[KafkaRecord] = []
        spans = [
            (s, min(s + self.rows_per_record, total)) for s in range(0, total, self.rows_per_record)
        ]
        while spans:
            start, stop = spans.pop(0)
            record = self._events.logged(
                model=self.model,
                route="batch",
                request_id=f"{self.run_id}-{first_row + start}",
                matrix=_rows_of(inputs, start, stop),
                predictions=predictions[start:stop],
                elapsed=per_row * (stop - start),
            )
            size = (
                len(record.key)
                + len(record.value)
                + sum(len(k) + len(v) for k, v in record.headers)
            )
            if size > self.max_record_bytes:
                if stop - start == 1:
                    raise BatchInputError(
                        f"row {first_row + start} makes a prediction record of {size} bytes, "
                        f"more than {self.max_record_bytes}: score with logging off"
                    )
                middle = (start + stop) // 2
                spans[:0] = [(start, middle), (middle, stop)]
                continue
            found.append(record)
        return found
