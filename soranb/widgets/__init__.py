"""soranb's notebook views: thin ipywidgets over the one shared service.

    GenerationForm   compose a request, see its cost and problems, Generate
    HistoryGrid      the history as cards (remix, extend, edit, re-use, star), filtered, paged, updated in place
    DiagnosticsPanel checks, the live debug log, raw provider status
    Toasts           success/error notices; `guarded` makes sure no callback error is lost
    Credentials      type a missing key once, for this kernel only
    VariationGrid    prompts x settings priced before Start, then a grid of live cards (loaded on first use)
    CompareView      two to four finished videos played in sync, with their diff (loaded on first use)

Each view also renders static HTML (its `text/html` fallback), so an executed
notebook shared without a kernel still shows what happened.
"""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets

from ..protocols import ServiceLike
from ..report import esc
from ._base import StaticReprMixin, close_tree
from .credentials import Credentials
from .diagnostics import DiagnosticsPanel
from .form import GenerationForm
from .history import HistoryGrid
from .restart import restart_note
from .toasts import Toasts, guarded

if TYPE_CHECKING:
    from .compare import CompareView
    from .grid import VariationGrid

__all__ = [
    "CompareView",
    "Credentials",
    "DiagnosticsPanel",
    "GenerationForm",
    "HistoryGrid",
    "SoranbApp",
    "Toasts",
    "VariationGrid",
    "app",
    "guarded",
    "keep_logs_out_of_cells",
    "restart_note",
]


def __getattr__(name: str) -> Any:
    """The explorer's views load on first use (`CompareView` brings anywidget): `import soranb.widgets` stays light."""
    if name == "CompareView":
        from .compare import CompareView

        return CompareView
    if name == "VariationGrid":
        from .grid import VariationGrid

        return VariationGrid
    raise AttributeError(f"module 'soranb.widgets' has no attribute {name!r}")


def keep_logs_out_of_cells() -> None:
    """soranb's log goes to the debug log and the diagnostics panel, never to a notebook cell.

    In a kernel, `sys.stderr` is the output of whichever cell ran last: a warning logged by the
    background poller (through a root handler, or logging's last-resort handler for WARNING and
    up) would land in red under an unrelated cell and be saved with the notebook. What a person
    must see is a toast instead. Idempotent; the CLI, which never calls this, still logs to stderr.
    """
    logger = logging.getLogger("soranb")
    if not any(isinstance(h, logging.NullHandler) for h in logger.handlers):
        logger.addHandler(logging.NullHandler())
    logger.propagate = False


def _in_kernel() -> bool:
    return "ipykernel" in sys.modules and type(sys.stderr).__module__.startswith("ipykernel")


if _in_kernel():
    keep_logs_out_of_cells()


class SoranbApp(StaticReprMixin, widgets.VBox):
    """Form, toasts and history over one service, wired together (a failed card's retry and another
    card's "Use these settings" fill the form)."""

    def __init__(self, service: ServiceLike, page_size: int = 12) -> None:
        self.service = service
        self.toasts = Toasts()
        self.form = GenerationForm(service, toasts=self.toasts)
        self.history = HistoryGrid(
            service,
            page_size=page_size,
            toasts=self.toasts,
            on_retry=self.form.load_from,
            on_reuse=self.form.use_settings,
        )
        self.header = widgets.HTML(f'<div style="color:#6b7280;font-size:11px">{esc(service.describe())}</div>')
        super().__init__([self.header, self.form, self.toasts, self.history])
        self.add_class("soranb-app")

    def close(self) -> None:
        for name in ("form", "history"):  # they unsubscribe from the service; may be missing if __init__ failed
            view = getattr(self, name, None)
            if view is not None:
                view.close()
        self.toasts.close()
        close_tree(self)

    def _static_html(self) -> str:
        # Saved with the notebook when the app is first shown, so it is an early state: say so plainly.
        note = (
            '<div class="soranb-live-note" style="padding:4px 8px;background:#fef9c3;border:1px solid #facc15">'
            "<b>This was the live soranb app</b>; it needs a running kernel. Below is how it looked when it was "
            "first shown; the report at the end of the notebook holds the final state of the jobs.</div>"
        )
        return note + str(self.header.value) + self.form._static_html() + self.history._static_html()

    def _static_text(self) -> str:
        return f"soranb app: {self.form._static_text()}; {self.history._static_text()}"


def app(service: ServiceLike | None = None, page_size: int = 12) -> SoranbApp:
    """The generation form, its notices and the history in one box, on the shared service by default."""
    if service is None:
        from ..session import get_service

        service = get_service()
    return SoranbApp(service, page_size=page_size)
