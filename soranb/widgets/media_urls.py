"""MediaUrls: the one cache of media URLs that every view (history, variation grid, compare) plays from.

A signed URL works for the store's `signed_url_ttl` seconds; a view that kept one longer would
show a player that answers 400. So a URL is reused only while it has at least a fifth of its TTL
(and at least `min_left_s`) left; after that the next view that shows it asks the service again.
A store whose URLs do not expire (the local store, served at `/soranb/media/...`) says so with a
TTL of None: its URLs are kept for good.

The views of one service share one cache (`shared_media_urls(service)`), so a URL renewed for the
history is the one the grid and the compare show too, and the service is asked once.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ..protocols import ServiceLike
from ._base import media_src

__all__ = ["MediaUrls", "shared_media_urls"]


@dataclass(frozen=True)
class _Entry:
    url: str
    expires_at: float | None  # on the cache's clock; None: it does not expire
    renew: bool = False  # Reload asked for a new one whatever its age


class MediaUrls:
    """Browser URLs of media keys, reused while they still have time left.

    `clock` is monotonic seconds (injectable: tests move it by hand). `min_left_s` and
    `fraction_left` are the margin: a URL with less than `max(ttl * fraction_left, min_left_s)`
    left is stale and asked for again.
    """

    def __init__(
        self,
        service: ServiceLike,
        clock: Callable[[], float] = time.monotonic,
        *,
        min_left_s: float = 30.0,
        fraction_left: float = 0.2,
    ) -> None:
        self.service = service
        self._clock = clock
        self.min_left_s = min_left_s
        self.fraction_left = fraction_left
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}

    def _margin(self, ttl: float) -> float:
        return max(ttl * self.fraction_left, self.min_left_s)

    def _fresh(self, entry: _Entry, now: float) -> bool:
        if entry.renew:
            return False
        if entry.expires_at is None:
            return True
        ttl = self.service.store.signed_url_ttl
        return entry.expires_at - now >= self._margin(ttl if ttl is not None else 0.0)

    def is_fresh(self, key: str) -> bool:
        """Whether the cached URL of `key` may still be shown (False when there is none)."""
        with self._lock:
            entry = self._entries.get(key)
        return entry is not None and self._fresh(entry, self._clock())

    def url(self, key: str) -> str:
        """The URL to show for `key`: the cached one while it has time left, else a new one from the service.

        The service is asked outside the lock (it may be slow); a store that hands back the very
        URL it gave before (it caches its own signatures) keeps that URL's first deadline.
        """
        now = self._clock()
        with self._lock:
            cached = self._entries.get(key)
        if cached is not None and self._fresh(cached, now):
            return cached.url
        ttl = self.service.store.signed_url_ttl
        url = media_src(self.service, key)
        if cached is not None and cached.url == url:
            entry = _Entry(url, cached.expires_at)  # the same signature: its deadline did not move
        else:
            entry = _Entry(url, None if ttl is None else now + ttl)
        with self._lock:
            self._entries[key] = entry
        return url

    def forget(self, keys: Iterable[str | None] | None = None) -> None:
        """Ask again for these keys (all when None) the next time they are shown: Reload.

        The old URL's deadline is kept: if the store answers with that same URL, it is not new.
        """
        with self._lock:
            for key in list(self._entries) if keys is None else keys:
                entry = self._entries.get(key) if key else None
                if key and entry is not None:
                    self._entries[key] = _Entry(entry.url, entry.expires_at, renew=True)


_shared: weakref.WeakKeyDictionary[ServiceLike, MediaUrls] = weakref.WeakKeyDictionary()
_shared_lock = threading.Lock()


def shared_media_urls(service: ServiceLike) -> MediaUrls:
    """The cache every view of `service` shares (made on first use, gone with the service)."""
    with _shared_lock:
        urls = _shared.get(service)
        if urls is None:
            urls = _shared[service] = MediaUrls(service)
        return urls
