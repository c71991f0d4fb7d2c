"""Small pieces every soranb view shares: static HTML fallbacks and media URLs."""

from __future__ import annotations

import base64
import contextlib
import json
import threading
import time
from collections.abc import Callable, Hashable, Iterator
from typing import Any

import ipywidgets as widgets

from ..jupyter import media_src as jupyter_media_src
from ..protocols import ServiceLike

__all__ = ["RepeatGuard", "StaticReprMixin", "close_tree", "hold", "media_src", "state_json", "widget_tree"]

WIDGET_VIEW_MIME = "application/vnd.jupyter.widget-view+json"


def media_src(service: ServiceLike, key: str) -> str:
    """The URL a browser in JupyterLab loads for a store media key (`soranb.jupyter` knows how
    Jupyter serves the local store; views call this one name, which tests replace)."""
    return str(jupyter_media_src(service, key))


class RepeatGuard:
    """Remembers what was just started, so the same spend again within `window_s` asks first.

    A double-click reaches the kernel as two clicks: the button is disabled only after the
    first one has already been sent. The second, identical request is caught here instead
    of becoming a second paid job.
    """

    def __init__(self, window_s: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.window_s = window_s
        self._clock = clock
        self._lock = threading.Lock()
        self._started: dict[Hashable, float] = {}

    def seconds_since(self, key: Hashable) -> float | None:
        """How long ago the same request was started, when that is within the window."""
        with self._lock:
            at = self._started.get(key)
            if at is None:
                return None
            ago = self._clock() - at
            return ago if ago < self.window_s else None

    def started(self, key: Hashable) -> None:
        now = self._clock()
        with self._lock:
            self._started = {k: t for k, t in self._started.items() if now - t < self.window_s}
            self._started[key] = now


class StaticReprMixin:
    """Adds a `text/html` and `text/plain` fallback to a widget's mime bundle.

    ipywidgets 8 `Widget._repr_mimebundle_` returns only the widget-view JSON and a
    `text/plain` repr. A notebook saved after execution and opened without a kernel
    (nbconvert, GitHub) cannot render the view, so it shows the richest fallback:
    here, the same content as static, escaped HTML. Frontends with a live widget
    manager rank the widget view first and keep rendering the live view.
    """

    def _static_html(self) -> str:
        raise NotImplementedError

    def _static_text(self) -> str:
        return type(self).__name__

    def snapshot(self) -> Any:
        """The view as it is now, as static HTML for a later cell.

        The `text/html` fallback is computed when the view is displayed; a view shown
        before its jobs ran falls back to that early state. A closing cell with
        `view.snapshot()` leaves the final state in the saved notebook.
        """
        from IPython.display import HTML

        return HTML(self._static_html())

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any] | None:
        base = super()._repr_mimebundle_(**kwargs)  # type: ignore[misc]
        if base is None:  # closed widget: nothing live to show
            return None
        data = dict(base)
        data["text/plain"] = self._static_text()
        data["text/html"] = self._static_html()
        return data


@contextlib.contextmanager
def hold(*views: widgets.Widget) -> Iterator[None]:
    """`hold_sync()` on several widgets at once: each sends one update message at the end.

    `hold_sync` batches one widget's trait changes; a card change touches a few
    widgets, so hold them all and let the frontend get one message per widget.
    """
    with contextlib.ExitStack() as stack:
        for view in views:
            stack.enter_context(view.hold_sync())
        yield


def widget_tree(root: widgets.Widget) -> list[widgets.Widget]:
    """Every widget model reachable from `root` (children, layouts, styles): what a frontend would load."""
    from ipywidgets.widgets.widget import _instances

    seen: dict[str, widgets.Widget] = {}
    stack = [root]
    while stack:
        widget = stack.pop()
        if widget.comm is None or widget.model_id in seen:
            continue
        seen[widget.model_id] = widget
        try:
            state = widget.get_state()
        except AttributeError:  # it points at a closed widget: nothing further to reach
            continue
        for value in state.values():
            refs = value if isinstance(value, (list, tuple)) else [value]
            for ref in refs:
                if isinstance(ref, str) and ref.startswith("IPY_MODEL_") and ref[10:] in _instances:
                    stack.append(_instances[ref[10:]])
    return list(seen.values())


def state_json(root: widgets.Widget) -> str:
    """The synced state of every widget under `root` as JSON, bytes as base64 (as a saved notebook's
    widget state holds them): for size budgets and "no secret anywhere" checks."""

    def default(value: object) -> object:
        if isinstance(value, (bytes, bytearray, memoryview)):
            return base64.b64encode(bytes(value)).decode("ascii")
        return str(value)

    return json.dumps([w.get_state() for w in widget_tree(root)], default=default)


def close_tree(root: widgets.Widget, keep: tuple[widgets.Widget | None, ...] = ()) -> None:
    """Close `root` and every widget under it except the subtrees in `keep` (e.g. shared toasts).

    ipywidgets' `close()` closes one model only; a view owns the models it made, so it
    closes them all, parents first so no open widget is left pointing at a closed one.
    """
    if getattr(root, "comm", None) is None:
        return
    spared: set[str] = set()
    for widget in keep:
        if widget is not None and widget.comm is not None:
            spared.update(w.model_id for w in widget_tree(widget))
    for widget in widget_tree(root):
        if widget.comm is not None and widget.model_id not in spared:
            widgets.Widget.close(widget)
