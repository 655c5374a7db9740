"""Structured logging set up once per process, the same way in both controllers.

Why this exists: logs are read by machines in production (one JSON object per line on stdout)
and by people on a terminal (colourless key=value console lines). Context bound with
``structlog.contextvars`` (controller, key, reconcile_id — see :mod:`controller_common.engine`)
must appear on every line, including lines from the standard library ``logging`` module
(urllib3, kubernetes) routed through the same renderer.

Guarantees: :func:`configure_logging` is idempotent; timestamps are ISO 8601 UTC; exceptions
are rendered (a traceback dict in JSON, text on a console); unknown levels are rejected.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}


def _shared_processors() -> list[Any]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
    ]


def configure_logging(*, level: str = "info", json: bool | None = None, stream: Any = None) -> None:
    """Configure structlog and stdlib logging. ``json=None`` means JSON unless stdout is a TTY."""
    try:
        numeric = LEVELS[level.lower()]
    except KeyError:
        raise ValueError(f"unknown log level {level!r}: use one of {', '.join(LEVELS)}") from None
    out = stream if stream is not None else sys.stdout
    use_json = json if json is not None else not (hasattr(out, "isatty") and out.isatty())

    renderer: Any
    if use_json:
        renderer = structlog.processors.JSONRenderer()
        # No locals in tracebacks: they may hold tokens.
        tracebacks = structlog.processors.ExceptionRenderer(
            structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
        )
        final: list[Any] = [tracebacks, renderer]
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=False)
        final = [renderer]

    # stdlib loggers (urllib3, kubernetes) go through the same processors and renderer.
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_shared_processors(),
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *final],
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for existing in list(root.handlers):
        if getattr(existing, "_controller_common", False):
            root.removeHandler(existing)
    handler._controller_common = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(numeric)
    # The client library is chatty at DEBUG (every request header); keep it at WARNING.
    for noisy in ("urllib3", "kubernetes"):
        logging.getLogger(noisy).setLevel(max(numeric, logging.WARNING))

    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_shared_processors(),
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )


def get_logger(name: str | None = None, **initial: Any) -> Any:
    """A structlog logger named ``name`` with ``initial`` context bound."""
    logger = structlog.get_logger(name)
    return logger.bind(**initial) if initial else logger
