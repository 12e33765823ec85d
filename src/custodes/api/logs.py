"""The node's log: one handler on stderr, repeats rate-limited so no error can fill a disk.

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
from dataclasses import dataclass
from typing import Any

__all__ = ["RepeatFilter", "logging_config"]

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


def logging_config(level: str = "warning") -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for ``custodes serve`` (uvicorn's loggers included)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"repeats": {"()": RepeatFilter}},
        "formatters": {"line": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "line",
                "filters": ["repeats"],
            }
        },
        "loggers": {
            "uvicorn": {"level": level.upper()},
            "uvicorn.access": {"level": "WARNING"},
        },
        "root": {"handlers": ["stderr"], "level": level.upper()},
    }
