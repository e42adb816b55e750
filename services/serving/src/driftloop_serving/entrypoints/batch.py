"""Batch scoring's process: ``python -m driftloop_serving.entrypoints.batch MODEL --input
FILE --output FILE`` (what ``driftloop score`` runs), and :func:`score_job`, the entry
point of the trainer's jobs of kind ``score``.

The model is loaded as serving loads it: the version an alias names (``champion`` by
default) or a version by number, its files downloaded through the registry and checked
against their registered SHA-256, then the same loaders (fast paths, ``mlflow.pyfunc``)
and the same rules (no pickle unless ``--unpickle``; skops files of trusted types only).
The call's credential is ``DRIFTLOOP_TOKEN`` (a reader's token is enough).

Exit status: 0 scored, 1 the input or the model could not be scored (the message names
the column and the row; no output file is left), 2 a usage error.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from driftloop_serving.adapters.batch_files import TableSink, TableSource
from driftloop_serving.adapters.batch_log import BatchLogError, PredictionSender
from driftloop_serving.adapters.flavors import ModelLoader
from driftloop_serving.adapters.registry import RegistryClient
from driftloop_serving.domain.batch import BatchInputError, parse_reference
from driftloop_serving.domain.models import ModelLoadError, RegistryError, ServedModel
from driftloop_serving.service_layer.batch import BatchResult, BatchScorer

__all__ = ["ScoreOptions", "main", "score", "score_job"]

#: Bounds of the options a caller sets.
MAX_CHUNK_ROWS = 1_000_000
MAX_ROWS_PER_RECORD = 10_000
TOKEN_ENV = "DRIFTLOOP_TOKEN"


class ScoreError(Exception):
    """A run that could not score; the message says why."""


class UsageError(ScoreError):
    """An option is out of its bounds."""


@dataclass(frozen=True)
class ScoreOptions:
    """One batch scoring run.

    Attributes:
        model: ``NAME``, ``NAME@ALIAS`` or ``NAME/VERSION`` (``models:/`` forms too).
        input: The Parquet or CSV file to score.
        output: The file the predictions go to (Parquet or CSV, by its suffix).
        registry_url: The registry the model is loaded from.
        bootstrap_servers: The Kafka cluster of the ``predictions`` topic.
        log: Whether predictions are logged.
        keep: Input columns copied to the output (an id), not given to the model.
        chunk_rows: Rows read, scored and written at a time.
        rows_per_record: Rows per prediction record.
        cache: Folder of downloaded model files.
        token: The credential sent to the registry.
        unpickle: Whether a pickled model (or a pyfunc flavor) may be loaded.
        trusted_types: Types a skops file may hold beyond scikit-learn's, NumPy's, SciPy's.
        run_id: Prefix of the prediction records' request ids.
    """

    model: str
    input: str
    output: str
    registry_url: str = "http://127.0.0.1:5001"
    bootstrap_servers: str = "127.0.0.1:9092"
    log: bool = True
    keep: tuple[str, ...] = ()
    chunk_rows: int = 65_536
    rows_per_record: int = 500
    cache: Path = Path(".driftloop") / "models"
    token: str = field(default="", repr=False)
    unpickle: bool = False
    trusted_types: tuple[str, ...] = ()
    run_id: str = ""

    def check(self) -> None:
        """Raises:
        UsageError: A bound is out of range, or input and output are the same file.
        """
        if not 1 <= self.chunk_rows <= MAX_CHUNK_ROWS:
            raise UsageError(
                f"chunk rows must be from 1 to {MAX_CHUNK_ROWS}, not {self.chunk_rows}"
            )
        if not 1 <= self.rows_per_record <= MAX_ROWS_PER_RECORD:
            raise UsageError(
                f"rows per record must be from 1 to {MAX_ROWS_PER_RECORD}, not "
                f"{self.rows_per_record}"
            )
        if os.path.abspath(self.input) == os.path.abspath(self.output):
            raise UsageError("the output must be another file than the input")


class _Bearer(httpx.Auth):
    def __init__(self, token: str) -> None:
        self.token = token

    def auth_flow(self, request: httpx.Request) -> Any:
        request.headers["Authorization"] = f"Bearer {self.token}"
        yield request


async def _load(options: ScoreOptions) -> ServedModel:
    reference = parse_reference(options.model)
    registry = RegistryClient(
        options.registry_url,
        options.cache,
        auth=_Bearer(options.token) if options.token else None,
    )
    try:
        if reference.version is not None:
            info = await registry.version(reference.name, reference.version)
        else:
            info = await registry.by_alias(reference.name, reference.alias)
        folder = await registry.download(info)
    except RegistryError as error:
        raise ScoreError(f"cannot load {reference} from the registry: {error}") from None
    finally:
        await registry.stop()
    loader = ModelLoader(
        unpickle_models=frozenset({info.name} if options.unpickle else ()),
        trusted_types=frozenset(options.trusted_types),
    )
    try:
        predictor = await asyncio.to_thread(loader, folder, model=info.name)
    except ModelLoadError as error:
        raise ScoreError(
            f"version {info.version} of {info.name} cannot be loaded: {error}"
        ) from None
    return ServedModel(
        name=info.name,
        version=info.version,
        run_id=info.run_id,
        alias=reference.alias,
        predictor=predictor,
    )


async def score(options: ScoreOptions) -> BatchResult:
    """Load the model, score the input into the output, log the predictions.

    Raises:
        ScoreError: The model cannot be loaded, or a bound is out of range.
        BatchInputError: The input does not fit the model (column and row named).
        BatchLogError: The records could not be logged.
    """
    options.check()
    model = await _load(options)
    source = await asyncio.to_thread(TableSource, options.input, chunk_rows=options.chunk_rows)
    try:
        sink = await asyncio.to_thread(TableSink, options.output)
    except BaseException:
        source.close()
        raise
    sender = PredictionSender(options.bootstrap_servers) if options.log else None
    scorer = BatchScorer(
        model,
        log=sender,
        run_id=options.run_id or f"batch-{uuid.uuid4().hex[:12]}",
        rows_per_record=options.rows_per_record,
    )
    try:
        if sender is not None:
            await sender.start()
        return await scorer.run(source, sink, keep=options.keep)
    except BaseException:
        source.close()
        await asyncio.to_thread(sink.abort)
        raise
    finally:
        if sender is not None:
            await sender.stop()


def score_job(context: Any) -> dict[str, Any]:
    """The entry point of a trainer job of kind ``score``.

    ``context`` is the job's :class:`~driftloop_trainer.domain.jobs.JobContext` (read by
    its attributes, so serving does not import the trainer): its ``parameters`` hold
    ``model``, ``input_uri``, ``output_uri``, ``log`` (``"true"``/``"false"``),
    ``keep`` (comma-separated), ``chunk_rows``, ``bootstrap_servers``; its
    ``registry_url``, ``token`` and ``work_dir`` where the model comes from.

    Returns:
        :class:`~driftloop_serving.service_layer.batch.BatchResult` as JSON, with the
        output's URI.
    """
    parameters: Mapping[str, str] = context.parameters
    options = ScoreOptions(
        model=parameters["model"],
        input=parameters["input_uri"],
        output=parameters["output_uri"],
        registry_url=context.registry_url,
        bootstrap_servers=parameters.get("bootstrap_servers") or "127.0.0.1:9092",
        log=parameters.get("log", "true") != "false",
        keep=tuple(k for k in parameters.get("keep", "").split(",") if k),
        chunk_rows=int(parameters.get("chunk_rows") or 65_536),
        cache=Path(context.work_dir or ".") / "models",
        token=context.token,
        run_id=context.job_id,
    )
    result = asyncio.run(score(options))
    return {**result.to_json(), "output_uri": options.output}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m driftloop_serving.entrypoints.batch",
        description="Score a Parquet or CSV file with a registered model.",
    )
    parser.add_argument("model", help="NAME, NAME@ALIAS (default alias champion) or NAME/VERSION")
    parser.add_argument("--input", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--registry-url", default=os.environ.get("DRIFTLOOP_REGISTRY_URL"))
    parser.add_argument(
        "--bootstrap-servers", default=os.environ.get("DRIFTLOOP_KAFKA_BOOTSTRAP_SERVERS")
    )
    parser.add_argument("--no-log", action="store_true")
    parser.add_argument("--keep", action="append", default=[])
    parser.add_argument("--chunk-rows", type=int, default=65_536)
    parser.add_argument("--rows-per-record", type=int, default=500)
    parser.add_argument("--cache", type=Path, default=Path(".driftloop") / "models")
    parser.add_argument("--unpickle", action="store_true")
    parser.add_argument("--trust-type", action="append", default=[])
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one scoring; print its result as JSON. The exit status is the module's."""
    args = _parser().parse_args(argv)
    options = ScoreOptions(
        model=args.model,
        input=args.input,
        output=args.output,
        registry_url=args.registry_url or ScoreOptions.registry_url,
        bootstrap_servers=args.bootstrap_servers or ScoreOptions.bootstrap_servers,
        log=not args.no_log,
        keep=tuple(args.keep),
        chunk_rows=args.chunk_rows,
        rows_per_record=args.rows_per_record,
        cache=args.cache,
        token=os.environ.get(TOKEN_ENV, ""),
        unpickle=args.unpickle,
        trusted_types=tuple(args.trust_type),
    )
    try:
        result = asyncio.run(score(options))
    except ScoreError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2 if isinstance(error, UsageError) else 1
    except (BatchInputError, BatchLogError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(json.dumps({**result.to_json(), "output": options.output}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
