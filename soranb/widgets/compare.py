"""CompareView: two to four finished videos side by side, played in sync, with what differs between them.

    CompareView(service, [record_id_a, record_id_b])   # or records; a variation grid opens one too

Players live in the browser, so keeping them in step is JavaScript: `SyncedPlayers` is an anywidget
whose small ES module (`compare.js`, shipped next to this file) drives every `<video>` from one
play/pause button and one seek bar. The Python side picks and checks the records, gives the players
the media URLs (from the views' one cache, `MediaUrls`), and draws the prompts and settings as a
diff; it never moves video bytes.
"""

from __future__ import annotations

import contextlib
import difflib
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anywidget
import ipywidgets as widgets
import traitlets

from ..errors import RecordNotFound, RequestInvalid, SoranbError
from ..records import GenerationRecord, Status
from ..report import _safe_url, esc, format_cost, thumbnail_html
from ._base import StaticReprMixin, close_tree
from .media_urls import MediaUrls, shared_media_urls

if TYPE_CHECKING:
    from ..protocols import ServiceLike

__all__ = [
    "MAX_COMPARED",
    "MIN_COMPARED",
    "CompareView",
    "SyncedPlayers",
    "check_comparable",
    "check_count",
    "diff_html",
]

MIN_COMPARED, MAX_COMPARED = 2, 4
_PAD = ' style="padding:2px 8px;vertical-align:top"'
_HERE = Path(__file__).resolve().parent


class SyncedPlayers(anywidget.AnyWidget):
    """The browser side: `videos` is a list of {"src", "poster", "label"}; one control drives them all."""

    _esm = (_HERE / "compare.js").read_text(encoding="utf-8")
    _css = (_HERE / "compare.css").read_text(encoding="utf-8")
    videos = traitlets.List(traitlets.Dict(), default_value=[]).tag(sync=True)


def check_count(count: int) -> None:
    """Refuse fewer than two or more than four picks, saying what to change."""
    if not MIN_COMPARED <= count <= MAX_COMPARED:
        raise RequestInvalid(
            "compare", f"{count} video(s) picked; pick {MIN_COMPARED} to {MAX_COMPARED} finished videos"
        )


def check_comparable(records: Sequence[GenerationRecord]) -> None:
    """Refuse (saying what to change) fewer than two, more than four, repeats, or unfinished videos."""
    check_count(len(records))
    ids = [r.id for r in records]
    if len(set(ids)) != len(ids):
        raise RequestInvalid("compare", "the same video was picked twice; pick different videos")
    unfinished = [r for r in records if r.status != Status.COMPLETED or not r.video_key]
    if unfinished:
        names = ", ".join(f"“{r.prompt[:40]}” ({r.status.value})" for r in unfinished)
        raise RequestInvalid("compare", f"only finished videos can be compared; not yet: {names}")


def _allowed(url: str) -> str:
    """The URL as it is (the page sets it as a property, not HTML) when its scheme is allowed, else ""."""
    return url if _safe_url(url) != "#" else ""


def _settings(record: GenerationRecord) -> dict[str, str]:
    return {
        "model": record.model,
        "size": record.size,
        "length": f"{record.seconds} s",
        "cost": format_cost(record.cost),
    }


def _marked_prompts(prompts: Sequence[str]) -> list[str]:
    """Each prompt as escaped HTML, with the words it does not share with the first one in `<mark>`."""
    words = [p.split() for p in prompts]
    base = words[0]
    base_changed: set[int] = set()
    out: list[str] = []
    for own in words[1:]:
        matcher = difflib.SequenceMatcher(None, base, own, autojunk=False)
        same_own: set[int] = set()
        same_base: set[int] = set()
        for block in matcher.get_matching_blocks():
            same_base.update(range(block.a, block.a + block.size))
            same_own.update(range(block.b, block.b + block.size))
        base_changed.update(i for i in range(len(base)) if i not in same_base)
        out.append(_join_marked(own, same_own))
    same = {i for i in range(len(base)) if i not in base_changed}
    return [_join_marked(base, same), *out]


def _join_marked(words: Sequence[str], same: set[int]) -> str:
    return " ".join(
        esc(w) if i in same else f'<mark class="soranb-diff-word">{esc(w)}</mark>' for i, w in enumerate(words)
    )


def diff_html(records: Sequence[GenerationRecord], url_for: Callable[[str], str] | None = None) -> str:
    """The prompts and settings side by side; a setting that differs is marked (everything escaped)."""
    heads = "".join(
        f"<th>{thumbnail_html(r, url_for, width=120) if url_for else ''}<div>video {n}</div></th>"
        for n, r in enumerate(records, start=1)
    )
    prompts = _marked_prompts([r.prompt for r in records])
    rows = [f'<tr class="soranb-diff-prompt"><th>prompt</th>{"".join(f"<td{_PAD}>{p}</td>" for p in prompts)}</tr>']
    for name in _settings(records[0]):
        values = [_settings(r)[name] for r in records]
        changed = len(set(values)) > 1
        mark = ' class="soranb-diff-changed" style="background:#fef3c7"' if changed else ""
        cells = "".join(f"<td{_PAD}>{esc(v)}</td>" for v in values)
        rows.append(f"<tr{mark}><th>{esc(name)}</th>{cells}</tr>")
    return (
        '<table class="soranb-diff" style="border-collapse:collapse;font-size:12px">'
        f"<thead><tr><th></th>{heads}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


class CompareView(StaticReprMixin, widgets.VBox):
    """Synced players over two to four finished records, and their diff.

    `records` are records or record ids (looked up through the service). Bad picks raise
    `RequestInvalid` saying what to change, before anything is shown. `media_urls`: the cache
    of the view that opened it (default: the one every view of `service` shares).
    """

    def __init__(
        self,
        service: ServiceLike,
        records: Iterable[GenerationRecord | str],
        *,
        media_urls: MediaUrls | None = None,
    ) -> None:
        self.service = service
        self.media_urls = media_urls if media_urls is not None else shared_media_urls(service)
        picked = list(records)
        check_count(len(picked))  # before any lookup
        self.records = [self._record(r) for r in picked]
        check_comparable(self.records)
        self.players = SyncedPlayers(videos=self._videos())
        self.diff = widgets.HTML(diff_html(self.records))
        title = widgets.HTML(f'<div class="soranb-section-title">Compare {len(self.records)} videos</div>')
        super().__init__([title, self.players, self.diff])
        self.add_class("soranb-compare")

    def _record(self, item: GenerationRecord | str) -> GenerationRecord:
        if isinstance(item, GenerationRecord):
            return item
        try:
            record: GenerationRecord = self.service.get(item)
        except RecordNotFound:
            raise RequestInvalid("compare", f"no video with id {item[:40]!r}; pick one from the history") from None
        return record

    def url_for(self, key: str) -> str:
        """A media key's browser URL, reused while the store's expiry leaves it time (`MediaUrls`)."""
        return self.media_urls.url(key)

    def _videos(self) -> list[dict[str, str]]:
        return [
            {
                "src": _allowed(self.url_for(r.video_key or "")),
                "poster": _allowed(self.url_for(r.thumbnail_key)) if r.thumbnail_key else "",
                "label": f"video {n}: {r.model} {r.size} {r.seconds} s",
            }
            for n, r in enumerate(self.records, start=1)
        ]

    @property
    def media_keys(self) -> list[str]:
        """The videos and posters this view plays."""
        return [key for r in self.records for key in (r.video_key, r.thumbnail_key) if key]

    def refresh_urls(self) -> None:
        """Take the URLs that were renewed (near their expiry). The browser rebuilds every player when
        `videos` changes, so it is assigned only when a URL did change."""
        videos = self._videos()
        if videos != self.players.videos:
            self.players.videos = videos

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any] | None:
        """Shown again (a new output of this view): players whose URLs went stale get fresh ones."""
        with contextlib.suppress(SoranbError):  # the store cannot sign now: the players keep what they have
            self.refresh_urls()
        return super()._repr_mimebundle_(**kwargs)

    @property
    def record_ids(self) -> list[str]:
        return [r.id for r in self.records]

    def close(self) -> None:
        close_tree(self)

    def _static_html(self) -> str:
        return (
            f'<div class="soranb-compare-static"><b>Compare {len(self.records)} videos</b>'
            f"{diff_html(self.records, self.url_for)}</div>"
        )

    def _static_text(self) -> str:
        return f"CompareView: {len(self.records)} videos"
