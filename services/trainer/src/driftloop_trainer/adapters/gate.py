"""The trainer's own scoring of a challenger and the champion (the use cases'
``GateScoringPort``).

Both versions' files are downloaded from the registry and checked against their
registered SHA-256 (:mod:`driftloop_kit.model_files`), into ``<cache>/<name>/<version>``;
the scoring runs in a process of its own (``python -m driftloop_trainer.pipelines.gate``,
with the trainer's interpreter), bounded by a timeout, its output kept in the job's
folder (``gate.log``). One such process waits ahead with its imports done (pandas,
scikit-learn, mlflow: seconds), as the local executor's warm job process does.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

import anyio

from driftloop_kit.model_files import (
    API,
    DownloadError,
    download_version,
    message,
    version_files,
)
from driftloop_trainer.adapters.registry import RegistryClient
from driftloop_trainer.adapters.warm import WarmProcess
from driftloop_trainer.domain.gate import GateScoringError
from driftloop_trainer.domain.jobs import JobContext

__all__ = ["GATE_MODULE", "GateScorer"]

logger = logging.getLogger(__name__)

#: The module the scoring process runs.
GATE_MODULE = "driftloop_trainer.pipelines.gate"


class GateScorer:
    """Scores a job's challenger and the champion on the job's held-out rows.

    Args:
        registry: The trainer's registry client (its connection pool and credential).
        cache: Where versions' files are kept.
        python: The interpreter of the scoring process.
        timeout: Seconds the scoring may take.
    """

    def __init__(
        self,
        registry: RegistryClient,
        *,
        cache: Path,
        python: str,
        timeout: float = 600.0,
        warm: bool = True,
    ) -> None:
        self.registry = registry
        self.cache = cache
        self.python = python
        self.timeout = timeout
        self.spare = WarmProcess([python, "-m", GATE_MODULE, "--warm"], enabled=warm)

    async def start(self) -> None:
        """Warm a scoring process for the first evaluation."""
        await self.spare.start()

    async def close(self) -> None:
        """Stop the warm process."""
        await self.spare.close()

    async def _process(
        self, request_path: Path, answer_path: Path, log: BinaryIO, log_path: Path
    ) -> asyncio.subprocess.Process:
        order = {"request": str(request_path), "answer": str(answer_path), "log": str(log_path)}
        spare = await self.spare.take(order)
        if spare is not None:
            return spare
        return await asyncio.create_subprocess_exec(
            self.python,
            "-m",
            GATE_MODULE,
            str(request_path),
            str(answer_path),
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
        )

    async def _download(self, name: str, version: int) -> Path:
        client = self.registry.client
        response = await client.get(
            f"{API}/model-versions/get", params={"name": name, "version": str(version)}
        )
        if response.status_code >= 400:
            raise GateScoringError(
                f"version {version} of {name!r}: the registry answered "
                f"{response.status_code}: {message(response)}"
            )
        try:
            return await download_version(
                client,
                name=name,
                version=version,
                files=version_files(response.json()),
                target=self.cache / name / str(version),
            )
        except DownloadError as error:
            raise GateScoringError(f"version {version} of {name!r}: {error}") from None

    async def score(
        self,
        context: JobContext,
        *,
        challenger: int,
        champion: int | None,
        holdout: Mapping[str, Any] | None,
        since: datetime,
    ) -> dict[str, Any]:
        """Both models' scores on the held-out rows (``rows``, ``challenger_metrics``,
        ``champion_metrics``, ``paired``, ``holdout_start``, ``holdout_end``, ``rule``).

        Raises:
            GateScoringError: A version cannot be fetched, or the scoring failed or took
                too long (the reason, and the end of its output).
        """
        name = context.model_name
        started = time.monotonic()
        request: dict[str, Any] = {
            "context": context.to_json(),
            "challenger": {
                "version": challenger,
                "path": str(await self._download(name, challenger)),
            },
            "champion": None
            if champion is None
            else {"version": champion, "path": str(await self._download(name, champion))},
            "holdout": dict(holdout) if holdout else None,
            "since": since.isoformat(),
        }
        downloaded = time.monotonic()
        folder = Path(context.work_dir)
        request_path, answer_path, log = await anyio.to_thread.run_sync(_prepare, folder, request)
        try:
            process = await self._process(request_path, answer_path, log, folder / LOG)
            try:
                await asyncio.wait_for(process.wait(), self.timeout)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
                raise GateScoringError(
                    f"scoring took longer than {self.timeout:.0f} s; stopped"
                ) from None
        finally:
            log.close()
            await anyio.to_thread.run_sync(request_path.unlink, True)
            # The next warm process starts once this scoring is done, not competing with it.
            await self.spare.start()
        answer = await anyio.to_thread.run_sync(_answer, answer_path, folder / LOG)
        if not answer.get("ok"):
            raise GateScoringError(f"scoring failed: {answer.get('error')}")
        logger.info(
            "gate scored %s version %d on %d rows in %.1f s (%.1f s fetching the versions)",
            name,
            challenger,
            answer["rows"],
            time.monotonic() - started,
            downloaded - started,
        )
        return answer


#: The scoring process's output, in the job's folder.
LOG = "gate.log"


def _prepare(folder: Path, request: dict[str, Any]) -> tuple[Path, Path, BinaryIO]:
    folder.mkdir(parents=True, exist_ok=True)
    request_path, answer_path = folder / "gate-request.json", folder / "gate.json"
    request_path.touch(mode=0o600)  # it holds the job's token
    request_path.write_text(json.dumps(request))
    answer_path.unlink(missing_ok=True)
    return request_path, answer_path, (folder / LOG).open("wb")


def _answer(answer_path: Path, log_path: Path) -> dict[str, Any]:
    try:
        answer: dict[str, Any] = json.loads(answer_path.read_text())
    except (OSError, ValueError):
        tail = log_path.read_text(errors="replace")[-1500:]
        raise GateScoringError(f"scoring left no answer: {tail}") from None
    return answer
