"""The one shared service per kernel (or per CLI run): views and cells all use the same one."""

from __future__ import annotations

import threading

from .config import Settings
from .service import VideoService

__all__ = ["get_service", "reset_service"]

_lock = threading.Lock()
_service: VideoService | None = None


def get_service(settings: Settings | None = None) -> VideoService:
    """The shared service; built from `Settings.from_env()` on first use.

    Passing settings that differ from the current service's replaces it (the old
    one is closed; its open jobs are resumed by the new one from the store).
    """
    global _service
    with _lock:
        if _service is not None and (settings is None or settings == _service.settings):
            return _service
        if _service is not None:
            _service.close()
        _service = VideoService(settings or Settings.from_env())
        return _service


def reset_service() -> None:
    """Close the shared service (the next `get_service()` builds a new one)."""
    global _service
    with _lock:
        if _service is not None:
            _service.close()
        _service = None
