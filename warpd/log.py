"""Structured logging with structlog.

JSON lines (orjson) for journald and files, readable key=value lines on a
TTY. Context that belongs to a message or a call (``message_id``,
``call_id``) is bound with :func:`structlog.contextvars.bound_contextvars` in
the task that handles it, so every line that task logs carries the id.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

import orjson
import structlog

LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


def configure(level: str, fmt: str, stream: TextIO | None = None) -> None:
    """Set up structlog (and the stdlib root logger used by libraries).

    Loggers are not cached, so calling this again on SIGHUP changes the level
    of every logger already handed out.
    """
    out = stream or sys.stderr
    use_console = fmt == "console" or (fmt == "auto" and out.isatty())
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: structlog.typing.Processor
    if use_console:
        renderer = structlog.dev.ConsoleRenderer(colors=False)
    else:
        shared.append(structlog.processors.format_exc_info)
        renderer = structlog.processors.JSONRenderer(serializer=_dumps)
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(LEVELS[level]),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )
    # asyncpg, aiohttp and aio-pika log through the stdlib; keep their warnings.
    logging.basicConfig(
        level=logging.WARNING,
        stream=out,
        format="%(levelname)s %(name)s: %(message)s",
        force=True,
    )


def _dumps(obj: object, **_: object) -> str:
    return orjson.dumps(obj, default=str).decode()
