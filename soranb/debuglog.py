"""The live debug log: every provider and store call, kept in memory and sent to `logging`.

Every message passes through `redact()` first, so a key can reach neither the
diagnostics view nor a log file, whatever a lower layer put in its text.
"""

from __future__ import annotations

import base64
import functools
import logging
import re
import threading
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import unquote, urlsplit

from .events import Subscribers
from .records import utcnow

__all__ = ["DebugLog", "LogEntry", "redact", "url_secrets"]

_logger = logging.getLogger("soranb")
_KEY_PATTERNS = [
    re.compile(r"sk-[A-Za-z0-9_\-]{6,}"),  # OpenAI-style keys
    re.compile(r"sb_(?:secret|publishable)_[A-Za-z0-9_\-]{6,}"),  # Supabase's newer API keys
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._\-]{8,}"),
    re.compile(r"(?i)\b(basic\s+)(?=[A-Za-z0-9+/]*[0-9+/=])[A-Za-z0-9+/]{8,}=*"),  # base64 with a digit, + or /
    re.compile(r"eyJ[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{6,}"),  # JWTs
    # Credentials inside a URL (`https://user:pass@host/v1`): keep the scheme, mask the user info.
    re.compile(r"(?i)(\b[a-z][a-z0-9+.\-]*://)[^\s/?#]+@"),
]


# A credential header echoed back (`Name: value`, a dict's repr, JSON), of any scheme (Bearer, Basic,
# Digest, ...): its whole value is masked, up to its closing quote or, unquoted, to the end of the line.
_HEADER = re.compile(
    r"""(?i)\b((?:proxy-)?authorization|(?:x-)?api[-_]?key|apikey)\b(\\?["']?\s*[:=]\s*)"""
    r"""(?:(\\?["'])(?:(?!\3).)*\3|[^\r\n}]+)"""
)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` with known secret values (also as base64, as a Basic header carries them), credential
    headers and anything shaped like a key replaced by a mask.

    The one redactor of soranb: the debug log, the provider's and the store's error messages,
    the settings' secrets, the diagnostics and the notebook's toasts all pass their text through it.
    """
    for secret in sorted((s for s in secrets if s and len(s) >= 4), key=len, reverse=True):
        for form in (secret, *_base64_forms(secret)):
            text = text.replace(form, "[redacted]")
    text = _HEADER.sub(lambda m: f"{m.group(1)}{m.group(2)}{m.group(3) or ''}[redacted]{m.group(3) or ''}", text)
    for pattern in _KEY_PATTERNS:
        text = pattern.sub(lambda m: (m.group(1) if m.groups() else "") + "[redacted]" + _at(m), text)
    return text


def url_secrets(url: str | None) -> list[str]:
    """The credentials inside a URL (`https://user:pass@host`): `user:pass` (what a Basic header encodes)
    and the password, as written and percent-decoded; [] when it has none."""
    if not url:
        return []
    userinfo, at, _ = urlsplit(url.strip()).netloc.rpartition("@")
    if not at or not userinfo:
        return []
    password = userinfo.partition(":")[2]
    return sorted(f for f in {userinfo, unquote(userinfo), password, unquote(password)} if f)


@functools.lru_cache(maxsize=64)
def _base64_forms(secret: str) -> tuple[str, ...]:
    """The base64 text that `secret` becomes wherever it sits in encoded data (three byte alignments,
    standard and URL-safe alphabets): only the characters that depend on the secret alone."""
    data = secret.encode()
    forms: set[str] = set()
    for offset in range(3):
        encoded = base64.b64encode(bytes(offset) + data).decode()
        start, end = -(-8 * offset // 6), 8 * (offset + len(data)) // 6
        core = encoded[start:end]
        if len(core) >= 6:
            forms |= {core, core.translate(_URLSAFE)}
    return tuple(sorted(forms, key=len, reverse=True))


_URLSAFE = str.maketrans("+/", "-_")


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
