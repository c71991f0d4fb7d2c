"""The default store: SQLite (WAL) for records plus a media folder, all under one data folder.

    <data_dir>/soranb.db                 records (WAL: a CLI and a kernel can share it)
    <data_dir>/media/videos/<id>.mp4     media, named by record id only
    <data_dir>/media/thumbnails/<id>.webp
    <data_dir>/media/images/<id>.<ext>

SQLite work runs in a worker thread so the service's event loop never blocks on disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import os
import shutil
import sqlite3
import threading
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from ..config import make_data_dir
from ..errors import (
    RecordConflict,
    RecordNotFound,
    StoreCorrupt,
    StoreError,
    StoreUnavailable,
    StoreWriteFailed,
)
from ..files import written_whole
from ..leases import LEASE_LONGEST, holder_is_gone
from ..records import GenerationRecord, Status, utcnow
from .base import Admission, RecordQuery, Store, is_media_key, owned_media_keys, status_values

__all__ = ["LocalStore"]

T = TypeVar("T")
_COLUMNS = (
    "id", "prompt", "model", "size", "seconds", "status", "progress", "openai_job_id",
    "video_key", "thumbnail_key", "image_key", "image_filename", "error_message",
    "remixed_from", "metadata", "created_at", "updated_at",
    "tags", "favourite", "note",  # migration 1
    "lineage",  # migration 2
)  # fmt: skip
_SCHEMA = """
create table if not exists video_generations (
    id text primary key,
    prompt text not null,
    model text not null,
    size text not null,
    seconds integer not null,
    status text not null check (status in
        ('pending', 'processing', 'completed', 'failed', 'expired', 'cancelled')),
    progress integer not null default 0,
    openai_job_id text unique,
    video_key text,
    thumbnail_key text,
    image_key text,
    image_filename text,
    error_message text,
    remixed_from text,
    metadata text not null default '{}',
    created_at text not null,
    updated_at text not null,
    lease_owner text,
    lease_expires_at text
);
create index if not exists video_generations_status on video_generations (status);
create index if not exists video_generations_created_at on video_generations (created_at);
"""


# Each change to the table after the first release, in order: an existing soranb.db is upgraded in
# place when it is opened (its `user_version` says how far it is), and a new one runs them all.
# Append only (one tuple of statements per step); never edit a step that has shipped.
_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # 1. Tags (a JSON array of text), a favourite flag and a note per record: the prompt explorer.
    (
        "alter table video_generations add column tags text not null default '[]'",
        "alter table video_generations add column favourite integer not null default 0",
        "alter table video_generations add column note text",
        "create index if not exists video_generations_favourite on video_generations (favourite) where favourite",
    ),
    # 2. lineage: '<extend|edit>:<record id>' of the video a record extends or edits
    ("alter table video_generations add column lineage text",),
)


def _migrate(conn: sqlite3.Connection) -> None:
    """Bring the table up to date, one transaction per step, so a failed step leaves the file as it was."""
    version = conn.execute("pragma user_version").fetchone()[0]
    for number, statements in enumerate(_MIGRATIONS[version:], start=version + 1):
        conn.execute("begin immediate")
        try:
            if conn.execute("pragma user_version").fetchone()[0] < number:  # another process may have run it
                for statement in statements:
                    conn.execute(statement)
                conn.execute(f"pragma user_version = {number}")
            conn.execute("commit")
        except BaseException:
            conn.execute("rollback")
            raise


class LocalStore(Store):
    """Records in SQLite, media as files; the store a newcomer gets with no set-up."""

    name = "local"

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        self.db_path = self.data_dir / "soranb.db"
        self.media_dir = self.data_dir / "media"
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def describe(self) -> str:
        return f"local ({self.data_dir})"

    # -- lifecycle --------------------------------------------------------------
    async def open(self) -> None:
        await asyncio.to_thread(self._open_sync)

    def _open_sync(self) -> None:
        if self._conn is not None:
            return
        try:
            make_data_dir(self.data_dir)  # ConfigError for a folder someone else owns or could change
            for folder in (self.media_dir, *(self.media_dir / name for name in ("videos", "thumbnails", "images"))):
                folder.mkdir(mode=0o700, exist_ok=True)
        except OSError as exc:
            raise StoreUnavailable(
                f"cannot create the data folder {self.data_dir} ({exc.strerror or exc}); "
                "set SORANB_DATA_DIR to a folder you can write to"
            ) from None
        self._refuse_a_lost_history()
        try:
            conn = sqlite3.connect(self.db_path, check_same_thread=False, isolation_level=None, timeout=10)
        except sqlite3.Error as exc:
            raise StoreUnavailable(
                f"cannot open {self.db_path} ({exc}); set SORANB_DATA_DIR to a folder you can write to"
            ) from None
        try:
            conn.execute("pragma busy_timeout = 10000")
            check = conn.execute("pragma quick_check").fetchone()
            if check is None or check[0] != "ok":
                raise sqlite3.DatabaseError(check[0] if check else "quick_check returned nothing")
            conn.execute("pragma journal_mode = wal")
            conn.executescript(_SCHEMA)
            _migrate(conn)
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise self._translate(exc, opening=True) from None
        conn.text_factory = _text  # one undecodable value is that row's trouble, not the whole query's
        conn.create_function("soranb_fold", 1, _fold, deterministic=True)
        conn.create_function("soranb_holder_gone", 1, holder_is_gone)
        self._conn = conn

    def _refuse_a_lost_history(self) -> None:
        """Raise StoreCorrupt when soranb.db is missing or empty while media/videos holds videos.

        Opening it would start an empty history beside them (a failed copy, a full disk or a
        truncating tool leaves such a file): every video would vanish from view. Nothing is changed.
        """
        try:
            if self.db_path.stat().st_size > 0:
                return
        except FileNotFoundError:
            pass
        except OSError:
            return  # unreadable: opening it says why
        folder = self.media_dir / "videos"
        videos = sum(1 for p in folder.glob("*.mp4") if not p.name.startswith("."))
        if videos:
            state = "is empty (0 bytes)" if self.db_path.exists() else "is missing"
            raise StoreCorrupt(
                f"the history database {self.db_path} {state}, but {folder} holds {videos} video(s). "
                "soranb changed nothing: restore soranb.db from a backup, or move the media folder away "
                "(e.g. rename it to media.old) to start a new history"
            )

    async def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    # -- records ------------------------------------------------------------------
    async def insert(self, record: GenerationRecord, *, lease: tuple[str, timedelta] | None = None) -> GenerationRecord:
        await self._run(lambda c: _insert_row(c, record, lease))
        return record

    async def insert_admitted(self, record: GenerationRecord, admission: Admission) -> GenerationRecord:
        """The check and the insert in one write transaction (BEGIN IMMEDIATE): a second process's
        check waits until this one's record is in, then counts it."""

        def admit_and_insert(c: sqlite3.Connection) -> None:
            c.execute("begin immediate")
            try:
                rows = c.execute(
                    f"select {', '.join(_COLUMNS)} from video_generations where created_at >= ?",
                    (admission.since.astimezone(UTC).isoformat(),),
                ).fetchall()
                admission.check([_from_row(row) for row in rows])
                _insert_row(c, record, (admission.owner, admission.ttl))
                c.execute("commit")
            except BaseException:
                c.execute("rollback")
                raise

        await self._run(admit_and_insert)
        return record

    async def get(self, record_id: str) -> GenerationRecord:
        rows = await self._run(
            lambda c: c.execute(
                f"select {', '.join(_COLUMNS)} from video_generations where id = ?", (record_id,)
            ).fetchall()
        )
        if not rows:
            raise RecordNotFound(f"no record {record_id!r} in {self.describe()}")
        return _from_row(rows[0])

    async def update(
        self,
        record_id: str,
        changes: Mapping[str, Any],
        *,
        expect_status: Status | Iterable[Status] | None = None,
    ) -> GenerationRecord:
        values = _to_row_partial({**changes, "updated_at": changes.get("updated_at") or utcnow()})
        sql = f"update video_generations set {', '.join(f'{k} = ?' for k in values)} where id = ?"
        params: list[Any] = [*values.values(), record_id]
        expected = status_values(expect_status)
        if expected:
            sql += f" and status in ({', '.join('?' * len(expected))})"
            params += expected

        def apply(c: sqlite3.Connection) -> int:
            return c.execute(sql, params).rowcount

        if await self._run(apply) == 0:
            current = await self.get(record_id)  # raises RecordNotFound
            raise RecordConflict(
                f"record {record_id} is {current.status}, not {' or '.join(expected)}; it changed meanwhile"
            )
        return await self.get(record_id)

    async def query(self, query: RecordQuery) -> list[GenerationRecord]:
        where, params = _where(query)
        order = "desc" if query.newest_first else "asc"
        sql = (
            f"select {', '.join(_COLUMNS)} from video_generations {where} "
            f"order by created_at {order}, id {order} limit ? offset ?"
        )
        rows = await self._run(lambda c: c.execute(sql, [*params, query.limit, query.offset]).fetchall())
        return [_from_row(row) for row in rows]

    async def count(self, query: RecordQuery) -> int:
        where, params = _where(query)
        rows = await self._run(lambda c: c.execute(f"select count(*) from video_generations {where}", params))
        return int(rows.fetchone()[0])

    async def delete(self, record_id: str) -> None:
        record = await self.get(record_id)
        await self._run(lambda c: c.execute("delete from video_generations where id = ?", (record_id,)))
        for key in owned_media_keys(record):
            await self.delete_media(key)

    # -- leases ---------------------------------------------------------------------
    async def claim(self, record_id: str, owner: str, ttl: timedelta, *, expect_status: Status | None = None) -> bool:
        """One statement checks the lease (free, expired, own, or its holder gone) and the status."""
        now = utcnow()
        sql = (
            "update video_generations set lease_owner = ?, lease_expires_at = ? where id = ? "
            "and (lease_owner is null or lease_owner = ? or lease_expires_at < ? or lease_expires_at > ? "
            "or soranb_holder_gone(lease_owner))"
        )
        far = (now + LEASE_LONGEST).isoformat()
        params: list[Any] = [owner, (now + ttl).isoformat(), record_id, owner, now.isoformat(), far]
        if expect_status is not None:
            sql += " and status = ?"
            params.append(Status(expect_status).value)
        return bool(await self._run(lambda c: c.execute(sql, params).rowcount))

    async def release(self, record_id: str, owner: str) -> None:
        sql = (
            "update video_generations set lease_owner = null, lease_expires_at = null where id = ? and lease_owner = ?"
        )
        await self._run(lambda c: c.execute(sql, (record_id, owner)))

    # -- media --------------------------------------------------------------------------
    def local_path(self, key: str) -> Path:
        """Where a media key lives in the media folder (ValueError for anything that is not a media key)."""
        if not is_media_key(key):
            raise ValueError(f"not a soranb media key: {key!r}")
        return self.media_dir / key

    async def put_media(self, key: str, source: Path, content_type: str) -> None:
        dest = self.local_path(key)
        try:
            await asyncio.to_thread(_move_into_place, Path(source), dest)
        except OSError as exc:
            why = "the disk is full" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else (exc.strerror or str(exc))
            raise StoreWriteFailed(self._write_hint(why)) from None

    async def media_url(self, key: str) -> str:
        return self.local_path(key).resolve().as_uri()

    async def fetch_media(self, key: str, dest: Path) -> Path:
        source = self.local_path(key)
        if not source.is_file():
            raise RecordNotFound(f"no media {key!r} in {self.describe()}")
        await asyncio.to_thread(shutil.copyfile, source, dest)
        return dest

    async def delete_media(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.local_path(key).unlink()

    async def check_schema(self) -> list[str]:
        rows = await self._run(lambda c: c.execute("pragma table_info(video_generations)").fetchall())
        present = {row[1] for row in rows}
        expected = {*_COLUMNS, "lease_owner", "lease_expires_at"}
        problems = [
            f"column {name} is missing from {self.db_path}; move the file aside to let soranb recreate it"
            for name in sorted(expected - present)
        ]
        problems += [
            f"media folder {self.media_dir / folder} is missing"
            for folder in ("videos", "thumbnails", "images")
            if not (self.media_dir / folder).is_dir()
        ]
        return problems

    # -- plumbing ---------------------------------------------------------------------------
    async def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        if self._conn is None:
            await self.open()
        return await asyncio.to_thread(self._run_sync, work)

    def _run_sync(self, work: Callable[[sqlite3.Connection], T]) -> T:
        with self._lock:
            conn = self._conn
            if conn is None:
                raise StoreUnavailable(f"{self.describe()} is closed")
            try:
                return work(conn)
            except sqlite3.IntegrityError as exc:
                raise RecordConflict(f"{exc}") from None
            except sqlite3.DatabaseError as exc:
                raise self._translate(exc) from None

    def _translate(self, exc: sqlite3.Error, *, opening: bool = False) -> StoreError:
        """SQLite's error code (never its message text) says which `StoreError` this is.

        A full disk or a read-only folder must never be called damage: that advice would make
        a user throw a good history away.
        """
        code = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF
        if code == sqlite3.SQLITE_IOERR:  # the OS said no: find out why from the folder itself
            code = _disk_trouble(self.data_dir) or code
        if code in (sqlite3.SQLITE_FULL, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_PERM, sqlite3.SQLITE_CANTOPEN):
            why = "the disk is full" if code == sqlite3.SQLITE_FULL else "the folder cannot be written to"
            return StoreWriteFailed(self._write_hint(why))
        if code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
            return StoreUnavailable(f"{self.db_path} is locked by another process ({exc}); try again in a moment")
        if code == sqlite3.SQLITE_IOERR:
            return StoreUnavailable(f"the disk under {self.db_path} reported an I/O error ({exc}); check the disk")
        if code in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB) or (opening and code == 0):
            return StoreCorrupt(
                f"the history database {self.db_path} is damaged ({exc}). soranb changed nothing: "
                "move it aside (e.g. rename it to soranb.db.broken) to start a new history, "
                "or restore it from a backup"
            )
        return StoreCorrupt(f"the history database {self.db_path} failed: {exc}")

    def _write_hint(self, reason: str) -> str:
        return (
            f"cannot write to {self.data_dir} ({reason}); free some disk space or set "
            "SORANB_DATA_DIR to a writable folder. Records already stored are unchanged."
        )


def _disk_trouble(folder: Path) -> int | None:
    """SQLITE_FULL or SQLITE_READONLY when the folder itself shows why a write failed, else None."""
    with contextlib.suppress(OSError):
        if shutil.disk_usage(folder).free < 1024 * 1024:
            return sqlite3.SQLITE_FULL
        if not os.access(folder, os.W_OK):
            return sqlite3.SQLITE_READONLY
    return None


def _move_into_place(source: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    with written_whole(dest) as partial:
        shutil.move(source, partial)  # a rename on one filesystem, a streamed copy across


def _where(query: RecordQuery) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if query.statuses:
        clauses.append(f"status in ({', '.join('?' * len(query.statuses))})")
        params += sorted(s.value for s in query.statuses)
    if query.model:
        clauses.append("model = ?")
        params.append(query.model)
    if query.search:
        clauses.append("instr(soranb_fold(cast(prompt as blob)), ?) > 0")  # literal: % and _ mean themselves
        params.append(query.search.casefold())
    if query.since is not None:
        clauses.append("created_at >= ?")  # every stamp is stored as UTC ISO text, which sorts as time
        params.append(query.since.astimezone(UTC).isoformat())
    if query.ids is not None:
        clauses.append(f"id in ({', '.join('?' * len(query.ids))})" if query.ids else "0")
        params += sorted(query.ids)
    for tag in sorted(query.tags or ()):
        clauses.append(  # `case` first: a damaged tags text is "not tagged", not an error for every row
            "(case when json_valid(tags) then exists "
            "(select 1 from json_each(video_generations.tags) where value = ?) end) is 1"
        )
        params.append(tag)
    if query.favourite is not None:
        clauses.append("favourite = ?")
        params.append(int(query.favourite))
    if query.diagnostic is not None:  # `case` first: a damaged metadata text is "not a diagnostic", not an error
        marked = "(case when json_valid(metadata) then json_type(metadata, '$.diagnostic') end) is 'true'"
        clauses.append(marked if query.diagnostic else f"not {marked}")
    return ("where " + " and ".join(clauses)) if clauses else "", params


def _insert_row(c: sqlite3.Connection, record: GenerationRecord, lease: tuple[str, timedelta] | None) -> None:
    row = _to_row(record)
    if lease is not None:
        row |= {"lease_owner": lease[0], "lease_expires_at": (utcnow() + lease[1]).isoformat()}
    c.execute(
        f"insert into video_generations ({', '.join(row)}) values ({', '.join('?' * len(row))})", tuple(row.values())
    )


def _to_row(record: GenerationRecord) -> dict[str, Any]:
    return _to_row_partial({name: getattr(record, name) for name in _COLUMNS})


def _to_row_partial(values: Mapping[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for name, value in values.items():
        if name not in _COLUMNS:
            raise ValueError(f"unknown record field {name!r}")
        if name == "metadata":
            value = json.dumps(value or {})
        elif name == "tags":
            value = json.dumps(list(value or ()))
        elif name == "favourite":
            value = int(bool(value))
        elif isinstance(value, datetime):
            value = value.isoformat()
        elif isinstance(value, Status):
            value = value.value
        row[name] = value
    return row


def _from_row(row: tuple[Any, ...]) -> GenerationRecord:
    """The record of a row; a damaged row becomes a failed record that says why (see `unreadable`)."""
    data = dict(zip(_COLUMNS, row, strict=False))
    try:
        if len(row) != len(_COLUMNS):
            raise ValueError(f"{len(row)} columns instead of {len(_COLUMNS)}")
        _check_types(data)
        data["metadata"] = json.loads(data["metadata"] or "{}")
        if not isinstance(data["metadata"], dict):
            raise ValueError("metadata is not a JSON object")
        data["tags"] = json.loads(data["tags"] or "[]")
        if not isinstance(data["tags"], list) or not all(isinstance(t, str) for t in data["tags"]):
            raise ValueError("tags is not a JSON array of text")
        for name in ("video_key", "thumbnail_key", "image_key"):
            if data[name] is not None and not (isinstance(data[name], str) and is_media_key(data[name])):
                raise ValueError(f"{name} is not a media key")
        return GenerationRecord.from_dict(data)
    except (KeyError, TypeError, ValueError) as exc:
        shown = {k: v.decode("utf-8", "replace") if isinstance(v, bytes) else v for k, v in data.items()}
        return GenerationRecord.unreadable(shown, _why(exc))


_WHOLE_NUMBERS = frozenset({"seconds", "progress", "favourite"})


def _check_types(data: Mapping[str, Any]) -> None:
    """Raise ValueError naming the first column whose stored value has the wrong type.

    SQLite keeps whatever a damaged page or another tool wrote ('half' in an integer column, a blob
    in a text one); a record built from it would fail later, far from here, for every view.
    """
    for name, value in data.items():
        if isinstance(value, bytes):
            kind = "a blob, not text" if isinstance(_text(value), str) else "not valid UTF-8 text"
            raise ValueError(f"{name} is {kind}")
        if name in _WHOLE_NUMBERS:
            if not isinstance(value, int):
                raise ValueError(f"{name} is not a whole number")
        elif value is not None and not isinstance(value, str):
            raise ValueError(f"{name} is not text")


def _text(raw: bytes) -> str | bytes:
    """SQLite's text as str, or the raw bytes when they are not UTF-8 (`_check_types` names the column).

    sqlite3's own decoding raises for the whole query, so one scribbled prompt hid every record.
    """
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw


def _fold(raw: bytes | None) -> str:
    """The prompt for a case-blind search, read from its bytes so a damaged one never fails the query."""
    return raw.decode("utf-8", "replace").casefold() if raw else ""


def _why(exc: BaseException) -> str:
    """A short reason for an unreadable row (a missing column is a KeyError)."""
    return f"missing {exc}" if isinstance(exc, KeyError) else str(exc)
