"""Logging: JSON lines with bound context in production, console lines on a terminal."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from controller_common.logging import configure_logging, get_logger


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()


def lines(out: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.getvalue().splitlines() if line.strip()]


def test_json_when_not_a_tty_with_context_and_iso_timestamp() -> None:
    out = io.StringIO()
    configure_logging(stream=out)
    with structlog.contextvars.bound_contextvars(controller="c", key="ns/a"):
        get_logger("t").info("reconcile finished", result="success")
    (line,) = lines(out)
    assert line["event"] == "reconcile finished"
    assert line["controller"] == "c" and line["key"] == "ns/a" and line["result"] == "success"
    assert line["level"] == "info"
    assert str(line["timestamp"]).endswith("Z") and "T" in str(line["timestamp"])


def test_console_on_a_tty() -> None:
    out = Tty()
    configure_logging(stream=out)
    get_logger("t").info("hello", a=1)
    text = out.getvalue()
    assert "hello" in text and "a=1" in text
    with pytest.raises(json.JSONDecodeError):
        json.loads(text.splitlines()[0])


def test_level_filters_and_stdlib_logs_share_the_format() -> None:
    out = io.StringIO()
    configure_logging(level="warning", json=True, stream=out)
    get_logger("t").info("hidden")
    get_logger("t").warning("shown")
    logging.getLogger("some.library").error("stdlib %s", "message")
    assert [line["event"] for line in lines(out)] == ["shown", "stdlib message"]


def test_exceptions_render_without_locals() -> None:
    out = io.StringIO()
    configure_logging(json=True, stream=out)
    token = "s3cret"  # noqa: F841 - a local that must not leak into the log
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        get_logger("t").exception("failed")
    (line,) = lines(out)
    assert "RuntimeError" in json.dumps(line["exception"])
    assert "s3cret" not in out.getvalue()


def test_configure_is_idempotent() -> None:
    out = io.StringIO()
    configure_logging(json=True, stream=out)
    configure_logging(json=True, stream=out)
    get_logger("t").info("once")
    assert len(lines(out)) == 1


def test_unknown_level_is_rejected() -> None:
    with pytest.raises(ValueError):
        configure_logging(level="loud")
