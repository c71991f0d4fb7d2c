"""`soranb report OUT.html`: the history as one static page that reads offline, built from the store.

The page is a whole HTML document made of `soranb.report`'s builders (summary, badges, prompts and
facts, errors), plus what a shared file needs that a notebook output does not:

- thumbnails embedded as small JPEG data URIs (about 5-10 KB each, re-encoded by soranb itself, so
  the only `data:` URLs in the page are images soranb made), so they show wherever the file goes;
- links to the videos that work where the report is read: relative paths from the report to the
  local store's media (keep the report next to `soranb-data/`, or copy both), or the store's own
  http(s) URLs (Supabase signs them for an hour);
- each record's tags, favourite mark and note, and the batches and variation grids it came from.

Everything a person typed goes through `esc`; only http(s) and relative URLs reach an `href`.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

from .errors import RequestInvalid, SoranbError
from .records import GenerationRecord
from .report import error_html, esc, format_cost, format_time, record_meta_html, status_badge_html, summary_html
from .sharing import small_jpeg_uri
from .store.base import RecordQuery

if TYPE_CHECKING:
    from .protocols import ServiceLike

__all__ = ["THUMB_WIDTH", "data_uri_thumbnail", "report_page_html", "video_link", "write_report"]

THUMB_WIDTH = 192
_CONTROL = re.compile(r"[\x00-\x20\x7f-\x9f]")


def data_uri_thumbnail(image: bytes, width: int = THUMB_WIDTH) -> str | None:
    """A small JPEG of `image` as a data URI (the notebook report's encoder), or None when it cannot be read."""
    return small_jpeg_uri(image, width, width * 4)


def video_link(url: str | None) -> str | None:
    """`url` when it is http(s) or relative, else None (checked the way a browser reads a scheme)."""
    if not url:
        return None
    cleaned = _CONTROL.sub("", url)
    scheme, sep, _ = cleaned.partition(":")
    if sep and not any(c in scheme for c in "/?#") and scheme.lower() not in ("http", "https"):
        return None
    return url


def relative_url(target: Path, start: Path) -> str | None:
    """A relative URL from the folder `start` to the file `target` (None across drives)."""
    try:
        rel = os.path.relpath(target, start)
    except ValueError:
        return None
    return quote(Path(rel).as_posix())


def _thumb(record: GenerationRecord, uri: str | None) -> str:
    if uri and uri.startswith("data:image/jpeg;base64,"):
        return f'<img class="soranb-thumb" src="{esc(uri)}" alt="{esc(record.prompt[:120])}" width="{THUMB_WIDTH}">'
    height = THUMB_WIDTH * 9 // 16
    return f'<div class="soranb-thumb-empty" style="width:{THUMB_WIDTH}px;height:{height}px;background:#e5e7eb"></div>'


def _marks(record: GenerationRecord) -> str:
    star = '<span class="soranb-favourite" title="favourite">★</span> ' if record.favourite else ""
    tags = "".join(f'<span class="soranb-tag">{esc(tag)}</span>' for tag in record.tags)
    note = f'<div class="soranb-note">{esc(record.note)}</div>' if record.note else ""
    return f'<div class="soranb-marks">{star}{tags}</div>{note}' if (star or tags or note) else ""


def _batches(records: Sequence[GenerationRecord], thumbnails: Mapping[str, str | None]) -> str:
    groups: dict[str, list[GenerationRecord]] = {}
    for record in records:
        key = record.metadata.get("batch_key")
        if isinstance(key, str):
            groups.setdefault(key, []).append(record)
    if not groups:
        return ""
    rows = "".join(
        f"<tr><td>{esc('variation grid ' + key[5:] if key.startswith('vary:') else 'batch ' + key)}</td>"
        f"<td>{len(group)}</td><td>{format_cost(sum((r.cost for r in group), Decimal(0)))}</td></tr>"
        for key, group in sorted(groups.items())
    )
    grids = "".join(
        _variation_grid(key[5:], group, thumbnails) for key, group in sorted(groups.items()) if key.startswith("vary:")
    )
    return (
        '<h2>Batches and variation grids</h2><table class="soranb-batches">'
        f"<thead><tr><th>name</th><th>videos</th><th>list price</th></tr></thead><tbody>{rows}</tbody></table>"
        f"{grids}"
    )


_AXES: tuple[tuple[str, Callable[[GenerationRecord], object]], ...] = (
    ("prompt", lambda r: r.prompt),
    ("model", lambda r: r.model),
    ("size", lambda r: r.size),
    ("seconds", lambda r: f"{r.seconds} s"),
)


def _batch_line(record: GenerationRecord) -> int:
    line = record.metadata.get("batch_line")
    return line if isinstance(line, int) and not isinstance(line, bool) else 0


def _variation_grid(name: str, group: Sequence[GenerationRecord], thumbnails: Mapping[str, str | None]) -> str:
    """A variation grid as the notebook shows it: the last setting that varies runs across, the others
    down; each cell is the video's thumbnail (or a placeholder) and its status. Read from the records."""
    ordered = sorted(group, key=_batch_line)
    varied = [(axis, value) for axis, value in _AXES if len({value(r) for r in ordered}) > 1]
    if not varied:
        return ""
    (across_name, across), down = varied[-1], varied[:-1]
    columns = list(dict.fromkeys(across(r) for r in ordered))
    cells: dict[tuple[object, ...], dict[object, GenerationRecord]] = {}
    for record in ordered:
        cells.setdefault(tuple(value(record) for _, value in down), {})[across(record)] = record

    def cell(record: GenerationRecord | None) -> str:
        if record is None:
            return "<td></td>"
        return f"<td>{_thumb(record, thumbnails.get(record.id))}{status_badge_html(record.status.value)}</td>"

    head = f"<th>{esc(' / '.join(n for n, _ in down))}</th>" + "".join(f"<th>{esc(column)}</th>" for column in columns)
    body = "".join(
        f"<tr><th>{esc(' / '.join(map(str, row)))}</th>{''.join(cell(by.get(c)) for c in columns)}</tr>"
        for row, by in cells.items()
    )
    return (
        f"<h3>Variation grid {esc(name)}: {esc(across_name)} across</h3>"
        f'<table class="soranb-variation-grid"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
    )


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 24px; color: #111827; }
table { border-collapse: collapse; }
td, th { border-bottom: 1px solid #e5e7eb; padding: 6px 10px; vertical-align: top; text-align: left; }
.soranb-tag { display: inline-block; background: #eef2ff; color: #3730a3; border-radius: 8px;
  padding: 0 6px; margin: 0 4px 2px 0; font-size: 11px; }
.soranb-favourite { color: #d97706; }
.soranb-note { font-style: italic; color: #374151; white-space: pre-wrap; }
.soranb-thumb { border-radius: 4px; display: block; }
"""


def report_page_html(
    records: Sequence[GenerationRecord],
    *,
    thumbnails: Mapping[str, str | None],
    link_for: Callable[[GenerationRecord], str | None],
    title: str = "soranb report",
    filters: str = "",
    generated_at: datetime | None = None,
) -> str:
    """The whole document. `thumbnails` maps record id to a data URI (from `data_uri_thumbnail`);
    `link_for` gives a record's video URL, which is kept only when http(s) or relative."""
    when = format_time(generated_at or datetime.now(UTC))
    rows = []
    for record in records:
        link = video_link(link_for(record)) if record.video_key else None
        anchor = f'<a class="soranb-video-link" href="{esc(link)}">video</a>' if link else ""
        rows.append(
            f'<tr data-record="{esc(record.id)}"><td>{_thumb(record, thumbnails.get(record.id))}</td>'
            f"<td>{status_badge_html(record.status.value)}</td>"
            f"<td>{record_meta_html(record)}{_marks(record)}{error_html(record)}</td><td>{anchor}</td></tr>"
        )
    table = (
        '<table class="soranb-report-records"><thead><tr><th>thumbnail</th><th>status</th><th>prompt</th>'
        f"<th>video</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
        if rows
        else "<p><em>No generations match.</em></p>"
    )
    shown = f" · {esc(filters)}" if filters else ""
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{_STYLE}</style></head><body>"
        f'<h1>{esc(title)}</h1><p class="soranb-report-when">{esc(when)}{shown}</p>'
        f"{summary_html(records)}{_batches(records, thumbnails)}<h2>Generations</h2>{table}</body></html>\n"
    )


def write_report(service: ServiceLike, out: Path, query: RecordQuery, *, filters: str = "", limit: int = 1000) -> int:
    """Write the report of the records matching `query` (newest first, at most `limit`) to `out`;
    returns how many it holds. Written to a temp file first, so a failed run leaves no half report."""
    out = Path(out)
    if not out.parent.is_dir():
        raise RequestInvalid("out", f"the folder {out.parent} does not exist; create it or pick another path")
    records: list[GenerationRecord] = []
    page = min(limit, 500)
    while len(records) < limit:
        batch = service.list_records(replace(query, limit=min(page, limit - len(records)), offset=len(records)))
        records += batch
        if len(batch) < page:
            break
    with tempfile.TemporaryDirectory(prefix="soranb-report-") as tmp:

        def thumbnail(record: GenerationRecord) -> str | None:
            """A placeholder (None) when the thumbnail is gone or damaged: the rest of the report still shows."""
            assert record.thumbnail_key is not None
            try:
                local = service.media_path(record.thumbnail_key)  # the local store's own file: no copy
                path = local or service.fetch_media(record.thumbnail_key, Path(tmp) / record.id)
                return data_uri_thumbnail(path.read_bytes())
            except (SoranbError, OSError, ValueError):
                return None

        shown = [r for r in records if r.thumbnail_key]
        # Decoding a full-size WebP is most of the work, and Pillow releases the GIL while it decodes.
        with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 2)) as pool:
            thumbnails = dict(zip((r.id for r in shown), pool.map(thumbnail, shown), strict=True))

    def link_for(record: GenerationRecord) -> str | None:
        if not record.video_key:
            return None
        local = service.media_path(record.video_key)
        if local is not None:
            return relative_url(local, out.resolve().parent)
        try:
            return str(service.media_url(record.video_key))
        except SoranbError:
            return None

    html = report_page_html(records, thumbnails=thumbnails, link_for=link_for, filters=filters)
    partial = out.with_name(out.name + ".part")
    try:
        partial.write_text(html, encoding="utf-8")
        partial.replace(out)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise RequestInvalid("out", f"cannot write {out} ({exc.strerror or exc}); pick a writable path") from None
    return len(records)
