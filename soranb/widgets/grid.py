"""VariationGrid: prompts x variants x models x sizes x lengths, priced before it starts, shown as live cards.

    VariationGrid(service)                       # type prompts, pick settings, see the cost, Start
    VariationGrid(service, plan=plan)            # an existing plan (`soranb.variation`) and its records

The matrix is planned by `soranb.variation` and made by `service.vary`, so the widget and code agree:
the cost shown is the cost of what is still to make (a grid already made under the same key costs
nothing again), and the budget guard's refusal (how much over) is shown before anything is stored or
sent. The grid's rows and columns are the settings that vary (the last varied setting runs across);
each cell is a live `RecordCard` updated from service events, with a "compare" box that feeds
`CompareView` (two to four finished videos played in sync).
"""

from __future__ import annotations

import re
import secrets
import threading
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets

from ..catalog import DEFAULT_MODEL, DEFAULT_SECONDS, DEFAULT_SIZE, MODELS, SECONDS
from ..errors import RecordNotFound, RequestInvalid, SoranbError
from ..events import ServiceEvent
from ..records import GenerationRecord, Status
from ..report import esc, format_cost, status_badge_html, thumbnail_html
from ..variation import VariationCell, VariationPlan, plan_variations
from ._base import RepeatGuard, StaticReprMixin, close_tree, hold
from .cards import CardParts, RecordCard
from .delivery import Delivery
from .media_urls import MediaUrls, shared_media_urls
from .style import stylesheet
from .toasts import Toasts, describe_exception, guarded

if TYPE_CHECKING:
    from ..protocols import ServiceLike
    from .onscreen import ScreenClick

__all__ = ["VariationGrid", "grid_shape"]

_AXES = ("prompt", "variant", "model", "size", "seconds")
_ALL_SIZES = tuple(dict.fromkeys(size for spec in MODELS.values() for size in spec.sizes))
_NOTE_STYLE = "color:#6b7280;font-size:12px;padding:6px"
_SHOWN_COST = re.compile(r"Start costs (\$[\d,]+\.\d\d)")  # the price in the note, as `format_cost` wrote it


def _value_label(axis: str, value: Any) -> str:
    if axis == "seconds":
        return f"{value} s"
    if axis == "variant":
        return str(value) or "(as written)"
    return str(value)


def _cell_values(cell: VariationCell) -> dict[str, Any]:
    return {
        "prompt": cell.prompt,
        "variant": cell.variant,
        "model": cell.model,
        "size": cell.size,
        "seconds": cell.seconds,
    }


def grid_shape(plan: VariationPlan) -> tuple[list[str], list[str]]:
    """Row and column headers (plain text): the last varied setting runs across, the others down.

    Cells in matrix order fill the grid row by row, since the last varied setting varies fastest.
    """
    varied = list(plan.varied)
    if not varied:
        return [""], [""]
    across, down = varied[-1], varied[:-1]
    columns = [_value_label(across, v) for v in plan.varied[across]]
    rows = []
    for cell in plan.cells[:: len(columns)]:
        values = _cell_values(cell)
        rows.append(" · ".join(_value_label(axis, values[axis]) for axis in down))
    return rows, columns


class _Cell(widgets.VBox):
    """One cell of the grid: a live card and its "compare" box, or a note (not offered, not made, deleted)."""

    def __init__(self, plan_cell: VariationCell, card: RecordCard | None, note: str = "") -> None:
        self.plan_cell = plan_cell
        self.card = card
        self.compare = widgets.Checkbox(value=False, description="compare", indent=False, layout={"width": "auto"})
        self.compare.add_class("soranb-compare-pick")
        self.note = widgets.HTML(f'<div class="soranb-grid-note" style="{_NOTE_STYLE}">{esc(note)}</div>')
        super().__init__(layout=widgets.Layout(width="352px"))
        self.add_class("soranb-grid-cell")
        self.show_state()

    @property
    def record(self) -> GenerationRecord | None:
        return self.card.record if self.card is not None else None

    def show_state(self) -> None:
        """The card and its compare box (enabled once the video is finished), or the note."""
        shown: tuple[widgets.Widget, ...] = (self.note,)
        if self.card is not None:
            finished = self.card.record.status == Status.COMPLETED and bool(self.card.record.video_key)
            with hold(self.compare):
                self.compare.disabled = not finished
                if not finished:
                    self.compare.value = False
            shown = (self.card, self.compare)
        if tuple(self.children) != shown:  # type: ignore[has-type]
            self.children = shown

    def gone(self, why: str) -> None:
        """The record was deleted: the cell says so (its card is closed)."""
        card, self.card = self.card, None
        self.note.value = f'<div class="soranb-grid-note" style="{_NOTE_STYLE}">{esc(why)}</div>'
        self.show_state()
        if card is not None:
            card.close_all()

    def close_all(self) -> None:
        if self.card is not None:
            self.card.close_all()
        for widget in (self.compare, self.note, self):
            widget.close()


class VariationGrid(StaticReprMixin, widgets.VBox):
    """Controls for the matrix, its cost before Start, and the grid of live cards; Compare opens synced players.

    `key` names the grid: Start under the same key and settings shows the records made before instead of
    paying again; tick "new takes" for a fresh set (a double-click then asks before a second set).
    """

    def __init__(
        self,
        service: ServiceLike,
        *,
        plan: VariationPlan | None = None,
        records: Sequence[GenerationRecord] | None = None,
        key: str = "vary",
        toasts: Toasts | None = None,
        repeat_guard: RepeatGuard | None = None,
        media_urls: MediaUrls | None = None,
    ) -> None:
        self.service = service
        # the one cache of media URLs, shared with the other views of this service
        self.media_urls = media_urls if media_urls is not None else shared_media_urls(service)
        self.key = key
        self.recent = repeat_guard or RepeatGuard()
        self._own_toasts = own_toasts = toasts is None
        self.toasts = toasts if toasts is not None else Toasts()
        self._guard = guarded(self.toasts)
        self._lock = threading.RLock()
        self._take = ""  # the "new takes" suffix of the key, fixed from pricing to Start
        self._confirm_key: object = None
        self._cells: list[_Cell] = []
        self._by_id: dict[str, _Cell] = {}
        self._delivery = Delivery(on_error=lambda exc: self.toasts.error(describe_exception(exc)))
        self._parts = CardParts()
        self.plan: VariationPlan | None = None
        self._price_text = ""  # the last price said, for asking again when the screen showed another
        self.compare_view: Any = None
        self._build_controls()
        parts: list[widgets.Widget] = [
            stylesheet(),
            widgets.HTML('<div class="soranb-section-title">Variation grid</div>'),
            self.prompts,
            self.variants,
            widgets.HBox([self.models, self.sizes, self.seconds]),
            widgets.HBox([self.start_button, self.new_takes]),
            self.cost_note,
            self.table,
            widgets.HBox([self.compare_button, self.compare_note]),
            self.compare_box,
            self.screen,
        ]
        if own_toasts:
            parts.append(self.toasts)
        super().__init__(parts)
        self.add_class("soranb-variation-grid")
        self._unsubscribe: Callable[[], None] | None = service.subscribe(self._hand_over)
        if plan is not None:
            self._load_controls(plan)
            self.show(plan, records)
        self.price()
        for control in (self.prompts, self.variants, self.models, self.sizes, self.seconds, self.new_takes):
            control.observe(self._guard(lambda _change: self.price()), "value")

    def _build_controls(self) -> None:
        area = {"width": "100%"}
        # Priced as you type: the price on screen follows the boxes, and Start checks it (see `_on_screen_click`).
        self.prompts = widgets.Textarea(placeholder="One prompt per line", layout=area)
        self.prompts.add_class("soranb-vary-prompts")
        self.variants = widgets.Textarea(
            placeholder="Optional variants, one per line (e.g. at dusk); {variant} in a prompt says where",
            layout=area,
        )
        self.variants.add_class("soranb-vary-variants")
        self.models = widgets.SelectMultiple(
            options=[(spec.label, name) for name, spec in MODELS.items()], value=(DEFAULT_MODEL,), description="Models"
        )
        self.sizes = widgets.SelectMultiple(options=_ALL_SIZES, value=(DEFAULT_SIZE,), description="Sizes")
        self.seconds = widgets.SelectMultiple(
            options=[(f"{s} s", s) for s in SECONDS], value=(DEFAULT_SECONDS,), description="Lengths"
        )
        for name, control in (("models", self.models), ("sizes", self.sizes), ("seconds", self.seconds)):
            control.add_class(f"soranb-vary-{name}")
        self.start_button = widgets.Button(description="Start", icon="play", button_style="primary")
        self.start_button.add_class("soranb-vary-start")
        self.start_button.on_click(self._guard(lambda _b: self._start_clicked()))
        self.new_takes = widgets.Checkbox(value=False, description="new takes (not the videos made before)")
        self.cost_note = widgets.HTML()
        self.cost_note.add_class("soranb-vary-cost")
        self.table = widgets.GridBox(layout=widgets.Layout(grid_gap="4px", overflow="auto", width="100%"))
        self.table.add_class("soranb-vary-table")
        self.compare_button = widgets.Button(description="Compare", icon="columns", disabled=True)
        self.compare_button.add_class("soranb-vary-compare")
        self.compare_button.on_click(self._guard(lambda _b: self.open_compare()))
        self.compare_note = widgets.HTML()
        self.compare_box = widgets.VBox()
        # A click in the page brings the boxes and the price on screen with it (see `onscreen`).
        from .onscreen import OnScreenClick  # anywidget: loaded with the first view that clicks, not with the package

        self.screen = OnScreenClick(
            "soranb-variation-grid",
            ["soranb-vary-start"],
            self._guard(self._on_screen_click),
            fields={"prompts": ".soranb-vary-prompts textarea", "variants": ".soranb-vary-variants textarea"},
            shown={"cost": ".soranb-vary-cost-text"},
        )

    # -- the plan and its cost ------------------------------------------------------------
    def current_plan(self) -> VariationPlan:
        """The matrix the controls describe (`RequestInvalid` names what to change)."""
        prompts = [line.strip() for line in self.prompts.value.splitlines() if line.strip()]
        if not prompts:
            raise RequestInvalid("prompts", "type at least one prompt, one per line")
        variants = [line.strip() for line in self.variants.value.splitlines() if line.strip()] or [""]
        key = f"{self.key}:{self._take}" if self._take else self.key
        return plan_variations(
            prompts,
            models=list(self.models.value),
            sizes=list(self.sizes.value),
            seconds=list(self.seconds.value),
            variants=variants,
            key=key,
        )

    def price(self) -> Decimal | None:
        """Show what Start would cost (or why it cannot start); the cost, or None when it cannot."""
        if self.new_takes.value and not self._take:
            self._take = secrets.token_hex(4)
        elif not self.new_takes.value:
            self._take = ""
        try:
            plan = self.current_plan()
            batch = self.service.plan_batch(plan.lines(), batch_key=f"vary:{plan.key}")
            made = f"; {len(batch.done)} made already, shown at no cost" if batch.done else ""
            cost: Decimal = batch.cost
            text = f"{plan.describe()}{made}. Start costs {format_cost(cost)}."
            if batch.to_make:
                budget = self.service.budget()
                budget.check(cost, f"this grid of {len(batch.to_make)} video(s)")
                if budget.remaining is not None:
                    text += f" {format_cost(budget.remaining - cost)} of the budget will be left."
        except SoranbError as exc:
            self._say(describe_exception(exc), ok=False)
            return None
        self._price_text = text
        self._say(text, ok=True)
        return cost

    def _say(self, text: str, *, ok: bool) -> None:
        """The cost, or in red why Start would be refused.

        Start itself stays enabled: a prompt typed and then Start clicked reaches the kernel as the
        text's change and then the click, so a button disabled for "no prompt yet" would swallow that
        click. Start checks everything again, and the service refuses before anything is stored.
        """
        color = "#374151" if ok else "#b91c1c"
        self.cost_note.value = f'<div class="soranb-vary-cost-text" style="color:{color}">{esc(text)}</div>'

    def _load_controls(self, plan: VariationPlan) -> None:
        with hold(self.prompts, self.variants, self.models, self.sizes, self.seconds):
            self.prompts.value = "\n".join(plan.prompts)
            self.variants.value = "\n".join(v for v in plan.variants if v)
            self.models.value = tuple(m for m in plan.models if m in MODELS)
            self.sizes.value = tuple(s for s in plan.sizes if s in _ALL_SIZES)
            self.seconds.value = tuple(s for s in plan.seconds if s in SECONDS)
        key = plan.key
        if key != self.key:
            self.key, self._take = (key.split(":", 1)[0], key.split(":", 1)[1]) if ":" in key else (key, "")
            self.new_takes.value = bool(self._take)

    # -- start ------------------------------------------------------------------------------
    def _on_screen_click(self, click: ScreenClick) -> None:
        """Start clicked in the page: make what the boxes held at the click, and only at the price that was
        on screen then; a price changed since (a line typed just before the click) is shown and asked again."""
        for box, name in ((self.prompts, "prompts"), (self.variants, "variants")):
            text = click.fields.get(name)
            if text is not None and text != box.value:
                box.value = text  # the text may still be queued behind the page's sync throttle
        cost = self.price()
        shown = _SHOWN_COST.search(click.shown.get("cost", ""))
        if cost is not None and (shown is None or shown.group(1) != format_cost(cost)):
            self._say(
                f"Nothing was started: the price on screen was not this. {self._price_text} "
                "Press Start again to make these.",
                ok=True,
            )
            return
        self.start_button.click()

    def _start_clicked(self) -> None:
        try:
            self.price()  # what is refused is said before anything starts, and Start stops there
            self.start()
        except SoranbError as exc:  # e.g. the budget guard: said in the grid, not only in a toast
            self._say(describe_exception(exc), ok=False)
            raise

    def start(self) -> list[GenerationRecord] | None:
        """Make the matrix (what Start does) and show it; None when it asked first instead of spending."""
        plan = self.current_plan()
        fingerprint = ("vary", plan.prompts, plan.variants, plan.models, plan.sizes, plan.seconds)
        batch = self.service.plan_batch(plan.lines(), batch_key=f"vary:{plan.key}")
        ago = self.recent.seconds_since(fingerprint)
        if ago is not None and self.new_takes.value and self._confirm_key != fingerprint:
            self._confirm_key = fingerprint
            self._say(
                f"You started this same grid {ago:.0f} s ago. Press Start again to make another set: "
                f"Start costs {format_cost(batch.cost)}.",
                ok=True,
            )
            return None
        self._confirm_key = None
        self.start_button.disabled = True  # busy from the click until the records are stored
        try:
            records: list[GenerationRecord] = self.service.vary(
                plan.prompts,
                models=plan.models,
                sizes=plan.sizes,
                seconds=plan.seconds,
                variants=plan.variants,
                key=plan.key,
            )
        finally:
            self.start_button.disabled = False
        if batch.to_make:
            self.recent.started(fingerprint)
            self.toasts.success(f"Started {len(batch.to_make)} video(s) ({format_cost(batch.cost)})")
        self._take = secrets.token_hex(4) if self.new_takes.value else ""
        self.show(plan, records)
        self.price()
        return records

    # -- the grid -----------------------------------------------------------------------------
    def url_for(self, key: str) -> str:
        """A media key's browser URL, reused while the store's expiry leaves it time (`MediaUrls`)."""
        return self.media_urls.url(key)

    def show(self, plan: VariationPlan, records: Sequence[GenerationRecord] | None = None) -> None:
        """Show `plan` as the grid; `records` in `plan.made` order (default: those stored under its key)."""
        if records is None:
            batch = self.service.plan_batch(plan.lines(), batch_key=f"vary:{plan.key}")
            found: list[GenerationRecord | None] = [item.existing for item in batch.items]
        else:
            found = list(records)
        if len(found) != len(plan.made):
            raise ValueError(f"{len(found)} records for a plan of {len(plan.made)} videos; give one per made cell")
        for record in found:  # URLs first: a lookup that raises leaves the grid as it was
            for key in (record.video_key, record.thumbnail_key) if record is not None else ():
                if key:
                    self.url_for(key)
        by_cell = iter(found)
        cells = []
        for plan_cell in plan.cells:
            if plan_cell.request is None:
                cells.append(_Cell(plan_cell, None, plan_cell.problem or "not offered"))
                continue
            record = next(by_cell)
            card = self._make_card(record) if record is not None else None
            cells.append(_Cell(plan_cell, card, "" if record is not None else "not made yet: press Start"))
        self._replace_cells(plan, cells)

    def _make_card(self, record: GenerationRecord) -> RecordCard:
        return RecordCard(record, self.url_for, self._delete, wrap=self._guard, parts=self._parts)

    def _replace_cells(self, plan: VariationPlan, cells: list[_Cell]) -> None:
        rows, columns = grid_shape(plan)
        varied = list(plan.varied)
        corner = " / ".join(filter(None, [" · ".join(varied[:-1]), varied[-1] if varied else ""]))

        def header(text: str, kind: str) -> widgets.HTML:
            view = widgets.HTML(f'<div style="font-weight:600;padding:4px">{esc(text)}</div>')
            view.add_class(f"soranb-grid-{kind}")
            return view

        children: list[widgets.Widget] = [header(corner, "corner"), *(header(c, "column") for c in columns)]
        for n, row in enumerate(rows):
            children.append(header(row, "row"))
            children.extend(cells[n * len(columns) : (n + 1) * len(columns)])
        for cell in cells:
            cell.compare.observe(self._guard(self._on_pick), "value")
        with self._lock:
            old, self._cells = self._cells, cells
            self._by_id = {c.record.id: c for c in cells if c.record is not None}
            self.plan = plan
        old_headers = [w for w in self.table.children if not isinstance(w, _Cell)]
        with hold(self.table, self.table.layout):
            self.table.layout.grid_template_columns = f"minmax(120px, auto) repeat({len(columns)}, 352px)"
            self.table.children = tuple(children)
        for cell in old:
            cell.close_all()
        for widget in old_headers:
            widget.close()
        self._update_compare()

    @property
    def cells(self) -> list[_Cell]:
        """The cells in matrix order (`plan.cells` order), including those not offered."""
        with self._lock:
            return list(self._cells)

    def cell(self, record_id: str) -> _Cell | None:
        return self._by_id.get(record_id)

    @property
    def records(self) -> list[GenerationRecord | None]:
        """The record of each made cell in matrix order (None: not made yet or deleted)."""
        return [c.record for c in self.cells if c.plan_cell.request is not None]

    def _delete(self, record_id: str) -> None:
        try:
            self.service.delete(record_id)
        except RecordNotFound:
            self.toasts.info("That video was already deleted elsewhere.")
        self._gone(record_id)

    def _gone(self, record_id: str) -> None:
        with self._lock:
            cell = self._by_id.pop(record_id, None)
        if cell is not None:
            cell.gone("deleted")
            self._update_compare()

    # -- events (the views' thread, handed over by `Delivery`) -------------------------------------
    def _hand_over(self, event: ServiceEvent) -> None:
        """Service thread: queue the event for the views' thread; of a job's waiting progress, only the newest."""
        if event.kind == "progress" and event.record is not None:
            self._delivery.call_latest(("progress", event.record.id), self._on_event, event)
        else:
            self._delivery.call(self._on_event, event)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until the service events handed over so far are shown (plain Python, tests)."""
        return self._delivery.flush(timeout)

    def _on_event(self, event: ServiceEvent) -> None:
        record = event.record
        if record is None or event.kind == "log":
            return
        with self._lock:
            cell = self._by_id.get(record.id)
        if cell is None:
            return
        if event.kind == "deleted":
            self._gone(record.id)
            return
        self._apply(cell, record)  # off the service's thread: a signed URL may be asked for here

    def _apply(self, cell: _Cell, record: GenerationRecord) -> None:
        with self._lock:
            if cell.card is not None and cell.card.update(record):
                cell.show_state()
        self._update_compare()

    # -- compare ---------------------------------------------------------------------------------
    @property
    def picked(self) -> list[GenerationRecord]:
        """The finished records whose "compare" box is ticked, in matrix order."""
        return [c.record for c in self.cells if c.compare.value and c.record is not None]

    def _on_pick(self, change: dict[str, Any]) -> None:
        from .compare import MAX_COMPARED

        if change["new"] and len(self.picked) > MAX_COMPARED:
            change["owner"].value = False
            self.compare_note.value = f'<span style="{_NOTE_STYLE}">At most {MAX_COMPARED} videos at once.</span>'
            return
        self._update_compare()

    def _update_compare(self) -> None:
        from .compare import MIN_COMPARED

        count = len(self.picked)
        with hold(self.compare_button, self.compare_note):
            self.compare_button.disabled = count < MIN_COMPARED
            self.compare_button.description = f"Compare {count}" if count else "Compare"
            self.compare_note.value = (
                f'<span style="{_NOTE_STYLE}">Tick "compare" on {MIN_COMPARED} to 4 finished videos.</span>'
                if count < MIN_COMPARED
                else ""
            )

    def open_compare(self) -> Any:
        """Play the picked videos in sync under the grid (replacing an earlier compare)."""
        from .compare import CompareView

        view = CompareView(self.service, self.picked, media_urls=self.media_urls)
        old, self.compare_view = self.compare_view, view
        self.compare_box.children = (view,)
        if old is not None:
            old.close()
        return view

    # -- lifetime and static view -------------------------------------------------------------------
    def close(self) -> None:
        if getattr(self, "_unsubscribe", None):
            self._unsubscribe()  # type: ignore[misc]
            self._unsubscribe = None
        delivery = getattr(self, "_delivery", None)
        if delivery is not None:  # nothing handed over still runs against closed cells
            delivery.close()
        if getattr(self, "compare_view", None) is not None:
            self.compare_view.close()
        if hasattr(self, "_parts"):
            with self._lock:
                cells, self._cells, self._by_id = self._cells, [], {}
            self.table.children = ()
            for cell in cells:
                cell.close_all()
            self._parts.close()
        shared = getattr(self, "toasts", None) if not getattr(self, "_own_toasts", True) else None
        close_tree(self, keep=(shared,))  # toasts passed in belong to the app that passed them

    def _static_html(self) -> str:
        plan = self.plan
        if plan is None:
            return f'<div class="soranb-variation-static">{self.cost_note.value}</div>'
        rows, columns = grid_shape(plan)
        cells = self.cells
        head = "".join(f"<th>{esc(c)}</th>" for c in columns)
        body = []
        for n, row in enumerate(rows):
            tds = "".join(self._static_cell(c) for c in cells[n * len(columns) : (n + 1) * len(columns)])
            body.append(f"<tr><th>{esc(row)}</th>{tds}</tr>")
        return (
            f'<div class="soranb-variation-static"><div>{esc(plan.describe())}</div>'
            f'<table class="soranb-variation-table"><thead><tr><th></th>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table></div>"
        )

    def _static_cell(self, cell: _Cell) -> str:
        record = cell.record
        if record is None:
            return f"<td>{esc(cell.plan_cell.problem or 'not made')}</td>"
        return f"<td>{status_badge_html(record.status.value)}<br>{thumbnail_html(record, self.url_for)}</td>"

    def _static_text(self) -> str:
        return f"VariationGrid: {len(self.cells)} cells"
