"""Static HTML for executed notebooks shared without a kernel (nbconvert, GitHub's viewer).

Every widget view also returns one of these builders' output as its ``text/html``
fallback, and the closing report cell of a notebook calls `summary_html`. The
builders are pure functions of records: no I/O, no ipywidgets, so they run in
a test, a CLI or a notebook alike.

Thumbnails and players are referenced by URL (``url_for(key)``), never embedded
as base64. Why: an executed notebook keeps every output, and a history page of
twelve WebP thumbnails inlined would weigh a few hundred KB per output, pushing
``generate.ipynb`` past 1 MB after a couple of runs; video bytes would be far
worse. A URL costs ~100 bytes, plays in JupyterLab (served by the soranb server
extension) and in a shared report whose store is Supabase (its own URL). When a
local-store URL cannot be reached (the HTML opened on another machine), the
``alt`` text (the escaped prompt) and the table still say what was made.

Everything a person typed goes through `html.escape` before it is placed in HTML.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from .records import GenerationRecord, Status

__all__ = [
    "STATUS_COLORS",
    "UrlFor",
    "check_results_html",
    "download_html",
    "download_name",
    "error_html",
    "esc",
    "format_cost",
    "format_time",
    "history_table_html",
    "key_value_html",
    "media_html",
    "player_html",
    "pretty_json_html",
    "price_text",
    "progress_note_html",
    "record_meta_html",
    "starting_image_html",
    "status_badge_html",
    "summary_html",
    "thumbnail_html",
]

UrlFor = Callable[[str], str]
"""Turns a store media key (``videos/<id>.mp4``) into a URL a browser can load."""

STATUS_COLORS: dict[str, str] = {
    Status.PENDING.value: "#6b7280",
    Status.PROCESSING.value: "#2563eb",
    Status.COMPLETED.value: "#16a34a",
    Status.FAILED.value: "#dc2626",
    Status.EXPIRED.value: "#a16207",
    Status.CANCELLED.value: "#6b7280",
    "ok": "#16a34a",
    "failed": "#dc2626",
    "skipped": "#6b7280",
    "not run": "#9ca3af",
    "running": "#2563eb",
}

_THUMB_WIDTH = 160


def esc(value: object) -> str:
    """Escape any value for HTML text and attributes (quotes included)."""
    return html.escape(str(value), quote=True)


def format_cost(cost: Decimal | float | int) -> str:
    return f"${Decimal(str(cost)):.2f}"


def format_time(moment: datetime | None) -> str:
    """A stable, timezone-explicit stamp: '2026-11-25 14:49 UTC'."""
    if moment is None:
        return ""
    if moment.tzinfo is not None:
        return moment.strftime("%Y-%m-%d %H:%M %Z").replace("UTC+00:00", "UTC")
    return moment.strftime("%Y-%m-%d %H:%M")


def status_badge_html(status: str) -> str:
    """A small coloured pill; `status` is one of ours but is escaped all the same."""
    color = STATUS_COLORS.get(str(status), "#6b7280")
    return (
        f'<span class="soranb-badge soranb-badge-{esc(status)}" style="display:inline-block;'
        f"padding:1px 8px;border-radius:10px;font-size:11px;color:#fff;background:{color}"
        f'">{esc(status)}</span>'
    )


_CONTROL = re.compile(r"[\x00-\x20\x7f-\x9f]")
_ALLOWED_SCHEMES = ("http", "https")


def _safe_url(url: str) -> str:
    """Only http(s) and relative URLs go into src/href: an allowlist, checked after removing control
    characters and spaces the way a browser does (so `java\tscript:` is a scheme too)."""
    cleaned = _CONTROL.sub("", url or "")
    scheme, sep, _rest = cleaned.partition(":")
    has_scheme = bool(sep) and not any(c in scheme for c in "/?#")  # else a relative URL
    if has_scheme and scheme.lower() not in _ALLOWED_SCHEMES:
        return "#"
    return esc(url)


_DATA_IMAGE = re.compile(r"^data:image/(?:jpeg|png|webp);base64,[A-Za-z0-9+/]+={0,2}$")


def _image_src(url: str) -> str:
    """An `<img>` source: a small embedded image we encoded ourselves, or a URL that passes `_safe_url`."""
    if _DATA_IMAGE.match(url):
        return url
    return _safe_url(url)


def thumbnail_html(record: GenerationRecord, url_for: UrlFor, width: int = _THUMB_WIDTH) -> str:
    """An `<img>` of the record's thumbnail (by URL or embedded), or a grey placeholder box.

    `url_for` may return "" for a thumbnail it will not provide (e.g. past a report's size budget).
    """
    src = url_for(record.thumbnail_key) if record.thumbnail_key else ""
    if src:
        lazy = "" if src.startswith("data:") else ' loading="lazy"'
        return (
            f'<img class="soranb-thumb" src="{_image_src(src)}" '
            f'alt="{esc(record.prompt[:120])}"{lazy} style="width:{width}px;border-radius:4px">'
        )
    height = width * 9 // 16
    return (
        f'<div class="soranb-thumb-empty" title="{esc(record.prompt[:120])}" style="width:{width}px;'
        f'height:{height}px;background:#e5e7eb;border-radius:4px"></div>'
    )


def player_html(record: GenerationRecord, url_for: UrlFor, width: int = 320) -> str:
    """An inline player that streams from the store's URL (never video bytes in the page)."""
    if not record.video_key:
        return ""
    poster = f' poster="{_safe_url(url_for(record.thumbnail_key))}"' if record.thumbnail_key else ""
    return (
        '<video class="soranb-player" controls preload="metadata" '
        f'src="{_safe_url(url_for(record.video_key))}"{poster} '
        f'style="width:{width}px;max-width:100%;border-radius:4px"></video>'
    )


def media_html(record: GenerationRecord, url_for: UrlFor, *, player: bool = True) -> str:
    """The player for a completed video, else its thumbnail (or a placeholder)."""
    if player and record.status == Status.COMPLETED and record.video_key:
        return player_html(record, url_for)
    return thumbnail_html(record, url_for)


def download_name(record: GenerationRecord) -> str:
    """A file name a person recognises: the prompt's first words, not a uuid."""
    words = re.findall(r"[A-Za-z0-9]+", record.prompt)[:8]
    stem = "-".join(words).lower()[:60].strip("-") or "soranb-video"
    return f"{stem}-{record.id[:6]}.mp4"


_DOWNLOAD_STYLE = (
    "display:inline-block;padding:2px 10px;border:1px solid #2563eb;border-radius:4px;"
    "color:#2563eb;text-decoration:none;font-size:12px"
)


def download_html(record: GenerationRecord, url_for: UrlFor, note: str = "") -> str:
    """A "Download MP4" link styled as a button; `note` (escaped) says where the file is when it matters."""
    if not record.video_key:
        return ""
    href = url_for(record.video_key)
    if not href:
        return '<span class="soranb-download-missing" style="color:#6b7280;font-size:11px">video file not found</span>'
    extra = f' <span class="soranb-download-note" style="color:#6b7280;font-size:11px">{esc(note)}</span>'
    return (
        f'<a class="soranb-download" href="{_safe_url(href)}" '
        f'download="{esc(download_name(record))}" target="_blank" style="{_DOWNLOAD_STYLE}">Download MP4</a>'
        + (extra if note else "")
    )


_NOT_BILLED = frozenset({Status.FAILED, Status.CANCELLED})


def price_text(record: GenerationRecord) -> str:
    """The price, or that nothing was billed for a job that never made a video."""
    if record.status in _NOT_BILLED:
        return "not billed"
    return format_cost(record.cost)


def record_meta_html(record: GenerationRecord, source_prompt: str | None = None) -> str:
    """The prompt (escaped) and the facts of one record, for a card or a row.

    A remix names its source by prompt when the caller knows it (else by a short id).
    """
    remix = ""
    if record.remixed_from:
        if source_prompt:
            short = source_prompt if len(source_prompt) <= 60 else source_prompt[:59] + "…"
            remix = f' · remix of “<span class="soranb-remix-source">{esc(short)}</span>”'
        else:
            remix = f" · remix of {esc(record.remixed_from[:8])}"
    image = ""
    if record.image_filename:
        fit = record.metadata.get("fit") if isinstance(record.metadata, dict) else None
        image = f" · from image {esc(record.image_filename)}" + (f" ({esc(fit)})" if fit else "")
    return (
        f'<div class="soranb-prompt-text" style="white-space:pre-wrap;word-break:break-word;'
        f'max-height:6em;overflow:auto">{esc(record.prompt)}</div>'
        f'<div class="soranb-meta" style="color:#6b7280;font-size:11px">'
        f"{esc(record.model)} · {esc(record.size)} · {esc(record.seconds)} s · {price_text(record)}"
        f" · {esc(format_time(record.created_at))}{remix}{image}</div>"
    )


def starting_image_html(record: GenerationRecord, url_for: UrlFor) -> str:
    """The starting image a video was made from, small (its name and fit are in the facts line)."""
    if not record.image_key:
        return ""
    src = url_for(record.image_key)
    if not src:
        return ""
    return (
        f'<div class="soranb-start-image"><img src="{_image_src(src)}" alt="starting image" '
        'style="height:36px;border-radius:3px"></div>'
    )


def progress_note_html(record: GenerationRecord) -> str:
    """Why a job waits, or about how long it has left (from the service's estimate when it gives one)."""
    if record.status == Status.PENDING:
        reason = record.metadata.get("waiting_reason") if isinstance(record.metadata, dict) else None
        text = str(reason) if reason else "waiting for a free slot"
    elif record.status == Status.PROCESSING:
        eta = record.metadata.get("eta_s") if isinstance(record.metadata, dict) else None
        text = f"{int(record.progress)}%"
        if isinstance(eta, (int, float)) and eta >= 0:
            text += f" · about {max(1, round(eta))} s left"
    else:
        return ""
    return f'<span class="soranb-progress-note" style="color:#6b7280;font-size:11px">{esc(text)}</span>'


def error_html(record: GenerationRecord) -> str:
    if not record.error_message:
        return ""
    return f'<div class="soranb-error" style="color:#dc2626">{esc(record.error_message)}</div>'


def history_table_html(
    records: Sequence[GenerationRecord],
    url_for: UrlFor,
    *,
    title: str | None = None,
    footer: str = "",
    link_for: UrlFor | None = None,
    link_note: str = "",
) -> str:
    """A table of records with thumbnails and download links: the history as a report.

    `link_for` turns a video key into the download link when it differs from `url_for`
    (a report read offline); `link_note` says where that link works.
    """
    head = f"<h4>{esc(title)}</h4>" if title else ""
    if not records:
        return f'{head}<div class="soranb-history-static"><em>No generations yet.</em></div>'
    rows = []
    for record in records:
        rows.append(
            "<tr>"
            f"<td>{thumbnail_html(record, url_for, width=120)}</td>"
            f"<td>{status_badge_html(record.status.value)}"
            f"{('<br>' + f'{record.progress}%') if record.is_open else ''}</td>"
            f"<td>{record_meta_html(record)}{error_html(record)}</td>"
            f"<td>{download_html(record, link_for or url_for, link_note)}</td>"
            "</tr>"
        )
    foot = f'<div style="color:#6b7280;font-size:11px">{esc(footer)}</div>' if footer else ""
    return (
        f'{head}<table class="soranb-history-static" style="border-collapse:collapse">'
        "<thead><tr><th>thumbnail</th><th>status</th><th>prompt</th><th>video</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>{foot}"
    )


def summary_html(records: Iterable[GenerationRecord], url_for: UrlFor | None = None) -> str:
    """The closing report of a session: counts, total cost, durations and thumbnails."""
    records = list(records)
    by_status: dict[str, int] = {}
    for record in records:
        by_status[record.status.value] = by_status.get(record.status.value, 0) + 1
    spent = sum((r.cost for r in records if r.status == Status.COMPLETED), Decimal(0))
    listed = sum((r.cost for r in records), Decimal(0))
    done = [r for r in records if r.status == Status.COMPLETED]
    video_seconds = sum(r.seconds for r in done)
    waits = [(r.updated_at - r.created_at).total_seconds() for r in done]
    mean_wait = f"{sum(waits) / len(waits):.1f} s" if waits else "n/a"
    counts = ", ".join(f"{status_badge_html(k)} {v}" for k, v in sorted(by_status.items())) or "none"
    thumbs = ""
    if url_for is not None:
        thumbs = "".join(
            f'<span style="display:inline-block;margin:2px">{thumbnail_html(r, url_for, width=96)}</span>'
            for r in done[:24]
        )
    return (
        '<div class="soranb-summary">'
        f"<div><b>{len(records)}</b> generations: {counts}</div>"
        f"<div>Cost of completed videos: <b>{format_cost(spent)}</b> "
        f"(all requested: {format_cost(listed)})</div>"
        f"<div>Video made: {video_seconds} s; mean time to completion: {mean_wait}</div>"
        f"<div>{thumbs}</div></div>"
    )


def key_value_html(items: Mapping[str, object], *, title: str | None = None) -> str:
    """A two-column table (form values, setting sources) with every cell escaped."""
    head = f"<h4>{esc(title)}</h4>" if title else ""
    rows = "".join(f"<tr><th style='text-align:left'>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in items.items())
    return f'{head}<table class="soranb-kv">{rows}</table>'


def check_results_html(rows: Sequence[tuple[str, str, str]], *, title: str | None = "Diagnostics") -> str:
    """(name, status, summary) per check: the diagnostics panel as a static table."""
    head = f"<h4>{esc(title)}</h4>" if title else ""
    body = "".join(
        f"<tr><td>{esc(name)}</td><td>{status_badge_html(status)}</td><td>{esc(summary)}</td></tr>"
        for name, status, summary in rows
    )
    return f'{head}<table class="soranb-checks-static">{body}</table>'


def pretty_json_html(data: Any) -> str:
    """Raw provider metadata as escaped, indented JSON in a `<pre>`."""
    text = json.dumps(data, indent=2, sort_keys=True, default=str)
    return f'<pre class="soranb-json" style="max-height:20em;overflow:auto">{esc(text)}</pre>'
