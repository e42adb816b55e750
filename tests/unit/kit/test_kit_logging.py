"""Logging: JSON lines with the service name, uvicorn routed through the same handler."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from driftloop_kit.logging import UVICORN_LOGGERS, configure_logging

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    saved_root = (list(root.handlers), root.level)
    saved = {
        name: (list(logging.getLogger(name).handlers), logging.getLogger(name).propagate)
        for name in UVICORN_LOGGERS
    }
    yield
    root.handlers[:] = saved_root[0]
    root.setLevel(saved_root[1])
    for name, (handlers, propagate) in saved.items():
        logger = logging.getLogger(name)
        logger.handlers[:] = handlers
        logger.propagate = propagate
    logging.captureWarnings(False)


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_lines_carry_time_level_logger_message_service_and_extras() -> None:
    stream = io.StringIO()
    configure_logging(level="INFO", fmt="json", service="tracking", stream=stream)

    logging.getLogger("driftloop.test").info("run %s created", "r1", extra={"run_id": "r1"})

    [record] = lines(stream)
    assert record["message"] == "run r1 created"
    assert record["level"] == "INFO"
    assert record["logger"] == "driftloop.test"
    assert record["service"] == "tracking"
    assert record["run_id"] == "r1"
    assert str(record["time"]).endswith("+00:00")


def test_records_below_the_level_are_dropped() -> None:
    stream = io.StringIO()
    configure_logging(level="WARNING", fmt="json", service="tracking", stream=stream)

    logging.getLogger("driftloop.test").info("quiet")
    logging.getLogger("driftloop.test").warning("loud")

    assert [r["message"] for r in lines(stream)] == ["loud"]


def test_exceptions_are_logged_with_their_traceback() -> None:
    stream = io.StringIO()
    configure_logging(level="INFO", fmt="json", service="registry", stream=stream)

    try:
        raise ValueError("bad version")
    except ValueError:
        logging.getLogger("driftloop.test").exception("failed")

    [record] = lines(stream)
    assert "ValueError: bad version" in str(record["exc_info"])


def test_uvicorn_logs_go_through_the_same_json_handler() -> None:
    logging.getLogger("uvicorn.error").addHandler(logging.StreamHandler(io.StringIO()))
    stream = io.StringIO()
    configure_logging(level="INFO", fmt="json", service="serving", stream=stream)

    logging.getLogger("uvicorn.error").info("Application startup complete.")
    logging.getLogger("uvicorn.access").info('%s - "%s %s"', "127.0.0.1", "GET", "/healthz")

    records = lines(stream)
    assert [r["logger"] for r in records] == ["uvicorn.error", "uvicorn.access"]
    assert records[1]["message"] == '127.0.0.1 - "GET /healthz"'
    assert {r["service"] for r in records} == {"serving"}
    assert logging.getLogger("uvicorn.error").handlers == []


def test_reconfiguring_replaces_the_handler_instead_of_duplicating_lines() -> None:
    first, second = io.StringIO(), io.StringIO()
    configure_logging(level="INFO", fmt="json", service="monitor", stream=first)
    configure_logging(level="INFO", fmt="console", service="monitor", stream=second)

    logging.getLogger("driftloop.test").info("once")

    assert first.getvalue() == ""
    assert second.getvalue().count("once") == 1
    assert " monitor driftloop.test: once" in second.getvalue()
