"""The generation record (one row of `video_generations`) and its status machine.

    pending ──► processing ──► completed
       │            ├────────► failed
       │            ├────────► expired     (the provider's files went before we stored them)
       └────────────┴────────► cancelled   (deleted or cancelled before it finished)
    pending ──► failed                      (the provider refused the create)

`pending` means stored here but not (knowingly) accepted by the provider yet:
either waiting for a free slot, or a create whose answer was lost and must be
reconciled before anything is sent again (`metadata["create_attempted_at"]`).
"""

from __future__ import annotations

import dataclasses
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from .catalog import estimate_cost
from .errors import InvalidTransition, RequestInvalid

BILLED_SECONDS = "billed_seconds"  # metadata: the seconds an extension paid for

__all__ = [
    "BILLED_SECONDS",
    "LINEAGE_KINDS",
    "OPEN_STATUSES",
    "UNREADABLE",
    "GenerationRecord",
    "InvalidTransition",
    "Status",
    "clean_note",
    "clean_tags",
    "make_lineage",
    "parse_lineage",
    "utcnow",
]

UNREADABLE = "unreadable_row"  # metadata flag of a record that stands in for a damaged stored row


class Status(StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    EXPIRED = "expired"
    CANCELLED = "cancelled"

    @property
    def is_open(self) -> bool:
        return self in OPEN_STATUSES


OPEN_STATUSES = frozenset({Status.PENDING, Status.PROCESSING})

_ALLOWED: dict[Status, frozenset[Status]] = {
    Status.PENDING: frozenset({Status.PROCESSING, Status.FAILED, Status.CANCELLED}),
    Status.PROCESSING: frozenset({Status.COMPLETED, Status.FAILED, Status.EXPIRED, Status.CANCELLED}),
    Status.COMPLETED: frozenset(),
    Status.FAILED: frozenset(),
    Status.EXPIRED: frozenset(),
    Status.CANCELLED: frozenset(),
}


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_record_id() -> str:
    return str(uuid.uuid4())


@dataclass(frozen=True)
class GenerationRecord:
    """One generation as soranb keeps it.

    Media fields hold store keys (``videos/<id>.mp4``), never URLs or local paths:
    the store turns a key into a URL or a path for whoever asks.
    """

    prompt: str
    model: str
    size: str
    seconds: int
    id: str = field(default_factory=new_record_id)
    status: Status = Status.PENDING
    progress: int = 0
    openai_job_id: str | None = None
    video_key: str | None = None
    thumbnail_key: str | None = None
    image_key: str | None = None
    image_filename: str | None = None
    error_message: str | None = None
    remixed_from: str | None = None  # record id of the source video
    lineage: str | None = None  # '<extend|edit>:<record id>' of the video this one extends or edits
    metadata: dict[str, Any] = field(default_factory=dict)
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)
    # What a person adds while exploring (see clean_tags / clean_note).
    tags: tuple[str, ...] = ()
    favourite: bool = False
    note: str | None = None

    @property
    def is_open(self) -> bool:
        return self.status.is_open

    @property
    def cost(self) -> Decimal:
        """List price in USD (0 for an unknown model/size, e.g. from a newer provider).

        An extension pays for the seconds it adds, not for the stitched total it holds.
        """
        billed = self.metadata.get(BILLED_SECONDS)
        if not (isinstance(billed, int) and not isinstance(billed, bool) and 0 < billed <= self.seconds):
            billed = self.seconds  # none, or a damaged row: priced as it stands
        try:
            return estimate_cost(self.model, self.size, billed)
        except KeyError:
            return Decimal(0)

    def evolve(self, **changes: Any) -> GenerationRecord:
        """A copy with `changes`; a status change must be allowed by the machine."""
        new_status = changes.get("status")
        if new_status is not None:
            new_status = Status(new_status)
            changes["status"] = new_status
            if new_status != self.status and new_status not in _ALLOWED[self.status]:
                raise InvalidTransition(f"{self.status} -> {new_status} is not allowed (record {self.id})")
        changes.setdefault("updated_at", utcnow())
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (what `soranb list --json` prints)."""
        data = dataclasses.asdict(self)
        data["status"] = self.status.value
        data["created_at"] = self.created_at.isoformat()
        data["updated_at"] = self.updated_at.isoformat()
        data["cost_usd"] = str(self.cost)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GenerationRecord:
        names = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in names}
        values["status"] = Status(values.get("status", Status.PENDING))
        values["seconds"] = int(values["seconds"])
        for key in ("created_at", "updated_at"):
            if isinstance(values.get(key), str):
                values[key] = datetime.fromisoformat(values[key])
        values["metadata"] = dict(values.get("metadata") or {})
        values["tags"] = tuple(str(t) for t in values.get("tags") or ())  # as stored: checked when written
        values["favourite"] = bool(values.get("favourite") or False)
        if values.get("lineage") is not None and parse_lineage(values["lineage"]) is None:
            raise ValueError("lineage is not '<extend|edit>:<record id>'")
        return cls(**values)

    @classmethod
    def unreadable(cls, row: Mapping[str, Any], reason: str) -> GenerationRecord:
        """A `failed` record standing in for a stored row that cannot be read (an unknown status, a
        missing column, a media column that is neither a key nor a URL).

        One damaged row must not stop the history from being built: it shows as an error card that
        says why, it can still be deleted, and nothing of it becomes a path, a URL or a job.
        """
        reason = " ".join(str(reason).split())[:200] or "unknown problem"

        def text(name: str, default: str) -> str:
            value = row.get(name)
            return value if isinstance(value, str) and value else default

        stamps: dict[str, datetime] = {}
        for name in ("created_at", "updated_at"):
            value = row.get(name)
            if isinstance(value, datetime):
                stamps[name] = value
            else:
                try:
                    stamps[name] = datetime.fromisoformat(str(value))
                except ValueError:
                    stamps[name] = datetime(1970, 1, 1, tzinfo=UTC)
        return cls(
            prompt=text("prompt", "(unreadable row)"),
            model=text("model", "unknown"),
            size=text("size", "unknown"),
            seconds=0,
            id=str(row.get("id") or ""),
            status=Status.FAILED,
            error_message=f"This row could not be read ({reason}); delete it, or repair it in the store.",
            metadata={UNREADABLE: reason},
            created_at=stamps["created_at"],
            updated_at=stamps["updated_at"],
        )

    @property
    def is_unreadable(self) -> bool:
        return UNREADABLE in self.metadata


# -- tags, favourites and notes ---------------------------------------------------------------
_TAG = re.compile(r"\w[\w .:/+#-]{0,39}")
MAX_NOTE_CHARS = 2000


def clean_tags(tags: Iterable[str]) -> tuple[str, ...]:
    """Tags as stored: trimmed, inner spaces collapsed, each once, in the order given.

    A tag is 1-40 letters, digits, spaces and `- _ . : / + #`, starting with a letter or digit, so it
    reads the same in a shell, a filter and a URL; anything else is refused saying so.
    """
    if isinstance(tags, str):
        tags = [tags]
    cleaned: list[str] = []
    for tag in tags:
        text = " ".join(str(tag).split())
        if not _TAG.fullmatch(text):
            raise RequestInvalid(
                "tag",
                f"tag {text[:60]!r} is not allowed: use 1-40 letters, digits, spaces and - _ . : / + #, "
                "starting with a letter or digit",
            )
        if text not in cleaned:
            cleaned.append(text)
    return tuple(cleaned)


def clean_note(note: str | None) -> str | None:
    """A note as stored: trimmed, None when empty, at most MAX_NOTE_CHARS characters."""
    text = (note or "").strip()
    if len(text) > MAX_NOTE_CHARS:
        raise RequestInvalid("note", f"the note has {len(text):,} characters; shorten it to {MAX_NOTE_CHARS:,}")
    return text or None


# -- lineage ---------------------------------------------------------------------------------------
LINEAGE_KINDS = ("extend", "edit")
_LINEAGE = re.compile(r"(extend|edit):([A-Za-z0-9_-]{1,64})")


def make_lineage(kind: str, record_id: str) -> str:
    """The `lineage` value of a record made by extending or editing record `record_id`."""
    value = f"{kind}:{record_id}"
    if parse_lineage(value) is None:
        raise ValueError(f"not a lineage: {value!r}")
    return value


def parse_lineage(value: object) -> tuple[str, str] | None:
    """(kind, source record id) of a lineage value, or None when it is not one (a damaged or hostile row)."""
    if not isinstance(value, str) or (match := _LINEAGE.fullmatch(value)) is None:
        return None
    return match.group(1), match.group(2)
