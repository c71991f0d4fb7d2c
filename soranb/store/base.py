"""The one interface every history store implements (local SQLite, Supabase).

It is small and async on purpose: the service is its only caller, and each
method is one round trip a remote store can do atomically.
"""

from __future__ import annotations

import abc
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from ..records import GenerationRecord, Status

__all__ = [
    "Admission",
    "MediaKind",
    "RecordQuery",
    "Store",
    "is_diagnostic",
    "is_media_key",
    "media_key",
    "owned_media_keys",
    "status_values",
]

# Which bucket/folder a media key lives in.
MediaKind = str  # "videos" | "thumbnails" | "images"
_EXTENSIONS = {"videos": ".mp4", "thumbnails": ".webp", "images": ""}
# A folder, then one name that neither starts with a dot nor holds a slash: never a path out of the store.
_MEDIA_KEY = re.compile(r"(videos|thumbnails|images)/[A-Za-z0-9_-][A-Za-z0-9._-]*")


def is_media_key(value: object) -> bool:
    """True for a store's own media key (`videos/<id>.mp4`): the one check every store and view uses."""
    return isinstance(value, str) and _MEDIA_KEY.fullmatch(value) is not None


def media_key(kind: MediaKind, record_id: str, suffix: str = "") -> str:
    """The fixed key of a record's media: a retried upload overwrites, never duplicates.

    The key is built from the record id (a uuid) only; user text never becomes a path.
    """
    if kind not in _EXTENSIONS:
        raise ValueError(f"unknown media kind {kind!r}")
    ext = _EXTENSIONS[kind] or suffix
    if ext and not ext.startswith("."):
        ext = "." + ext
    if not ext.replace(".", "").isalnum():
        raise ValueError(f"bad media suffix {suffix!r}")
    return f"{kind}/{record_id}{ext.lower()}"


def owned_media_keys(record: GenerationRecord) -> list[str]:
    """Every media object a record owns, to delete with it: its video, thumbnail and starting image,
    and the spritesheet its metadata names (only when that is one of our keys: a row can say anything)."""
    sheet = record.metadata.get("spritesheet") if isinstance(record.metadata, dict) else None
    sprites = sheet.get("key") if isinstance(sheet, dict) else None
    keys = [k for k in (record.video_key, record.thumbnail_key, record.image_key) if k]
    return [*keys, sprites] if isinstance(sprites, str) and is_media_key(sprites) else keys


def status_values(expect: Status | Iterable[Status] | None) -> list[str]:
    """The stored values of a compare-and-set's expected statuses ([] when any status will do)."""
    if expect is None:
        return []
    if isinstance(expect, str):
        return [Status(expect).value]
    return [Status(s).value for s in expect]


@dataclass(frozen=True)
class RecordQuery:
    """A page of history: filters, then newest first (or oldest first), then offset/limit."""

    statuses: frozenset[Status] | None = None
    model: str | None = None
    search: str | None = None  # case-insensitive substring of the prompt
    since: datetime | None = None  # only records created at or after this moment (timezone-aware)
    ids: frozenset[str] | None = None  # only these record ids
    tags: frozenset[str] | None = None  # only records carrying every one of these tags
    favourite: bool | None = None  # True: only favourites; False: only the others
    diagnostic: bool | None = None  # records a diagnostics check made (metadata.diagnostic is true); False: the others
    limit: int = 50
    offset: int = 0
    newest_first: bool = True

    @classmethod
    def open_jobs(cls, limit: int = 1000) -> RecordQuery:
        return cls(statuses=frozenset({Status.PENDING, Status.PROCESSING}), limit=limit, newest_first=False)

    def matches(self, record: GenerationRecord) -> bool:
        """Whether `record` passes the filters (offset/limit aside), by the stores' own rules: a search
        is a literal, casefolded substring ("STRASSE" finds "straße"), as the local store's SQL has it.

        For views that place a record an event announced without asking the store again.
        """
        return (
            (self.statuses is None or record.status in self.statuses)
            and (self.model is None or record.model == self.model)
            and (not self.search or self.search.casefold() in record.prompt.casefold())
            and (self.since is None or record.created_at >= self.since)
            and (self.ids is None or record.id in self.ids)
            and (not self.tags or self.tags <= set(record.tags))
            and (self.favourite is None or record.favourite == self.favourite)
            and (self.diagnostic is None or is_diagnostic(record) == self.diagnostic)
        )


@dataclass(frozen=True)
class Admission:
    """What a new record must pass to be stored (`Store.insert_admitted`): `check` is given the records
    created since `since` (the new one not among them) and raises to refuse it, as the budget does.
    The record is stored leased to `owner` for `ttl`, so no other service sends it meanwhile."""

    check: Callable[[list[GenerationRecord]], None]
    since: datetime
    owner: str
    ttl: timedelta


def is_diagnostic(record: GenerationRecord) -> bool:
    """Made by a diagnostics check: `metadata.diagnostic` is JSON true (the rule both stores' SQL keeps)."""
    return isinstance(record.metadata, dict) and record.metadata.get("diagnostic") is True


_PAGE = 1000


class Store(abc.ABC):
    """Where records and their media live. Every method may raise a `StoreError`."""

    name: str = "store"

    @property
    def user_id(self) -> str | None:
        """The signed-in user of a shared store; None when the store has one owner."""
        return None

    @property
    def signed_url_ttl(self) -> int | None:
        """Seconds a media URL works; None when it does not expire."""
        return None

    def single_user_warning(self) -> str | None:
        """What `soranb doctor` says when anyone holding the project's public key reads and writes every row."""
        return None

    @property
    def vouches_for_rows(self) -> bool:
        """Whether every row here was written by this store's user (a local data folder; a per-user
        project under row-level security): a pending row soranb's send ledger does not know may then
        be sent. A store anyone with a public key can write does not (`soranb.sends`)."""
        return True

    def may_submit(self, record: GenerationRecord) -> bool:
        """Whether a service on this store may send this pending record to its provider (see
        `soranb.provenance`): a local store holds only what this machine wrote."""
        return True

    async def open(self) -> None:  # noqa: B027 - optional hook
        """Connect and make sure the schema is there (idempotent)."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections and clients."""

    # -- records -----------------------------------------------------------
    @abc.abstractmethod
    async def insert(self, record: GenerationRecord, *, lease: tuple[str, timedelta] | None = None) -> GenerationRecord:
        """Store a new record; with `lease` (owner, ttl) it is stored already leased to that owner."""

    async def insert_admitted(self, record: GenerationRecord, admission: Admission) -> GenerationRecord:
        """Insert `record` only if `admission.check` passes, as one step no other process or machine
        can pass at the same moment (the budget: two processes never both fit the last dollar).

        This version suits any store whose reads see every write before them (one database): it
        checks, inserts (leased, so nobody sends it yet), then checks again with everything stored
        by then. Of two records inserted at once, the one whose second check sees the other is the
        one that goes over; it is deleted and refused. Both may be refused near the limit, but never
        both stored. A store with transactions of its own (the local store) does it in one.
        """
        admission.check(await self.created_since(admission.since))
        stored = await self.insert(record, lease=(admission.owner, admission.ttl))
        try:
            admission.check([r for r in await self.created_since(admission.since) if r.id != record.id])
        except BaseException:
            await self.delete(record.id)
            raise
        return stored

    async def created_since(self, since: datetime) -> list[GenerationRecord]:
        """Every record created at or after `since` (read a page at a time)."""
        found: list[GenerationRecord] = []
        while True:
            page = await self.query(RecordQuery(since=since, limit=_PAGE, offset=len(found)))
            found += page
            if len(page) < _PAGE:
                return found

    @abc.abstractmethod
    async def get(self, record_id: str) -> GenerationRecord:
        """The record, or `RecordNotFound`."""

    @abc.abstractmethod
    async def update(
        self,
        record_id: str,
        changes: Mapping[str, Any],
        *,
        expect_status: Status | Iterable[Status] | None = None,
    ) -> GenerationRecord:
        """Apply `changes` (field -> value) and bump `updated_at`.

        With `expect_status`, this is a compare-and-set: when the stored status is
        not one of those, nothing changes and `RecordConflict` is raised.
        """

    @abc.abstractmethod
    async def query(self, query: RecordQuery) -> list[GenerationRecord]: ...

    @abc.abstractmethod
    async def count(self, query: RecordQuery) -> int:
        """How many records match the filters of `query` (offset/limit ignored)."""

    @abc.abstractmethod
    async def delete(self, record_id: str) -> None:
        """Remove the record and all its media; `RecordNotFound` if it is not there."""

    # -- leases: two services on one store never do the same job twice --------
    @abc.abstractmethod
    async def claim(self, record_id: str, owner: str, ttl: timedelta, *, expect_status: Status | None = None) -> bool:
        """Take the lease on a record for `ttl` if nobody else holds a live one.

        True when `owner` now holds it (re-claiming your own lease extends it: the heartbeat).
        A lease is free when nobody holds it, when it has expired, or when its holder is a process
        on this machine that is gone (`runner.holder_is_gone`). With `expect_status`, the record
        must also have that status, checked in the same statement where the store allows it.
        """

    @abc.abstractmethod
    async def release(self, record_id: str, owner: str) -> None:
        """Give the lease back (no-op if `owner` does not hold it)."""

    # -- media ---------------------------------------------------------------
    @abc.abstractmethod
    async def put_media(self, key: str, source: Path, content_type: str) -> None:
        """Store the file at `source` under `key`, streaming (never all in memory).

        The source file may be moved or removed by the store.
        """

    def local_path(self, key: str) -> Path | None:
        """The file of a media key on this machine, for a store that keeps its media here; else None.

        Players, reports and the CLI show a local file directly instead of asking for a URL.
        """
        return None

    @abc.abstractmethod
    async def media_url(self, key: str) -> str:
        """A URL a browser can play or download the object from."""

    @abc.abstractmethod
    async def fetch_media(self, key: str, dest: Path) -> Path:
        """Copy the object to `dest` (streaming) and return `dest`."""

    @abc.abstractmethod
    async def delete_media(self, key: str) -> None:
        """Remove an object; missing objects are not an error."""

    # -- diagnostics -----------------------------------------------------------
    @abc.abstractmethod
    async def check_schema(self) -> list[str]:
        """What is missing or wrong, each as a sentence that says how to fix it; [] when fine."""

    def describe(self) -> str:
        """One line for the set-up cell: which store, where."""
        return self.name
