"""A batch of generations that a notebook can re-run without paying twice.

Run All runs the batch cell again; a second kernel or a restart runs it again
too. Each request therefore first looks for a record already made from the very
same request (same prompt, model, size and length, no starting image, not a
remix) that has not failed, and reuses it. `new=True` asks for new videos.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .records import GenerationRecord, Status
from .request import GenerationRequest
from .store.base import RecordQuery

__all__ = ["BatchItem", "start_batch"]

_REUSABLE = frozenset({Status.PENDING, Status.PROCESSING, Status.COMPLETED})


@dataclass(frozen=True)
class BatchItem:
    record: GenerationRecord
    reused: bool


def _same_request(record: GenerationRecord, request: GenerationRequest) -> bool:
    return (
        record.prompt == request.prompt
        and record.model == request.model
        and record.size == request.size
        and int(record.seconds) == int(request.seconds)
        and record.image_key is None
        and record.remixed_from is None
        and record.status in _REUSABLE
        and not record.metadata.get("diagnostic")
    )


def start_batch(service: Any, requests: Iterable[GenerationRequest], *, new: bool = False) -> list[BatchItem]:
    """Start (or reuse) one record per request, in order. Requests with an image are always started."""
    taken: set[str] = set()
    items = []
    for request in requests:
        found = None
        if not new and request.image is None:
            candidates = service.list_records(RecordQuery(search=request.prompt, model=request.model, limit=100))
            found = next((r for r in candidates if r.id not in taken and _same_request(r, request)), None)
        if found is not None:
            items.append(BatchItem(found, reused=True))
        else:
            items.append(BatchItem(service.generate(request), reused=False))
        taken.add(items[-1].record.id)
    return items
