"""The budget guard: how much today (and this session) has cost, and whether a request still fits.

Spending is counted from the store at list prices (`soranb.catalog`), the same way on every
provider, so the guard works (and is tested) offline on the emulator. A record counts once it may
have reached the provider: everything created today except a failed or cancelled record that never
got a job id (the provider refused it, or it was never sent). Pending records count: they are about
to be sent. "Today" starts at local midnight of the machine running soranb.

The service checks before anything is stored or sent; see `VideoService._spend`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from .errors import BudgetExceeded, SoranbError
from .records import GenerationRecord, Status
from .store.base import Admission, Store

if TYPE_CHECKING:
    from .sends import SendLedger

__all__ = ["Budget", "BudgetGuard", "counts_as_spent", "day_start", "spent_on", "spent_today"]

_NEVER_SENT = frozenset({Status.FAILED, Status.CANCELLED})


def counts_as_spent(record: GenerationRecord) -> bool:
    """Whether a record may have cost money (it reached, or is about to reach, the provider)."""
    return not (record.status in _NEVER_SENT and not record.openai_job_id)


def spent_on(records: Iterable[GenerationRecord]) -> Decimal:
    """The list price of the records that count as spent."""
    return sum((r.cost for r in records if counts_as_spent(r)), Decimal(0))


def spent_today(records: Iterable[GenerationRecord], ours: Mapping[str, Decimal]) -> Decimal:
    """The day's spending: what this installation's send ledger says it stored (`ours`, by record id, at
    the price it had), and the store's other records of the day. A row of ours that was deleted, or
    changed to look cheaper, older or never sent, still counts as what it was."""
    return sum(ours.values(), Decimal(0)) + spent_on(r for r in records if r.id not in ours)


def day_start(now: datetime | None = None) -> datetime:
    """Local midnight of `now` (default: now), timezone-aware."""
    local = (now or datetime.now()).astimezone()
    return datetime.combine(local.date(), time(0), tzinfo=local.tzinfo)


def _usd(amount: Decimal) -> str:
    return f"${amount.quantize(Decimal('0.01')):,}"


@dataclass(frozen=True)
class Budget:
    """What has been spent against each limit; a limit of None means none is set."""

    spent: Decimal
    limit: Decimal | None = None
    session_spent: Decimal = Decimal(0)
    session_limit: Decimal | None = None

    @property
    def remaining(self) -> Decimal | None:
        """What may still be spent today (the tighter of the two limits); None without a limit."""
        left = [
            limit - spent
            for limit, spent in ((self.limit, self.spent), (self.session_limit, self.session_spent))
            if limit is not None
        ]
        return max(Decimal(0), min(left)) if left else None

    def check(self, cost: Decimal, what: str = "this request") -> None:
        """Raise `BudgetExceeded` (saying how much over) when `cost` does not fit in either limit."""
        for limit, spent, name, period in (
            (self.limit, self.spent, "SORANB_BUDGET_USD", "today's"),
            (self.session_limit, self.session_spent, "SORANB_SESSION_BUDGET_USD", "this session's"),
        ):
            if limit is None or spent + cost <= limit:
                continue
            over = spent + cost - limit
            raise BudgetExceeded(
                f"{what} costs {_usd(cost)}, which would take {period} spending to {_usd(spent + cost)}: "
                f"{_usd(over)} over the budget of {_usd(limit)} ({name}). {BudgetExceeded.NOTHING_STORED} "
                f"Raise {name}, or ask for fewer, shorter or cheaper videos "
                f"({_usd(max(Decimal(0), limit - spent))} left).",
                over_usd=over,
            )

    def describe(self) -> str:
        """One line for a form or `soranb doctor`: spent, remaining and the limits."""
        parts = [f"spent today {_usd(self.spent)}"]
        if self.limit is not None:
            parts.append(f"daily budget {_usd(self.limit)}")
        if self.session_limit is not None:
            parts.append(f"this session {_usd(self.session_spent)} of {_usd(self.session_limit)}")
        if self.remaining is not None:
            parts.append(f"remaining {_usd(self.remaining)}")
        return " · ".join(parts)


class BudgetGuard:
    """One service's guard: the day's spending read from the store, the session's counted here.

    `insert` stores a record only if it fits: the store checks and inserts in one step, so two
    processes (or machines) on one store never both fit the last dollar; `lock` keeps this service's
    own requests in line, so the session's count is right too.
    """

    def __init__(
        self, store: Store, limit: Decimal | None, session_limit: Decimal | None, ledger: SendLedger | None = None
    ) -> None:
        self.store = store
        self.ledger = ledger  # what this installation stored, which no one else can make look cheaper
        self.limit = limit
        self.session_limit = session_limit
        self.session_spent = Decimal(0)  # list price of what this service stored
        self.lock = asyncio.Lock()

    async def read(self, *, count_always: bool = False) -> Budget:
        """The budget now; without a daily limit the store is read only when `count_always`."""
        spent = Decimal(0)
        if self.limit is not None or count_always:
            try:
                ours = await self._ours()
            except SoranbError:  # the ledger is out of order: a limit cannot be kept, a display can do without
                if self.limit is not None:
                    raise
                ours = {}
            spent = spent_today(await self.store.created_since(day_start()), ours)
        return self._budget(spent)

    @property
    def scope(self) -> str:
        """Whose spending this guard counts in the send ledger: its store's, and on a shared store its user's."""
        return f"{self.store.describe()} user={self.store.user_id or ''}"

    async def _ours(self, *, besides: str | None = None) -> dict[str, Decimal]:
        ours = {} if self.ledger is None else await self.ledger.spent_since(day_start().timestamp(), self.scope)
        ours.pop(besides or "", None)
        return ours

    def _budget(self, spent: Decimal) -> Budget:
        return Budget(spent, self.limit, self.session_spent, self.session_limit)

    async def insert(self, record: GenerationRecord, *, owner: str, ttl: timedelta) -> GenerationRecord:
        """Store `record` if it fits both limits (hold `lock`); `BudgetExceeded` if not, and then
        nothing is stored. The record is stored leased to `owner`, who sends it."""
        if self.limit is None:  # only the session's limit, which is this service's own count
            self._budget(Decimal(0)).check(record.cost)
            stored = await self.store.insert(record, lease=(owner, ttl))
        else:
            ours = await self._ours(besides=record.id)

            def fits(today: list[GenerationRecord]) -> None:
                self._budget(spent_today([r for r in today if r.id != record.id], ours)).check(record.cost)

            stored = await self.store.insert_admitted(record, Admission(fits, day_start(), owner, ttl))
        self.session_spent += record.cost
        return stored
