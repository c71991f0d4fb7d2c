"""OnScreenClick: a button's click that carries what the page shows at that click.

ipywidgets sends a text box's value through each widget's sync throttle (one update in flight; the
next waits until the kernel is idle), while a Button's click is a custom message that goes at once.
So a prompt pasted and Generate clicked within a few hundred ms reached the kernel as the click
first, and the old prompt was spent. This hidden anywidget's module (`onscreen.js`) catches a click
on its view's named buttons before the Button does, and sends one message with the named fields'
values and the named texts (the price) read from the page at the click. The view puts that text in
its widgets, checks the price, and then clicks its Button itself, so a click runs the same code as
before. Where the module cannot load, the Buttons work as they always did.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anywidget
import traitlets

__all__ = ["OnScreenClick", "ScreenClick"]

_HERE = Path(__file__).resolve().parent
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScreenClick:
    """One click as the page saw it: which button, the fields' values and the shown texts (by name).

    A name is missing when its element was not on the page; the view then keeps what it has.
    """

    button: str
    fields: dict[str, str] = field(default_factory=dict)
    shown: dict[str, str] = field(default_factory=dict)


def _strings(value: object, names: Iterable[str]) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {name: value[name] for name in names if isinstance(value.get(name), str)}


class OnScreenClick(anywidget.AnyWidget):
    """Hidden; put it inside the view whose root has the CSS class `scope`.

    `buttons`: CSS classes of the buttons whose clicks it carries; `fields` and `shown`: name to CSS
    selector (inside the scope) of an input whose value, or an element whose text, goes with the click.
    `on_click` gets a `ScreenClick`.
    """

    _esm = (_HERE / "onscreen.js").read_text(encoding="utf-8")
    scope = traitlets.Unicode("").tag(sync=True)
    buttons = traitlets.List(traitlets.Unicode(), default_value=[]).tag(sync=True)
    fields = traitlets.Dict(default_value={}).tag(sync=True)
    shown = traitlets.Dict(default_value={}).tag(sync=True)

    def __init__(
        self,
        scope: str,
        buttons: Iterable[str],
        on_click: Callable[[ScreenClick], None],
        *,
        fields: Mapping[str, str] | None = None,
        shown: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(
            scope=scope,
            buttons=list(buttons),
            fields=dict(fields or {}),
            shown=dict(shown or {}),
            layout={"display": "none"},
        )
        self._on_click = on_click
        self.on_msg(self._receive)

    def parse(self, content: object) -> ScreenClick | None:
        """The click in a message from the page; None for anything else (nothing happens then)."""
        if not isinstance(content, dict) or content.get("event") != "click":
            return None
        button = content.get("button")
        if button not in self.buttons:
            return None
        return ScreenClick(
            str(button),
            _strings(content.get("fields"), self.fields),
            _strings(content.get("shown"), self.shown),
        )

    def _receive(self, _widget: Any, content: Any, _buffers: Any) -> None:
        click = self.parse(content)
        if click is None:
            _log.warning("soranb: ignored a message that is not a click on %s", self.buttons)
            return
        self._on_click(click)
