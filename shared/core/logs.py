"""Logging set-up, called once from a ``main()``: one line per event, text or JSON.

>>> import io, json, logging
>>> stream = io.StringIO()
>>> configure_logging("INFO", "json", stream=stream)
>>> logging.getLogger("shared.demo").info("scored batch", extra={"partition": 2, "offset": 41})
>>> line = json.loads(stream.getvalue())
>>> line["msg"], line["partition"], line["offset"], line["level"]
('scored batch', 2, 41, 'INFO')
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any, TextIO

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, and every ``extra`` field."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                line[key] = value
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def configure_logging(level: str = "INFO", fmt: str = "text", stream: TextIO | None = None) -> None:
    """Send driftline's logs to ``stream`` (stderr by default), replacing earlier handlers."""
    handler = logging.StreamHandler(stream or sys.stderr)
    if fmt == "json":
        formatter: logging.Formatter = JsonFormatter()
        formatter.converter = time.gmtime
    else:
        formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    for name in ("shared", "services"):
        logging.getLogger(name).setLevel(level)
    # kafka-python logs every refused connection at ERROR while it retries; driftline translates
    # Kafka errors where it calls the client and logs them itself, so keep the client's own quiet.
    logging.getLogger("kafka").setLevel(logging.DEBUG if level == "DEBUG" else logging.CRITICAL)
