from __future__ import annotations

import io

import orjson
import structlog

from warpd import log


class TTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_json_lines_carry_the_bound_message_id() -> None:
    out = io.StringIO()
    log.configure("info", "auto", out)
    logger = structlog.get_logger("t")
    with structlog.contextvars.bound_contextvars(message_id="m-1"):
        logger.info("submitted", parts=2)
    logger.debug("hidden")
    (line,) = out.getvalue().splitlines()
    record = orjson.loads(line)
    assert record["message_id"] == "m-1"
    assert (record["event"], record["parts"], record["level"]) == ("submitted", 2, "info")
    assert record["timestamp"].endswith("Z")


def test_level_changes_apply_to_existing_loggers_and_tty_is_readable() -> None:
    out = TTY()
    log.configure("warning", "auto", out)
    logger = structlog.get_logger("t")
    logger.info("quiet")
    log.configure("debug", "auto", out)
    with structlog.contextvars.bound_contextvars(call_id="c-9"):
        logger.debug("loud")
    text = out.getvalue()
    assert "quiet" not in text
    assert "loud" in text
    assert "call_id=c-9" in text
    assert not text.startswith("{")
