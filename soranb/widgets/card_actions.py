"""ActionField: the field a finished card opens to remix, extend or edit its video, priced first.

Remix, Extend and Edit all start a new paid video from the card's own record (by id, whatever
else happens in the grid). They share one field, so a card carries one set of widget models
for the three: a label, the prompt, the seconds an extension adds, the cost, Start and Cancel.
The cost is the catalog's price of the request the service will be asked to make, shown before
Start; when the budget guard would refuse it, the field says so (the service still decides).
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Literal

import ipywidgets as widgets

from ..catalog import EXTENSION_SECONDS
from ..records import GenerationRecord
from ..report import esc, format_cost
from ..request import GenerationRequest, SourceVideo

if TYPE_CHECKING:
    from .cards import CardParts

__all__ = ["Action", "ActionField", "action_request"]

Action = Literal["remix", "extend", "edit"]
BudgetLeft = Callable[[], "Decimal | None"]

# kind -> (title, question, placeholder, Start button)
_WORDS: dict[Action, tuple[str, str, str, str]] = {
    "remix": ("Remix this video", "what should change?", "What to change, e.g. make it night", "Start remix"),
    "extend": (
        "Extend this video",
        "what happens next?",
        "What happens next, e.g. the fox jumps a stream",
        "Start extension",
    ),
    "edit": ("Edit this video", "what should change?", "What to change, e.g. make it night", "Start edit"),
}


def action_request(kind: Action, record: GenerationRecord, prompt: str, seconds: int = 0) -> GenerationRequest:
    """The request the service makes for this action (what it costs is the catalog's price of it)."""
    job_id = record.openai_job_id or ""
    if kind == "extend":
        source = SourceVideo("extend", job_id, seconds)
        return GenerationRequest(prompt, record.model, record.size, record.seconds + seconds, source=source)
    if kind == "edit":
        return GenerationRequest(prompt, record.model, record.size, record.seconds, source=SourceVideo("edit", job_id))
    return GenerationRequest(prompt, record.model, record.size, record.seconds)


class ActionField(widgets.VBox):
    """Label, prompt, seconds (extend only), cost, Start and Cancel; `kind` is None while closed.

    `on_start(kind, prompt, seconds)` is called by `start()`; it returns None when nothing started
    (e.g. the grid asked first about a repeat), and the field then stays open. The card wires the
    Start and Cancel buttons, since what shows on the card changes with them.
    """

    def __init__(
        self,
        parts: CardParts,
        wrap: Callable[[Callable[..., None]], Callable[..., None]],
        on_start: Callable[[Action, str, int], object],
        budget_left: BudgetLeft | None = None,
    ) -> None:
        self.kind: Action | None = None
        self.record: GenerationRecord | None = None
        self._on_start = on_start
        self._budget_left = budget_left
        self._remaining: Decimal | None = None
        self.label = widgets.HTML(layout=parts.wide, style=parts.html_style)
        self.text = widgets.Text(layout=parts.wide)
        self.text.add_class("soranb-remix-text")  # the browser tests' hook, from when it was remix only
        self.text.add_class("soranb-action-text")
        self.seconds = widgets.Dropdown(
            options=[(f"+{s} s", s) for s in EXTENSION_SECONDS], description="Add", layout=parts.auto
        )
        self.seconds.add_class("soranb-action-seconds")
        self.cost = widgets.HTML(layout=parts.wide, style=parts.html_style)
        self.go = widgets.Button(icon="play", button_style="primary", layout=parts.auto, style=parts.button_style)
        self.go.add_class("soranb-remix-go")
        self.go.add_class("soranb-action-go")
        self.cancel = widgets.Button(description="Cancel", layout=parts.auto, style=parts.button_style)
        self.buttons = widgets.HBox([self.go, self.cancel], layout=parts.row)
        self.seconds.observe(wrap(lambda _c: self._show_cost()), "value")
        super().__init__(layout=parts.wide)
        self.add_class("soranb-remix-box")
        self.add_class("soranb-action-box")

    def open_for(self, kind: Action, record: GenerationRecord) -> None:
        """Show the field for `kind` on `record`, priced (the card then puts the cursor in the prompt)."""
        title, question, placeholder, start = _WORDS[kind]
        self.kind, self.record = kind, record
        self._remaining = self._budget_left() if self._budget_left is not None else None
        self.label.value = f'<span class="soranb-remix-label"><b>{esc(title)}</b>: {esc(question)}</span>'
        self.text.placeholder = placeholder
        self.go.description = start
        shown = (self.label, self.text, self.seconds) if kind == "extend" else (self.label, self.text)
        self.children = (*shown, self.cost, self.buttons)
        self._show_cost()

    def close_field(self) -> None:
        self.kind = None

    def reset(self) -> None:
        """Closed and empty (a card given another record)."""
        self.kind = None
        self.text.value = ""

    def price(self) -> Decimal:
        """What Start would cost now (the catalog's list price of the request)."""
        assert self.kind is not None and self.record is not None
        return action_request(self.kind, self.record, "price", int(self.seconds.value)).cost

    def _show_cost(self) -> None:
        if self.kind is None or self.record is None:
            return
        cost = self.price()
        what = f"{self.seconds.value} s added" if self.kind == "extend" else f"{self.record.seconds} s"
        text = f'<span class="soranb-action-cost">Cost: <b>{format_cost(cost)}</b> ({esc(what)})</span>'
        if self._remaining is not None and cost > self._remaining:
            text += (
                f'<div class="soranb-action-over" style="color:#dc2626">Over the budget: '
                f"{format_cost(self._remaining)} left today. Start will be refused.</div>"
            )
        self.cost.value = text

    def start(self) -> object:
        """Start the action with the typed prompt; errors go to the caller (the grid's toasts)."""
        if self.kind is None:  # a double-click's second click finds the field closed: nothing to do
            return None
        text = self.text.value
        if not text.strip():
            raise ValueError(f"type a prompt first: {_WORDS[self.kind][1]}")
        self.go.disabled = True
        try:
            started = self._on_start(self.kind, text, int(self.seconds.value))
        finally:
            self.go.disabled = False
        if started is not None:
            self.reset()
        return started

    def close_all(self) -> None:
        for child in (self.label, self.text, self.seconds, self.cost, self.go, self.cancel, self.buttons):
            child.close()  # the layouts and styles are the grid's shared parts: they stay
        self.close()
