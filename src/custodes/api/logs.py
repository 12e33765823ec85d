"""The node's log: one handler on stderr, repeats rate-limited so no error can fill a disk.

Each line is text or, with ``log_format = "json"``, one JSON object (``time``,
``level``, ``logger``, ``message``, ``request_id``, any ``extra`` fields, and
``exception`` when there is one) for a log shipper to parse without a pattern. A record
made while a request is served carries that request's id (``REQUEST_ID``, set by
``custodes.api.request_ids``); elsewhere ``request_id`` is null.

``RepeatFilter`` lets the first ``burst`` identical records (same logger, level, text
and exception type) through per ``window`` seconds and counts the rest; the first one
through in the next window says how many were held back. Under descriptor exhaustion
or a flood of aborted uploads the log grows by a few lines a minute, not megabytes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import orjson

__all__ = [
    "REQUEST_ID",
    "JsonFormatter",
    "RepeatFilter",
    "RequestIdFilter",
    "TextFormatter",
    "logging_config",
]

REQUEST_ID: ContextVar[str | None] = ContextVar("custodes_request_id", default=None)
# What every LogRecord has: anything else on a record came from ``extra=``.
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "request_id"}

_MAX_KEYS = 4096


@dataclass
class _Window:
    start: float
    count: int = 0

    def held_back(self, burst: int) -> int:
        return max(0, self.count - burst)


class RepeatFilter(logging.Filter):
    def __init__(
        self, burst: int = 5, window: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__()
        self._burst = burst
        self._window = window
        self._clock = clock
        self._windows: dict[tuple[str, int, str, str], _Window] = {}
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        exc_type = record.exc_info[0].__name__ if record.exc_info and record.exc_info[0] else ""
        key = (record.name, record.levelno, record.getMessage()[:300], exc_type)
        now = self._clock()
        with self._lock:
            window = self._windows.get(key)
            if window is None or now - window.start >= self._window:
                held = window.held_back(self._burst) if window is not None else 0
                window = self._open(key, now)
                if held:
                    _note_held_back(record, held, self._window)
            window.count += 1
            return window.count <= self._burst

    def _open(self, key: tuple[str, int, str, str], now: float) -> _Window:
        if len(self._windows) >= _MAX_KEYS:  # forget finished windows before growing
            for old in [k for k, w in self._windows.items() if now - w.start >= self._window]:
                del self._windows[old]
        window = self._windows[key] = _Window(now)
        return window


def _note_held_back(record: logging.LogRecord, held: int, window: float) -> None:
    record.msg = f"{record.getMessage()} (and {held} more like it in the {window:.0f} s before)"
    record.args = None


class RequestIdFilter(logging.Filter):
    """Stamps each record with the id of the request being served (``None`` outside one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get()
        return True


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        request_id = getattr(record, "request_id", None)
        return line if request_id is None else f"{line} [request_id={request_id}]"


class JsonFormatter(logging.Formatter):
    """One JSON object per line; ``extra`` fields become keys of their own."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
        }
        entry |= {k: v for k, v in record.__dict__.items() if k not in _STANDARD}
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def logging_config(
    level: str = "warning",
    log_format: Literal["text", "json"] = "text",
    *,
    access_log: bool = False,
) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for ``custodes serve`` (uvicorn's loggers included).

    uvicorn's own access log stays off: ``custodes.access`` (one line per request, with
    its id, status and duration) replaces it when ``access_log`` is on.
    """
    formatter = JsonFormatter if log_format == "json" else TextFormatter
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": RequestIdFilter}, "repeats": {"()": RepeatFilter}},
        "formatters": {"line": {"()": formatter}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "line",
                "filters": ["request_id", "repeats"],
            }
        },
        "loggers": {
            "uvicorn": {"level": level.upper()},
            "uvicorn.access": {"level": "WARNING"},
            "custodes.access": {"level": "INFO" if access_log else "WARNING"},
        },
        "root": {"handlers": ["stderr"], "level": level.upper()},
    }
