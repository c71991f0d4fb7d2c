"""A report that reads fully offline: thumbnails embedded, video links that work where it is read.

An executed notebook converted to HTML is sent to people who have no Jupyter
server and no kernel, so the report cell cannot point at `/soranb/media/...`.

- Thumbnails become small JPEG data URIs (about 4 KB each at 160 px). A byte
  budget bounds them all, so an executed notebook stays far under 1 MB however
  long the history; past the budget a grey box stands in.
- Videos stay out of the page (they are megabytes each). For the local store the
  link is the file's path relative to the notebook, which works for the HTML
  saved beside the notebook on the author's machine, and the report says so
  plainly. For a remote store the link is the store's URL; a signed one says
  until when it works.
"""

from __future__ import annotations

import base64
import io
import os
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

from .records import GenerationRecord
from .report import esc, history_table_html, summary_html

if TYPE_CHECKING:
    from .protocols import ServiceLike

__all__ = ["OfflineMedia", "report_html"]

THUMB_PX = 160
THUMB_QUALITY = 70
BUDGET_BYTES = 250_000  # every data URI of one report together


class OfflineMedia:
    """URLs for a static report: `thumb` embeds a thumbnail, `video` links the file where it can be found."""

    def __init__(
        self, service: ServiceLike, notebook_dir: Path | None = None, *, budget_bytes: int = BUDGET_BYTES
    ) -> None:
        self.service = service
        self.notebook_dir = (notebook_dir or Path.cwd()).resolve()
        self.budget_bytes = budget_bytes
        self.used_bytes = 0
        self._thumbs: dict[str, str] = {}
        self.left_out = 0  # thumbnails not embedded because the budget was spent

    def _local_path(self, key: str) -> Path | None:
        path = self.service.media_path(key)
        return Path(path) if path is not None and Path(path).is_file() else None

    @property
    def is_local(self) -> bool:
        return self.service.media_path("thumbnails/x.webp") is not None

    def thumb(self, key: str) -> str:
        """A data URI of a small JPEG of the thumbnail, or "" (a placeholder) past the budget."""
        if key in self._thumbs:
            return self._thumbs[key]
        uri = ""
        data = self._read(key)
        if data is not None:
            encoded = small_jpeg_uri(data, THUMB_PX, THUMB_PX) or ""
            if encoded and self.used_bytes + len(encoded) <= self.budget_bytes:
                self.used_bytes += len(encoded)
                uri = encoded
            else:
                self.left_out += 1
        self._thumbs[key] = uri
        return uri

    def _read(self, key: str) -> bytes | None:
        path = self._local_path(key)
        if path is None:
            return None
        try:
            return path.read_bytes()
        except OSError:
            return None

    def video(self, key: str) -> str:
        """Local store: the file's path relative to the notebook; else the store's own URL."""
        path = self._local_path(key)
        if path is None:
            return str(self.service.media_url(key)) if not self.is_local else ""
        relative = os.path.relpath(path.resolve(), self.notebook_dir)
        return quote(Path(relative).as_posix(), safe="/._-")

    def video_note(self) -> str:
        if self.is_local:
            return "file on the author's machine (beside this notebook's project)"
        ttl = self.service.store.signed_url_ttl
        if ttl is not None:
            until = datetime.now(UTC) + timedelta(seconds=ttl)
            return f"signed link, works until about {until:%Y-%m-%d %H:%M} UTC"
        return ""


def small_jpeg_uri(data: bytes, width: int, height: int) -> str | None:
    """A JPEG of `data` within `width` x `height` as a data URI (what reports embed, a few KB), or None
    when it cannot be read as an image (a damaged thumbnail: the caller shows a placeholder)."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            image.thumbnail((width, height))  # shrink first: converting the full frame costs as much again
            small = image.convert("RGB")
        out = io.BytesIO()
        small.save(out, format="JPEG", quality=THUMB_QUALITY, optimize=True)
    except Exception:  # whatever a damaged or hostile file makes the decoder raise
        return None
    return "data:image/jpeg;base64," + base64.b64encode(out.getvalue()).decode("ascii")


def report_html(
    service: ServiceLike,
    finished: Iterable[GenerationRecord],
    latest: Sequence[GenerationRecord] = (),
    *,
    notebook_dir: Path | None = None,
    budget_bytes: int = BUDGET_BYTES,
) -> str:
    """The closing report of a notebook: the summary of `finished` and the `latest` records, offline-ready."""
    media = OfflineMedia(service, notebook_dir, budget_bytes=budget_bytes)
    html = summary_html(list(finished), media.thumb)
    if latest:
        html += history_table_html(
            latest, media.thumb, title="Latest generations", link_for=media.video, link_note=media.video_note()
        )
    if media.left_out:
        html += (
            f'<div style="color:#6b7280;font-size:11px">{media.left_out} thumbnail(s) left out to keep '
            f"this notebook small ({esc(media.used_bytes // 1000)} KB embedded).</div>"
        )
    return html
