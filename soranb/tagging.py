"""Tags, favourites and notes: the person's own marks on a record, changed one store update at a time.

What a tag or a note may be is the record's rule (`records.clean_tags`, `records.clean_note`); this
module turns a request to add, remove or replace marks into the one change the store applies.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .records import GenerationRecord, clean_tags
from .store.base import Store

__all__ = ["mark"]


async def mark(
    store: Store,
    record_id: str,
    *,
    add: Iterable[str] = (),
    remove: Iterable[str] = (),
    favourite: bool | None = None,
    note: str | None = None,
    change_note: bool = False,
) -> tuple[GenerationRecord, bool]:
    """The record with its marks changed, and whether anything changed (then it was stored).

    `note` replaces the note only with `change_note` (None then removes it).
    """
    record = await store.get(record_id)
    add, remove = tuple(add), frozenset(remove)
    changes: dict[str, Any] = {}
    if add or remove:
        changes["tags"] = clean_tags([t for t in (*record.tags, *add) if t not in remove])
    if favourite is not None:
        changes["favourite"] = bool(favourite)
    if change_note:
        changes["note"] = note
    if not changes:
        return record, False
    return await store.update(record_id, changes), True
