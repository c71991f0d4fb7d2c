"""Toasts: short success/error notices, and `guarded`, which makes sure no callback error is lost.

ipywidgets swallows exceptions raised in a Button's `on_click` callback (they go
to the kernel log, not to the person who clicked). Every soranb button callback
is therefore wrapped by `guarded`, which turns an exception into an error toast.

Notices float in the bottom-right corner of the page (the app's stylesheet), so
they never push the grid down and back up. Successes and information fade;
errors stay until dismissed; the same notice again merges into one with a count.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from typing import Any, Literal, TypeVar, overload

import ipywidgets as widgets
import traitlets

from ..debuglog import redact  # defence in depth: soranb's one redactor, also for unexpected errors
from ..errors import RecordNotFound, SoranbError
from ..report import esc
from ._base import StaticReprMixin, close_tree
from .delivery import Delivery, Later

__all__ = ["Toasts", "describe_exception", "guarded", "short_prompt"]

_log = logging.getLogger("soranb.widgets")
Kind = Literal["success", "error", "info"]
F = TypeVar("F", bound=Callable[..., Any])

_COLORS = {"success": "#16a34a", "error": "#dc2626", "info": "#2563eb"}


def short_prompt(prompt: str, limit: int = 40) -> str:
    """A prompt short enough for a one-line notice."""
    prompt = " ".join(prompt.split())
    return prompt if len(prompt) <= limit else prompt[: limit - 1] + "…"


def describe_exception(exc: BaseException) -> str:
    """What a person sees: our own errors as written, anything else named as unexpected.

    Every message passes soranb's one redactor, so a key in an exception never reaches the page.
    """
    if isinstance(exc, RecordNotFound):  # its text names an id and a folder: say what happened instead
        return "That video is no longer in the history: it was deleted elsewhere. Press Reload."
    if isinstance(exc, SoranbError):
        return redact(str(exc)) or type(exc).__name__
    return redact(f"Unexpected error: {type(exc).__name__}: {exc}")


class Toast(widgets.HBox):
    """One notice: its text and a close ×; `count` is how often it was shown (its text follows it)."""

    count = traitlets.Int(1)

    def __init__(self, kind: Kind, message: str, on_close: Callable[[Toast], None]) -> None:
        self.kind = kind
        self.message = message
        self.text = widgets.HTML(self._html())
        self.close_button = widgets.Button(description="×", tooltip="Dismiss", layout={"width": "32px"})
        self.close_button.on_click(lambda _b: on_close(self))
        super().__init__(
            [self.text, self.close_button],
            layout={"border": f"1px solid {_COLORS[kind]}", "padding": "2px 6px", "margin": "2px 0"},
        )
        self.add_class("soranb-toast")
        self.add_class(f"soranb-toast-{kind}")

    def _html(self) -> str:
        mark = "✓" if self.kind == "success" else "!"
        times = f' <span class="soranb-toast-count">×{self.count}</span>' if self.count > 1 else ""
        return f'<span style="color:{_COLORS[self.kind]};font-weight:600">{mark}</span> {esc(self.message)}{times}'

    @traitlets.observe("count")
    def _show_count(self, _change: dict[str, Any]) -> None:
        self.text.value = self._html()

    def again(self) -> None:
        """The same notice once more: one toast with a count, not a pile."""
        self.count += 1


class Toasts(StaticReprMixin, widgets.VBox):
    """A stack of notices; successes and information dismiss themselves after `dismiss_after`
    seconds (None: never), errors stay until their × is pressed.

    `success`, `error` and `info` may be called from any thread; the children list
    is only changed under a lock, and fades run on the views' thread (`Delivery`),
    not on a thread per notice.
    """

    def __init__(self, dismiss_after: float | None = 5.0, max_shown: int = 6) -> None:
        super().__init__([])
        self.add_class("soranb-toasts")
        self.dismiss_after = dismiss_after
        self.max_shown = max_shown
        self._lock = threading.RLock()
        self._delivery = Delivery()
        self._timers: dict[int, Later] = {}
        self.history: list[tuple[Kind, str]] = []  # every notice shown, for tests and the static view

    # -- public -------------------------------------------------------------
    def success(self, message: str) -> Toast:
        return self.show("success", message)

    def error(self, message: str) -> Toast:
        return self.show("error", message)

    def info(self, message: str) -> Toast:
        return self.show("info", message)

    def show(self, kind: Kind, message: str) -> Toast:
        message = redact(message)
        with self._lock:
            self.history.append((kind, message))
            same = next(
                (
                    t
                    for t in self.children  # type: ignore[has-type]
                    if isinstance(t, Toast) and (t.kind, t.message) == (kind, message)
                ),
                None,
            )
            if same is not None:
                same.again()
                self._start_timer(same)
                return same
            toast = Toast(kind, message, self.dismiss)
            shown: list[widgets.Widget] = [*self.children, toast]  # type: ignore[has-type]
            dropped = shown[: max(0, len(shown) - self.max_shown)]
            self.children = tuple(shown[len(dropped) :])
            self._start_timer(toast)
        for old in dropped:
            self.dismiss(old)
        return toast

    def _start_timer(self, toast: Toast) -> None:
        """Lock held: (re)start the fade of a success or info notice; errors wait for the person."""
        old = self._timers.pop(id(toast), None)
        if old is not None:
            old.cancel()
        if self.dismiss_after is None or toast.kind == "error":
            return
        self._timers[id(toast)] = self._delivery.call_later(self.dismiss_after, self.dismiss, toast)

    def dismiss(self, toast: Toast) -> None:
        """Remove one notice (idempotent; safe from any thread)."""
        with self._lock:
            timer = self._timers.pop(id(toast), None)
            if timer is not None:
                timer.cancel()
            if toast in self.children:
                self.children = tuple(c for c in self.children if c is not toast)
        close_tree(toast)

    def clear(self) -> None:
        for toast in list(self.children):
            self.dismiss(toast)

    def close(self) -> None:
        delivery = getattr(self, "_delivery", None)
        if delivery is not None:  # absent when __init__ failed early
            delivery.close()
        close_tree(self)

    @property
    def messages(self) -> list[tuple[Kind, str]]:
        """The notices on screen now, oldest first."""
        with self._lock:
            return [(t.kind, t.message) for t in self.children if isinstance(t, Toast)]

    # -- static view --------------------------------------------------------
    def _static_html(self) -> str:
        return "".join(
            f'<div class="soranb-toast soranb-toast-{kind}" style="color:{_COLORS[kind]}">{esc(msg)}</div>'
            for kind, msg in self.messages
        )

    def _static_text(self) -> str:
        return "\n".join(f"[{kind}] {msg}" for kind, msg in self.messages) or "Toasts: none"


@overload
def guarded(toasts: Toasts | None, fn: F) -> F: ...
@overload
def guarded(toasts: Toasts | None, fn: None = None) -> Callable[[F], F]: ...
def guarded(toasts: Toasts | None, fn: F | None = None) -> F | Callable[[F], F]:
    """Wrap a callback so that any exception becomes an error toast instead of vanishing.

    Use as `button.on_click(guarded(toasts, handler))` or as `@guarded(toasts)`.
    Unexpected exceptions (not `SoranbError`) are also logged with their traceback.
    """

    def wrap(func: F) -> F:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return func(*args, **kwargs)
            except Exception as exc:
                if not isinstance(exc, SoranbError):
                    _log.exception("soranb view callback %s failed", getattr(func, "__name__", func))
                message = describe_exception(exc)
                if toasts is not None:
                    toasts.error(message)
                else:
                    _log.error("%s", message)
                return None

        return wrapper  # type: ignore[return-value]

    return wrap(fn) if fn is not None else wrap
