"""Application logging from the static `log` section: level, format and destination.

`configure_logging` sets up the `proxynow` logger once per process: Traefik's levels map
onto Python's (TRACE and DEBUG → DEBUG, WARN → WARNING, FATAL and PANIC → CRITICAL), the
`common` format is one human-readable line, `json` one JSON object per line, and
`filePath` sends the log to a file instead of stderr (opened for appending, so the control
plane and every worker write one file). `reopen_logging` (SIGUSR1, for logrotate) closes that
file and opens the path again; the handler also notices by itself that the file was moved.
`maxSize`, `maxAge`, `maxBackups` and `compress` (Traefik's built-in rotation) are not applied:
with several processes writing one file, rotation is left to logrotate and SIGUSR1.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import sys
from datetime import UTC, datetime

from proxynow.config.static import Log

__all__ = ["LEVELS", "JSONFormatter", "configure_logging", "reopen_logging"]

LEVELS = {
    "TRACE": logging.DEBUG,
    "DEBUG": logging.DEBUG,
    "INFO": logging.INFO,
    "WARN": logging.WARNING,
    "ERROR": logging.ERROR,
    "FATAL": logging.CRITICAL,
    "PANIC": logging.CRITICAL,
}
_SHORT = {"DEBUG": "DBG", "INFO": "INF", "WARNING": "WRN", "ERROR": "ERR", "CRITICAL": "FTL"}


class CommonFormatter(logging.Formatter):
    """`2026-01-02T03:04:05Z INF message logger=proxynow.x`, like Traefik's console log."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        level = _SHORT.get(record.levelname, record.levelname)
        line = f"{stamp} {level} {record.getMessage()} logger={record.name}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JSONFormatter(logging.Formatter):
    """One JSON object per line with `level`, `time`, `logger` and `message`."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "level": record.levelname.lower(),
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def configure_logging(log_config: Log) -> None:
    """Send the `proxynow` logger's records where `log_config` says, in its format."""
    logger = logging.getLogger("proxynow")
    for old in list(logger.handlers):
        logger.removeHandler(old)
        old.close()
    handler: logging.Handler
    if log_config.file_path:
        # Watched: a moved file is reopened at the next record, as after SIGUSR1.
        handler = logging.handlers.WatchedFileHandler(log_config.file_path, encoding="utf-8")
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JSONFormatter() if log_config.format == "json" else CommonFormatter())
    logger.addHandler(handler)
    logger.setLevel(LEVELS[log_config.level])
    logger.propagate = False


def reopen_logging() -> None:
    """Close the `proxynow` logger's file and open its path again (logrotate moved it)."""
    for handler in logging.getLogger("proxynow").handlers:
        if isinstance(handler, logging.handlers.WatchedFileHandler):
            handler.acquire()
            try:
                handler.reopenIfNeeded()
            finally:
                handler.release()
