"""Credentials: type a missing key once, use it for this kernel, and forget it from the page.

A `Password` field's value is synced from the browser into widget state while it
is typed; the moment "Use key" is clicked (whatever happens next) the field is
emptied, so the key is not left in widget state, in the saved notebook, in an
output or in a repr. The key itself lives only in a `Settings` `Secret`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import ipywidgets as widgets

from ..config import KEYRING_SERVICE
from ..errors import ConfigError
from ..report import esc, key_value_html
from ._base import StaticReprMixin, close_tree
from .toasts import Toasts, guarded

__all__ = ["Credentials"]

# Environment name -> (Settings field, is secret).
_FIELDS: dict[str, tuple[str, bool]] = {
    "OPENAI_API_KEY": ("openai_api_key", True),
    "SUPABASE_URL": ("supabase_url", False),
    "SUPABASE_KEY": ("supabase_key", True),
    "SUPABASE_PASSWORD": ("supabase_password", True),
    "SUPABASE_ACCESS_TOKEN": ("supabase_access_token", True),
}


def _keyring() -> Any | None:
    """The `keyring` module when it is installed (an optional extra), else None."""
    try:
        return importlib.import_module("keyring")
    except ImportError:
        return None


class Credentials(StaticReprMixin, widgets.VBox):
    """One field per missing secret, "Use key", an optional keyring checkbox, and setting sources.

    `on_service(service)` is called with the new shared service, so a notebook can
    rebuild its views on it.
    """

    def __init__(
        self,
        settings: Any,
        toasts: Toasts | None = None,
        on_service: Callable[[Any], None] | None = None,
    ) -> None:
        self.settings = settings
        self.service: Any | None = None
        self.on_service = on_service
        own_toasts = toasts is None
        self.toasts = toasts if toasts is not None else Toasts()
        self.fields: dict[str, widgets.Text | widgets.Password] = {}
        self.intro = widgets.HTML()
        self.fields_box = widgets.VBox()
        self.keyring_module = _keyring()
        self.remember = widgets.Checkbox(
            value=False,
            description="Remember in the system keyring",
            indent=False,
            layout={"display": "" if self.keyring_module is not None else "none", "width": "auto"},
        )
        self.use_button = widgets.Button(description="Use key", icon="key", button_style="primary")
        self.use_button.on_click(guarded(self.toasts, lambda _b: self.apply()))
        self.sources = widgets.HTML()
        parts: list[widgets.Widget] = [
            self.intro,
            self.fields_box,
            widgets.HBox([self.use_button, self.remember]),
            self.sources,
        ]
        if own_toasts:
            parts.append(self.toasts)
        super().__init__(parts)
        self.add_class("soranb-credentials")
        self._render()

    def _render(self) -> None:
        """Fields for what is missing now; the sources table of the current settings."""
        missing = [name for name in self.settings.missing_secrets() if name in _FIELDS]
        old_fields = list(self.fields.values())
        self.fields = {}
        for name in missing:
            _field, secret = _FIELDS[name]
            cls = widgets.Password if secret else widgets.Text
            self.fields[name] = cls(description=name, placeholder="paste here", style={"description_width": "160px"})
        self.fields_box.children = tuple(self.fields.values())
        for old in old_fields:  # after the box lets go of them
            close_tree(old)
        self.use_button.layout.display = "" if missing else "none"
        self.remember.layout.display = "" if missing and self.keyring_module is not None else "none"
        where = f"provider <b>{esc(self.settings.provider)}</b>, store <b>{esc(self.settings.store_kind)}</b>"
        self.intro.value = (
            f"Needed for {where}: {esc(', '.join(missing))}. Typed values are used for this kernel only."
            if missing
            else f"All settings present for {where}."
        )
        self.sources.value = key_value_html(
            dict(sorted(self.settings.sources.items())), title="Where settings came from"
        )

    def apply(self) -> Any:
        """Build settings with the typed values, restart the shared service on them, forget the values."""
        typed: dict[str, str] = {}
        try:
            for name, field in self.fields.items():
                value = field.value.strip()
                if value:
                    typed[name] = value
        finally:
            self.clear()
        if not typed:
            raise ConfigError("type a value first")
        overrides = {_FIELDS[name][0]: value for name, value in typed.items()}
        new_settings = self.settings.with_overrides(**overrides)
        if self.remember.value and self.keyring_module is not None:
            for name, value in typed.items():
                if _FIELDS[name][1]:
                    self.keyring_module.set_password(KEYRING_SERVICE, name, value)
            self.remember.value = False
        typed.clear()
        overrides.clear()
        session = importlib.import_module("soranb.session")
        session.reset_service()
        self.service = session.get_service(new_settings)
        self.settings = new_settings
        self._render()
        self.toasts.success("Settings updated for this kernel; the service was restarted")
        if self.on_service is not None:
            self.on_service(self.service)
        return self.service

    def close(self) -> None:
        close_tree(self)

    def clear(self) -> None:
        """Empty every field (the key never stays in widget state)."""
        for field in self.fields.values():
            field.value = ""

    def _static_html(self) -> str:
        return str(self.intro.value + self.sources.value)

    def _static_text(self) -> str:
        return f"Credentials: missing {', '.join(self.fields) or 'nothing'}"
