"""The live debug log: every provider and store call, kept in memory and sent to `logging`.

Every message passes through `redact()` first, so a key can reach neither the
diagnostics view nor a log file, whatever a lower layer put in its text.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from .events import Subscribers
from .records import utcnow

__all__ = ["DebugLog", "LogEntry", "redact"]

_logger = logging.getLogger("soranb")
_KEY_PATTERNS = [
    re.compile(r"sk-[A-Za-z0-9_\-]{6,}"),  # OpenAI-style keys
    re.compile(r"sb_(?:secret|publishable)_[A-Za-z0-9_\-]{6,}"),  # Supabase's newer API keys
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._\-]{8,}"),
    re.compile(r"eyJ[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{6,}"),  # JWTs
    # Credentials inside a URL (`https://user:pass@host/v1`): keep the scheme, mask the user info.
    re.compile(r"(?i)(\b[a-z][a-z0-9+.\-]*://)[^\s/?#]+@"),
]


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` with known secret values and anything shaped like a key replaced by a mask.

    The one redactor of soranb: the debug log, the provider's and the store's error messages,
    the diagnostics and the notebook's toasts all pass their text through it.
    """
    for secret in sorted((s for s in secrets if s and len(s) >= 4), key=len, reverse=True):
        text = text.replace(secret, "[redacted]")
    for pattern in _KEY_PATTERNS:
        text = pattern.sub(lambda m: (m.group(1) if m.groups() else "") + "[redacted]" + _at(m), text)
    return text


def _at(match: re.Match[str]) -> str:
    return "@" if match.group(0).endswith("@") else ""


@dataclass(frozen=True)
class LogEntry:
    time: datetime
    level: str  # "DEBUG" | "INFO" | "WARNING" | "ERROR"
    message: str

    def format(self) -> str:
        return f"{self.time:%H:%M:%S.%f}"[:-3] + f" {self.level:<7} {self.message}"


class DebugLog:
    """A capped, thread-safe list of entries that views subscribe to."""

    def __init__(self, secrets: Iterable[str] = (), *, capacity: int = 1000) -> None:
        self._secrets = [s for s in secrets if s]
        self._entries: deque[LogEntry] = deque(maxlen=capacity)
        self._lock = threading.Lock()
        self._subscribers: Subscribers[LogEntry] = Subscribers()

    def add(self, level: str, message: str) -> LogEntry:
        entry = LogEntry(utcnow(), level.upper(), redact(message, self._secrets))
        with self._lock:
            self._entries.append(entry)
        _logger.log(logging.getLevelName(entry.level), "%s", entry.message)
        self._subscribers.emit(entry)
        return entry

    def debug(self, message: str) -> None:
        self.add("DEBUG", message)

    def info(self, message: str) -> None:
        self.add("INFO", message)

    def warning(self, message: str) -> None:
        self.add("WARNING", message)

    def error(self, message: str) -> None:
        self.add("ERROR", message)

    def entries(self) -> list[LogEntry]:
        with self._lock:
            return list(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def subscribe(self, callback: Callable[[LogEntry], None]) -> Callable[[], None]:
        return self._subscribers.subscribe(callback)
