"""Process-wide logging: JSON lines for machines, or plain text for a terminal.

Call :func:`configure_logging` once, at start-up (the CLI does it before
serving); importing the kit changes nothing. Uvicorn's loggers are routed through
the same handler, so run uvicorn with ``log_config=None`` to keep them there.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Literal, TextIO

from pythonjsonlogger.json import JsonFormatter

__all__ = ["UVICORN_LOGGERS", "configure_logging"]

#: Loggers uvicorn configures for itself; :func:`configure_logging` sends them to the root handler.
UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")

_CONSOLE_FORMAT = "%(asctime)s %(levelname)-8s {service} %(name)s: %(message)s"


class _JsonFormatter(JsonFormatter):
    """JSON lines whose ``time`` is ISO 8601 in UTC, with milliseconds."""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds")


class _DriftloopHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Marks the handler this module installed, so reconfiguring replaces only it."""


def configure_logging(
    *,
    level: str,
    fmt: Literal["json", "console"],
    service: str,
    stream: TextIO | None = None,
) -> None:
    """Send every log record to one handler on the root logger.

    JSON lines carry ``time`` (ISO 8601, UTC), ``level``, ``logger``, ``message``,
    ``service``, any ``extra={...}`` fields, and ``exc_info`` with the traceback.
    Calling it again replaces the previous configuration.

    Args:
        level: ``DEBUG``, ``INFO``, ``WARNING``, ``ERROR`` or ``CRITICAL``.
        fmt: ``json`` or ``console``.
        service: Service name stamped on every record.
        stream: Where to write; standard error by default.
    """
    handler = _DriftloopHandler(stream if stream is not None else sys.stderr)
    formatter: logging.Formatter
    if fmt == "json":
        formatter = _JsonFormatter(
            ["asctime", "levelname", "name", "message"],
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            static_fields={"service": service},
        )
    else:
        formatter = logging.Formatter(_CONSOLE_FORMAT.format(service=service.replace("%", "%%")))
    handler.setFormatter(formatter)

    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _DriftloopHandler)]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(level.upper())

    for name in UVICORN_LOGGERS:
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
        # Level NOTSET defers to the root level set above.
        logger.setLevel(logging.NOTSET)
    logging.captureWarnings(True)
