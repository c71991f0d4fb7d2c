"""CharacterPicker: the character ids a new video features, checked and named before Generate.

Ids are typed or pasted (as `soranb character create` prints them). Each is checked by the
request's own rules (`GenerationRequest.problems`: the id's shape, at most `MAX_CHARACTERS`),
then looked up once through the service, so the form shows the character's name (escaped) or
says the provider does not know that id. Nothing is looked up for an id that breaks the rules.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets

from ..catalog import MAX_CHARACTERS
from ..errors import ProviderUnavailable, ProviderUnreachable, RateLimited, SoranbError
from ..report import esc
from ..request import GenerationRequest
from ._base import hold

if TYPE_CHECKING:
    from ..protocols import ServiceLike

__all__ = ["CharacterPicker"]

_PASSING = (ProviderUnreachable, ProviderUnavailable, RateLimited)  # trouble that passes: ask again later


class CharacterPicker(widgets.VBox):
    """A `TagsInput` of character ids and a line naming them; `on_change()` after each change."""

    def __init__(self, service: ServiceLike, on_change: Callable[[], None]) -> None:
        self.service = service
        self._on_change = on_change
        self._names: dict[str, str | None] = {}  # id -> name, or None: the provider does not know it
        self._unchecked: dict[str, str] = {}  # id -> why it could not be looked up now (asked again later)
        self.ids_input = widgets.TagsInput(
            value=[], allow_duplicates=False, placeholder=f"character id (char_…), up to {MAX_CHARACTERS}"
        )
        self.ids_input.add_class("soranb-characters")
        self.names = widgets.HTML()
        label = widgets.HTML('<span style="color:#6b7280">Characters</span>', layout={"width": "90px"})
        super().__init__([widgets.HBox([label, self.ids_input]), self.names])
        self.ids_input.observe(self._changed, "value")

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(str(v).strip() for v in self.ids_input.value)

    def set_ids(self, ids: list[str] | tuple[str, ...]) -> None:
        self.ids_input.value = list(ids)

    def problems(self) -> list[str]:
        """What stops Generate, saying what to change: the request's rules, then unknown ids."""
        found = [str(p) for p in GenerationRequest("x", characters=self.ids).problems()]
        if found:
            return found
        return [
            f"the provider knows no character {i!r}: check the id (soranb character show ID)"
            for i in self.ids
            if self._names.get(i, "") is None
        ]

    def _changed(self, _change: dict[str, Any]) -> None:
        if not GenerationRequest("x", characters=self.ids).problems():
            for character_id in self.ids:
                if character_id not in self._names:
                    self._look_up(character_id)
        with hold(self.names):
            self.names.value = self._names_html()
        self._on_change()

    def _look_up(self, character_id: str) -> None:
        """Remember the character's name, or that the provider does not know the id; trouble that
        passes (a timeout, a 429) is shown and asked again on the next change, never remembered."""
        self._unchecked.pop(character_id, None)
        try:
            self._names[character_id] = str(self.service.get_character(character_id).name)
        except _PASSING as exc:  # not the id's fault: the provider decides when the video is made
            self._unchecked[character_id] = str(exc)
        except SoranbError:
            self._names[character_id] = None

    def _names_html(self) -> str:
        shown = []
        for character_id in self.ids:
            name = self._names.get(character_id, "")
            if name:
                shown.append(f'<span class="soranb-character-name">{esc(name)}</span> ({esc(character_id)})')
            elif name is None:
                shown.append(f'<span style="color:#dc2626">{esc(character_id)}: not found</span>')
            elif character_id in self._unchecked:
                why = esc(self._unchecked[character_id])
                shown.append(f'<span style="color:#6b7280">{esc(character_id)}: not checked now ({why})</span>')
        return f'<span style="font-size:11px">{" · ".join(shown)}</span>' if shown else ""
