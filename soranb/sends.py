"""The send ledger: which records this installation sent, kept where no one else can write.

A shared store's rows can be changed by anyone who holds its public key (a single-user Supabase
project): a finished row flipped back to `pending`, its job id cleared, its metadata stripped.
Judged by the row alone, that is a job never sent, and sending it bills the owner again. So the
decision to send is taken from this ledger, a SQLite file in the data folder (`sends.db`), never
from the row:

- `stored`: the service writes an entry as it stores a record (with a fingerprint of what decides
  the job, keyed by the installation secret, and its price for the budget), so only records this
  installation made are sent, a record changed since is not, and a deleted one still counts;
- `begin` turns `stored` into `attempted` in one transaction, before the create call: a second
  process gets `retry` (look the job up first, never create blindly), never a second `first`;
- `created` / `ended` close the entry for good: a row that comes back pending was changed outside
  soranb (or soranb stopped before noting its job): it follows the job it had, or ends with an
  error, and is never sent again.

A row with no entry was not stored through this ledger. It is sent only where the store vouches
for its rows (the local store, or a per-user project under row-level security); on a single-user
project only rows that were pending and signed by this installation when the ledger was first
opened there are taken over (`adopt`).
"""

from __future__ import annotations

import asyncio
import enum
import functools
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TypeVar

from .errors import StoreUnavailable
from .provenance import fingerprint, installation_secret, is_signed_by
from .records import GenerationRecord

__all__ = ["Permit", "SendLedger", "Verdict"]

T = TypeVar("T")

_SCHEMA = """
create table if not exists sends (
    record_id text primary key,
    state text not null check (state in ('stored', 'attempted', 'created', 'ended')),
    fingerprint text,
    job_id text,
    attempted_at real,
    updated_at real not null,
    cost text,  -- list price in USD when stored: what the budget counts, whatever the row says later
    stored_at real,
    scope text  -- whose budget it counts against: the store, and the signed-in user of a shared one
);
create table if not exists adopted (store text primary key, at real not null);
"""


class Verdict(enum.Enum):
    FIRST = "first"  # never sent: send it
    RETRY = "retry"  # sent before without an answer: look the job up before sending again
    DONE = "done"  # it has (or had) a job, or was refused: never sent again
    CHANGED = "changed"  # what decides its job changed since this installation stored it
    FOREIGN = "foreign"  # not stored by this installation, and the store does not vouch for it


@dataclass(frozen=True)
class Permit:
    verdict: Verdict
    job_id: str | None = None  # DONE: the job it had
    attempted_at: float | None = None  # RETRY: when it was first sent

    @property
    def may_send(self) -> bool:
        return self.verdict in (Verdict.FIRST, Verdict.RETRY)


class SendLedger:
    """One installation's record of what it stored and sent; every call is one short transaction."""

    FILE = "sends.db"

    def __init__(self, data_dir: Path, secret: bytes | None = None) -> None:
        self.path = Path(data_dir) / self.FILE
        self._given_secret = secret  # else the installation's, read (or made) on first use
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    # -- what the service and the runner ask ------------------------------------------
    async def stored(self, record: GenerationRecord, scope: str) -> None:
        """This installation stored `record` (in `scope`, see `spent_since`): it may be sent, as it is now,
        and it costs its price."""
        sql = (
            "insert or ignore into sends (record_id, state, fingerprint, updated_at, cost, stored_at, scope) "
            "values (?, 'stored', ?, ?, ?, ?, ?)"
        )
        now = time.time()
        print_ = fingerprint(self._secret, record)
        await self._run(lambda c: c.execute(sql, (record.id, print_, now, str(record.cost), now, scope)))

    async def spent_since(self, since: float, scope: str) -> dict[str, Decimal]:
        """What this installation stored in `scope` (a store, and its signed-in user) since `since` (unix
        time) and may have paid for, by record id: all but what ended without a job. The budget counts
        these whatever their rows say now (or if deleted)."""
        sql = (
            "select record_id, cost from sends where stored_at >= ? and scope = ? and cost is not null "
            "and not (state = 'ended' and job_id is null)"
        )
        rows = await self._run(lambda c: c.execute(sql, (since, scope)).fetchall())
        return {record_id: Decimal(cost) for record_id, cost in rows}

    async def judge(self, record: GenerationRecord, *, vouched: bool) -> Permit:
        """What may be done with a pending record, without taking it (the poll step's filter)."""
        return await self._run(lambda c: self._judge(c, record, vouched))

    async def begin(self, record: GenerationRecord, *, vouched: bool) -> Permit:
        """Decide, in one transaction, whether this attempt may send `record`; a permit to send
        marks it `attempted` first, so no other attempt is ever a `first`."""

        def decide(c: sqlite3.Connection) -> Permit:
            c.execute("begin immediate")
            try:
                permit = self._judge(c, record, vouched)
                if permit.may_send:
                    now = time.time()
                    c.execute(
                        "insert into sends (record_id, state, fingerprint, attempted_at, updated_at) "
                        "values (?, 'attempted', ?, ?, ?) on conflict (record_id) do update set "
                        "state = 'attempted', attempted_at = coalesce(sends.attempted_at, ?), updated_at = ?",
                        (record.id, fingerprint(self._secret, record), now, now, now, now),
                    )
                c.execute("commit")
                return permit
            except BaseException:
                c.execute("rollback")
                raise

        return await self._run(decide)

    async def created(self, record_id: str, job_id: str) -> None:
        """The record has its job: it is never sent again."""
        await self._close(record_id, "created", job_id)

    async def ended(self, record_id: str) -> None:
        """The record was refused or given up without a job: it is never sent again."""
        await self._close(record_id, "ended", None)

    async def adopt(self, store_name: str, pending: list[GenerationRecord]) -> None:
        """Take over, once per store, the pending rows this installation signed before it had a ledger."""

        def take(c: sqlite3.Connection) -> None:
            c.execute("begin immediate")
            try:
                if c.execute("select 1 from adopted where store = ?", (store_name,)).fetchone() is None:
                    now = time.time()
                    for record in pending:
                        if is_signed_by(self._secret, record):
                            c.execute(
                                "insert or ignore into sends (record_id, state, fingerprint, updated_at) "
                                "values (?, 'stored', ?, ?)",
                                (record.id, fingerprint(self._secret, record), now),
                            )
                    c.execute("insert into adopted (store, at) values (?, ?)", (store_name, now))
                c.execute("commit")
            except BaseException:
                c.execute("rollback")
                raise

        await self._run(take)

    async def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    # -- plumbing -------------------------------------------------------------------------
    @functools.cached_property
    def _secret(self) -> bytes:
        if self._given_secret is not None:
            return self._given_secret
        try:
            return installation_secret(self.path.parent)
        except OSError as exc:
            raise StoreUnavailable(
                f"cannot read or make this installation's key in {self.path.parent} ({exc.strerror or exc}); "
                "soranb sends nothing without it: set SORANB_DATA_DIR to a folder of yours you can write to"
            ) from None

    def _judge(self, c: sqlite3.Connection, record: GenerationRecord, vouched: bool) -> Permit:
        row = c.execute(
            "select state, fingerprint, job_id, attempted_at from sends where record_id = ?", (record.id,)
        ).fetchone()
        if row is None:
            return Permit(Verdict.FIRST if vouched else Verdict.FOREIGN)
        state, stored_print, job_id, attempted_at = row
        if state in ("created", "ended"):
            return Permit(Verdict.DONE, job_id=job_id)
        if stored_print != fingerprint(self._secret, record):  # none at all: not an entry soranb wrote
            return Permit(Verdict.CHANGED)
        if state == "attempted":
            return Permit(Verdict.RETRY, attempted_at=attempted_at)
        return Permit(Verdict.FIRST)

    async def _close(self, record_id: str, state: str, job_id: str | None) -> None:
        sql = (
            "insert into sends (record_id, state, job_id, updated_at) values (?, ?, ?, ?) "
            "on conflict (record_id) do update set state = excluded.state, "
            "job_id = coalesce(excluded.job_id, sends.job_id), updated_at = excluded.updated_at"
        )
        await self._run(lambda c: c.execute(sql, (record_id, state, job_id, time.time())))

    async def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        return await asyncio.to_thread(self._run_sync, work)

    def _run_sync(self, work: Callable[[sqlite3.Connection], T]) -> T:
        with self._lock:
            if self._conn is None:
                self._conn = self._connect()
            try:
                return work(self._conn)
            except sqlite3.Error as exc:
                raise StoreUnavailable(
                    f"soranb's send ledger {self.path} failed ({exc}); nothing new is sent until it works. "
                    "Restore it from a backup, or move it aside together with "
                    f"{self._made.name} to start a new one"
                ) from None

    @property
    def _made(self) -> Path:
        """Left beside the ledger when it is first made: a ledger that is gone or empty later was lost."""
        return self.path.with_name(self.FILE + ".made")

    def _connect(self) -> sqlite3.Connection:
        lost = self._made.exists() and (not self.path.exists() or self.path.stat().st_size == 0)
        if lost:  # made anew, it would take a finished row someone reopened for one never sent
            raise StoreUnavailable(
                f"soranb's send ledger {self.path} is gone or empty, though this data folder had one; soranb "
                "sends nothing without it. Restore it from a backup; or, to start a new ledger (the pending "
                f"rows this installation signed are taken over again), delete {self._made}"
            )
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600))  # this user's only, whatever the umask
            conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=10)
            conn.execute("pragma busy_timeout = 10000")
            conn.execute("begin immediate")  # waits its turn: two processes may open it first together
            for statement in filter(str.strip, _SCHEMA.split(";")):
                conn.execute(statement)
            conn.execute("commit")
            os.close(os.open(self._made, os.O_WRONLY | os.O_CREAT, 0o600))
        except (sqlite3.Error, OSError) as exc:
            raise StoreUnavailable(
                f"cannot open soranb's send ledger {self.path} ({exc}); soranb sends nothing without it. "
                "Check that the data folder is yours and writable (or set SORANB_DATA_DIR)"
            ) from None
        return conn
