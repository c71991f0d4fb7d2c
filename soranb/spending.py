"""The pieces of the one spending path (`VideoService._spend`) that need no service state.

A request becomes a pending record here, its starting image goes into the store, and a batch
line's fixed id is looked up; the service holds the budget lock around them and sends the job.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

from .errors import RequestInvalid
from .images import inspect_image
from .records import BILLED_SECONDS, GenerationRecord, Status
from .request import GenerationRequest, ImageInput, SourceVideo
from .store.base import RecordQuery, Store, media_key

__all__ = ["derived_request", "pending_record", "store_image", "stored_record"]

_VERBS = {"remix": "remixed", "extend": "extended", "edit": "edited"}


def derived_request(
    source: GenerationRecord, kind: Literal["remix", "extend", "edit"], prompt: str, added: int = 0
) -> GenerationRequest:
    """The request for a new video made from a completed one: a remix, an extension by `added`
    seconds, or an edit (the same length)."""
    if source.status != Status.COMPLETED or not source.openai_job_id:
        raise RequestInvalid(kind, f"only a completed video can be {_VERBS[kind]}; pick one whose status is completed")
    if kind == "remix":
        return GenerationRequest(prompt=prompt, model=source.model, size=source.size, seconds=source.seconds)
    seconds = source.seconds + added if kind == "extend" else source.seconds
    video = SourceVideo(kind, source.openai_job_id, added)
    return GenerationRequest(prompt, source.model, source.size, seconds, source=video)


def pending_record(
    request: GenerationRequest,
    prepared: GenerationRequest,
    remix_of: GenerationRecord | None = None,
    record_id: str | None = None,
    metadata: dict[str, Any] | None = None,
    lineage: str | None = None,
) -> GenerationRecord:
    """The pending record of a request (`prepared` is it validated, its image fitted), not stored yet.

    The poller re-sends a pending record from its prompt, model, size and seconds alone, which
    would make a plain video of an extension, an edit or a request with characters or a
    reference object: those are marked `submit_once` (the runner sends them once or ends them).
    """
    metadata = dict(metadata or {})
    if request.image is not None and request.fit and inspect_image(request.image.data).size != request.size:
        metadata["fit"] = request.fit  # shown on the card and in reports beside the starting image
    if prepared.source is not None and prepared.source.kind == "extend":
        metadata[BILLED_SECONDS] = prepared.source.added_seconds  # the record's seconds are the stitched total
    if prepared.sent_as_json:
        metadata["submit_once"] = True
        if prepared.characters:
            metadata["characters"] = list(prepared.characters)
    record = GenerationRecord(
        prompt=prepared.prompt,
        model=prepared.model,
        size=prepared.size,
        seconds=prepared.seconds,
        lineage=lineage,
        remixed_from=remix_of.id if remix_of is not None else None,
        metadata=metadata,
    )
    return replace(record, id=record_id) if record_id is not None else record


async def store_image(
    store: Store, tmp_path: Callable[[str], Path], record: GenerationRecord, image: ImageInput
) -> GenerationRecord:
    """Put the starting image into the store under the record's own key; the record that names it."""
    info = inspect_image(image.data)
    key = media_key("images", record.id, info.extension)
    tmp = tmp_path(info.extension)
    await asyncio.to_thread(tmp.write_bytes, image.data)
    await store.put_media(key, tmp, info.mime)
    return replace(record, image_key=key, image_filename=image.filename)


async def stored_record(store: Store, record_id: str) -> GenerationRecord | None:
    """The record with this id, if stored (a miss is expected here, so it is no warning in the log)."""
    found = await store.query(RecordQuery(ids=frozenset({record_id}), limit=1))
    return found[0] if found else None
