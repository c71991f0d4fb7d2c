"""GenerationForm: compose a request, see its price and its problems, then spend.

The form is a thin view: every rule comes from `GenerationRequest.problems()`
and `soranb.catalog`, every action is one service call, and every failure
lands in the toasts. The uploaded image's bytes are kept in a Python
attribute, never in widget state (the FileUpload is emptied once read), so
the saved notebook does not carry them; only a small preview thumbnail is synced.
"""

from __future__ import annotations

import io
import threading
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets
from PIL import Image

from ..budget import Budget
from ..catalog import DEFAULT_MODEL, DEFAULT_SECONDS, DEFAULT_SIZE, MAX_PROMPT_CHARS, MODELS, estimate_cost
from ..errors import RequestInvalid
from ..images import ImageInfo, fit_image, inspect_image
from ..protocols import ServiceLike
from ..records import GenerationRecord
from ..report import esc, format_cost, key_value_html
from ..request import GenerationRequest, ImageInput
from ._base import RepeatGuard, StaticReprMixin, close_tree, hold
from .characters import CharacterPicker
from .style import stylesheet
from .toasts import Toasts, guarded, short_prompt

if TYPE_CHECKING:
    from .onscreen import ScreenClick

__all__ = ["GenerationForm"]

_ACCEPT = ".jpg,.jpeg,.png,.webp,image/jpeg,image/png,image/webp"
_PREVIEW_PX = 160


def _preview_png(data: bytes, max_px: int = _PREVIEW_PX) -> bytes:
    """A small PNG thumbnail for the preview (a few KB in widget state, not the upload)."""
    with Image.open(io.BytesIO(data)) as image:
        thumb = image.convert("RGB")
        thumb.thumbnail((max_px, max_px))
    out = io.BytesIO()
    thumb.save(out, format="PNG", optimize=True)
    return out.getvalue()


class GenerationForm(StaticReprMixin, widgets.VBox):
    """Prompt, model, size, seconds, optional starting image, cost and Generate.

    `toasts`: where success and failure notices go; when None the form makes and
    shows its own stack. `last_record` is the record of the last job started here.
    One click is one job: the same request again within `repeat_guard`'s window
    (a double-click, a second press while the first is starting) asks before spending.
    Remixing happens on a finished card of the history.
    """

    def __init__(
        self, service: ServiceLike, toasts: Toasts | None = None, repeat_guard: RepeatGuard | None = None
    ) -> None:
        self.service = service
        self.recent = repeat_guard or RepeatGuard()
        self._touched = False
        own_toasts = toasts is None
        self.toasts = toasts if toasts is not None else Toasts()
        self.last_record: GenerationRecord | None = None
        self._image: ImageInput | None = None
        self._image_info: ImageInfo | None = None
        self._image_error: str | None = None
        self._lock = threading.Lock()
        self._busy = False
        self._preview_key: tuple[str, str] | None = None
        self._budget: Budget | None = None  # read by refresh_budget

        self._make_request_controls()
        self._make_image_controls()
        self.characters = CharacterPicker(service, on_change=self._on_characters)
        self._make_action_controls()

        parts: list[widgets.Widget] = [
            stylesheet(),
            widgets.HTML('<div class="soranb-section-title">New video</div>'),
            self.prompt,
            self.char_count,
            self.prompt_history,
            widgets.HBox([self.model, self.size, self.seconds]),
            widgets.HBox([self.upload, self.clear_image]),
            widgets.HBox([self.preview, widgets.VBox([self.image_info, self.fit_box])]),
            self.characters,
            self.cost,
            widgets.HBox([self.generate, self.reason]),
            self.repeat_box,
            self.screen,
        ]
        if own_toasts:
            parts.append(self.toasts)
        super().__init__(parts)
        self.add_class("soranb-form")
        self._wire()
        self.refresh_budget()

    def _make_request_controls(self) -> None:
        """Prompt, recent prompts, model, size and length (the sizes and lengths the model offers)."""
        self.prompt = widgets.Textarea(
            placeholder="Describe the video: subject, setting, camera, light, motion…",
            layout=widgets.Layout(width="100%", height="7em"),
        )
        self.prompt.add_class("soranb-prompt")
        self.prompt_history = widgets.Dropdown(description="Recent", layout=widgets.Layout(width="100%"))
        self.prompt_history.add_class("soranb-recent-prompts")
        self.refresh_recent_prompts()
        self.char_count = widgets.HTML()
        self.model = widgets.Dropdown(
            options=[(spec.label, name) for name, spec in MODELS.items()],
            value=DEFAULT_MODEL,
            description="Model",
        )
        self.size = widgets.Dropdown(description="Size")
        self.seconds = widgets.Dropdown(description="Seconds")
        self._refilter_options()
        self.size.value = DEFAULT_SIZE if DEFAULT_SIZE in self._values(self.size) else self.size.value
        if DEFAULT_SECONDS in self._values(self.seconds):
            self.seconds.value = DEFAULT_SECONDS

    def _make_image_controls(self) -> None:
        """The starting image: upload, preview, and how it is fitted to the size."""
        self.upload = widgets.FileUpload(accept=_ACCEPT, multiple=False, description="Starting image")
        self.clear_image = widgets.Button(description="Remove image", icon="times", layout={"display": "none"})
        self.preview = widgets.Image(format="png", layout=widgets.Layout(display="none", max_width="160px"))
        self.image_info = widgets.HTML()
        self.fit = widgets.ToggleButtons(
            options=[("Crop to fill", "crop"), ("Pad with bars", "pad")],
            value="crop",
            description="Fit to size",
        )
        self.fit_note = widgets.HTML()
        self.fit_box = widgets.VBox([self.fit_note, self.fit], layout={"display": "none"})

    def _make_action_controls(self) -> None:
        """Price, Generate, and the question asked before the same spend again."""
        self.cost = widgets.HTML()
        self.generate = widgets.Button(description="Generate", button_style="primary", icon="play")
        self.generate.add_class("soranb-generate")
        self.reason = widgets.HTML()

        self.repeat_note = widgets.HTML()
        self.repeat_yes = widgets.Button(description="Start another", button_style="warning", layout={"width": "auto"})
        self.repeat_yes.add_class("soranb-repeat-yes")
        self.repeat_no = widgets.Button(description="Cancel", layout={"width": "auto"})
        self.repeat_box = widgets.HBox([self.repeat_note, self.repeat_yes, self.repeat_no], layout={"display": "none"})
        self.repeat_box.add_class("soranb-repeat")
        # A click in the page brings the prompt and price on screen with it (see `onscreen`).
        from .onscreen import OnScreenClick  # anywidget: loaded with the first view that clicks, not with the package

        self.screen = OnScreenClick(
            "soranb-form",
            ["soranb-generate", "soranb-repeat-yes"],
            guarded(self.toasts, self._on_screen_click),
            fields={"prompt": ".soranb-prompt textarea"},
            shown={"cost": ".soranb-cost b"},
        )

    def _wire(self) -> None:
        self.prompt.observe(self._on_change, "value")
        self.prompt_history.observe(guarded(self.toasts, self._on_recent_prompt), "value")
        self.model.observe(self._on_model, "value")
        self.size.observe(self._on_change, "value")
        self.seconds.observe(self._on_change, "value")
        self.fit.observe(self._on_change, "value")
        self.upload.observe(guarded(self.toasts, self._on_upload), "value")
        self.clear_image.on_click(guarded(self.toasts, lambda _b: self.remove_image()))
        self.generate.on_click(guarded(self.toasts, lambda _b: self.submit()))
        self.repeat_yes.on_click(guarded(self.toasts, lambda _b: self.submit(again=True)))
        self.repeat_no.on_click(guarded(self.toasts, lambda _b: self._hide_repeat()))

    # -- the request as the form stands ----------------------------------------------
    @staticmethod
    def _values(dropdown: widgets.Dropdown) -> list[Any]:
        return [value for _label, value in dropdown.options]

    def _fit_needed(self) -> bool:
        return self._image_info is not None and self._image_info.size != self.size.value

    def request(self) -> GenerationRequest:
        """The `GenerationRequest` the Generate button would send now."""
        return GenerationRequest(
            prompt=self.prompt.value,
            model=self.model.value,
            size=self.size.value,
            seconds=int(self.seconds.value),
            image=self._image,
            fit=self.fit.value if self._fit_needed() else None,
            characters=self.characters.ids,
        )

    def problems(self) -> list[str]:
        """What stops Generate, each saying what to change. The image is checked once, at upload."""
        checked = GenerationRequest(self.prompt.value, self.model.value, self.size.value, int(self.seconds.value))
        found = [str(p) for p in checked.problems()]
        if self._image_error:
            found.append(self._image_error)
        return found + self.characters.problems()

    # -- reactions --------------------------------------------------------------------
    def _refilter_options(self) -> None:
        """Offer only what the chosen model allows; keep the current choice when still allowed."""
        spec = MODELS[self.model.value]
        size, seconds = self.size.value, self.seconds.value
        with hold(self.size, self.seconds):  # ipywidgets resets the value to the first option: restore it
            self.size.options = [(s.replace("x", " × "), s) for s in spec.sizes]
            self.seconds.options = [(f"{s} s", s) for s in spec.seconds]
            if size in spec.sizes:
                self.size.value = size
            if seconds in spec.seconds:
                self.seconds.value = seconds

    def _on_model(self, _change: dict[str, Any]) -> None:
        self._refilter_options()
        self._update()

    def _on_change(self, change: dict[str, Any]) -> None:
        if change.get("owner") is self.prompt:
            self._touched = True
        self._update()

    def _on_characters(self) -> None:
        self._touched = True  # a refused id says why at once, like a typed prompt
        self._update()

    def _update(self) -> None:
        """Recompute count, cost, fit choice and the Generate button from the current values."""
        length = len(self.prompt.value)
        over = length > MAX_PROMPT_CHARS
        color = "#dc2626" if over else "#6b7280"
        problems = self.problems()
        with hold(self.char_count, self.cost, self.fit_box.layout, self.fit_note, self.generate, self.reason):
            self.char_count.value = (
                f'<span class="soranb-count" style="color:{color};font-size:11px">'
                f"{length:,} / {MAX_PROMPT_CHARS:,} characters</span>"
            )
            self.cost.value = self._cost_html()
            fit_needed = self._fit_needed()
            self._show_fitted_preview()
            self.fit_box.layout.display = "" if fit_needed else "none"
            if fit_needed and self._image_info is not None:
                self.fit_note.value = (
                    f"The image is {esc(self._image_info.size)}, the video {esc(self.size.value)}: "
                    "crop it to fill, or pad it with bars?"
                )
            self.generate.disabled = bool(problems) or self._busy
            # An untouched form is not an error; the image's own problem shows once, beside the image.
            shown = [p for p in problems if p != self._image_error] if self._touched else []
            self.reason.value = (
                f'<span class="soranb-reason" style="color:#dc2626">{esc(shown[0])}</span>' if shown else ""
            )

    def _show_fitted_preview(self) -> None:
        """The preview shows what will be sent: the image cropped or padded to the video size."""
        if self._image is None:
            return
        key = (self.size.value, self.fit.value) if self._fit_needed() else None
        if key == self._preview_key:
            return
        data = self._image.data
        if key is not None:
            try:
                data = fit_image(data, self.size.value, self.fit.value)
            except Exception:  # the fit is checked again on Generate; the preview just stays as it was
                return
        self._preview_key = key
        self.preview.value = _preview_png(data)

    def _cost_text(self) -> str | None:
        """The price of the current settings as the form shows it; None when they have no price."""
        try:
            return format_cost(estimate_cost(self.model.value, self.size.value, int(self.seconds.value)))
        except KeyError:
            return None

    def _cost_html(self) -> str:
        try:
            cost = estimate_cost(self.model.value, self.size.value, int(self.seconds.value))
        except KeyError:
            return ""
        per_second = MODELS[self.model.value].price_per_second[self.size.value]
        paid = self.service.provider_is_paid
        note = "billed by the provider" if paid else "emulator: nothing is billed"
        return (
            f'<span class="soranb-cost">Cost: <b>{format_cost(cost)}</b> '
            f"({int(self.seconds.value)} s × {format_cost(per_second)}/s; {note})</span>" + self._budget_html(cost)
        )

    def refresh_budget(self) -> None:
        """Read what today and this session have spent (at start and after each start, not per key)."""
        self._budget = self.service.budget()
        self._update()

    def _budget_html(self, cost: Decimal) -> str:
        """Spent and left when a budget is set; a request that would go over says so before Generate."""
        budget = self._budget
        if budget is None or budget.remaining is None:
            return ""
        text = f"Budget: {format_cost(budget.spent)} spent today, {format_cost(budget.remaining)} left"
        if cost > budget.remaining:
            return (
                f'<div class="soranb-budget" style="color:#dc2626">{text}: this video would go over the budget '
                "and will be refused. Pick a shorter or cheaper video.</div>"
            )
        return f'<div class="soranb-budget" style="color:#6b7280;font-size:11px">{text}</div>'

    def _on_upload(self, change: dict[str, Any]) -> None:
        files = change["new"]
        if not files:
            return  # our own reset below
        item = files[0]
        data = bytes(item["content"])
        name = str(item.get("name") or "image")
        self.upload.value = ()  # keep the bytes out of widget state (and the saved notebook)
        self.load_image(data, name)

    def load_image(self, data: bytes, filename: str = "image") -> None:
        """Use `data` as the starting image (what an upload does; also handy from code)."""
        try:
            info = inspect_image(data)
        except RequestInvalid as exc:
            self._image, self._image_info, self._image_error = None, None, str(exc)
            with hold(self.preview, self.preview.layout):
                self.preview.layout.display = "none"
                self.preview.value = b""
                self.image_info.value = f'<span style="color:#dc2626">{esc(exc)}</span>'
                self.clear_image.layout.display = ""
            self._update()
            return
        self._image, self._image_info, self._image_error = ImageInput(filename, data), info, None
        self._preview_key = None
        with hold(self.preview, self.preview.layout):
            self.preview.value = _preview_png(data)
            self.preview.layout.display = ""
            self.image_info.value = (
                f'<span class="soranb-image-info">{esc(filename)} · {esc(info.size)} {esc(info.format)}</span>'
            )
            self.clear_image.layout.display = ""
        self._update()

    def remove_image(self) -> None:
        self._image, self._image_info, self._image_error = None, None, None
        with hold(self.preview, self.preview.layout):
            self.preview.value = b""
            self.preview.layout.display = "none"
            self.image_info.value = ""
            self.clear_image.layout.display = "none"
        self._update()

    # -- actions ----------------------------------------------------------------------
    def _fingerprint(self, request: GenerationRequest) -> tuple[object, ...]:
        image = hash(request.image.data) if request.image is not None else None
        settings = (request.model, request.size, request.seconds, image, request.fit, request.characters)
        return ("generate", request.prompt.strip(), *settings)

    def submit(self, again: bool = False) -> GenerationRecord | None:
        """Start the job (what Generate does); None when it asked first instead of spending.

        Errors propagate to `guarded`, which toasts them.
        """
        request = self.request()
        problems = request.problems()
        if problems:
            raise problems[0]
        key = self._fingerprint(request)
        ago = self.recent.seconds_since(key)
        if ago is not None and not again:
            self._ask_repeat(ago, request)
            return None
        self._hide_repeat()
        self._busy = True
        with hold(self.generate):
            self.generate.disabled = True  # busy from the click until the record is stored
            self.generate.description = "Starting…"
        try:
            record: GenerationRecord = self.service.generate(request)
            self.recent.started(key)
        finally:
            self._busy = False
            self.generate.description = "Generate"
            self._update()
        self.last_record = record
        self.refresh_recent_prompts()
        self.refresh_budget()
        self.toasts.success(
            f"Started “{short_prompt(record.prompt)}” ({record.model} {record.size} {record.seconds} s, "
            f"{format_cost(record.cost)})"
        )
        return record

    def _on_screen_click(self, click: ScreenClick) -> None:
        """Generate (or "Start another") clicked in the page: spend on the prompt on screen at the click, and
        only at the price that was on screen then; a price changed since is shown and asked for again."""
        prompt = click.fields.get("prompt")
        if prompt is not None and prompt != self.prompt.value:
            self.prompt.value = prompt  # the text may still be queued behind the page's sync throttle
        shown, now = click.shown.get("cost", "").strip(), self._cost_text()
        if now is not None and shown != now:
            self.toasts.info(
                f"Nothing was started: the price is {now}, not the {shown or 'no price'} shown at your click. "
                "Check it and press Generate again."
            )
            return
        (self.repeat_yes if click.button == "soranb-repeat-yes" else self.generate).click()

    def _ask_repeat(self, ago: float, request: GenerationRequest) -> None:
        with hold(self.repeat_note, self.repeat_box.layout):
            self.repeat_note.value = (
                f'<span class="soranb-repeat-note">You started this same video {ago:.0f} s ago. '
                f"Start another one for {esc(format_cost(request.cost))}?</span>"
            )
            self.repeat_box.layout.display = ""

    def _hide_repeat(self) -> None:
        self.repeat_box.layout.display = "none"

    @property
    def asking_to_repeat(self) -> bool:
        return bool(self.repeat_box.layout.display != "none")

    def load_from(self, record: GenerationRecord) -> None:
        """Put a record's prompt and options back in the form to edit and retry (a failed card calls this)."""
        self._fill(record)
        self.toasts.info("The prompt is back in the form: change what was refused, then Generate.")

    def use_settings(self, record: GenerationRecord) -> None:
        """Fill the form from a record: prompt, model, size, seconds and its starting image ("Use these
        settings" on a card). The image comes from the store through the service, by the record's id."""
        image = self.service.starting_image(record.id) if record.image_key else None
        self._fill(record)
        if image is None:
            self.remove_image()
        else:
            self.load_image(image.data, image.filename)
        with_image = " and its starting image" if image is not None else ""
        self.toasts.info(f"The settings of “{short_prompt(record.prompt)}”{with_image} are in the form.")

    def _fill(self, record: GenerationRecord) -> None:
        with self.hold_trait_notifications():
            if record.model in self._values(self.model):
                self.model.value = record.model
        self._refilter_options()
        if record.size in self._values(self.size):
            self.size.value = record.size
        if str(record.seconds) in [str(v) for v in self._values(self.seconds)]:
            self.seconds.value = next(v for v in self._values(self.seconds) if str(v) == str(record.seconds))
        characters = record.metadata.get("characters") if isinstance(record.metadata, dict) else None
        self.characters.set_ids([str(c) for c in characters] if isinstance(characters, list) else [])
        self.prompt.value = record.prompt
        self.prompt.focus()

    # -- recent prompts ------------------------------------------------------------------
    def refresh_recent_prompts(self, limit: int = 10) -> None:
        """Offer the last `limit` distinct prompts of the store (newest first); picking one fills the prompt."""
        prompts = self.service.recent_prompts(limit)
        label = "pick one to fill the prompt" if prompts else "none yet"
        options = [(label, ""), *((short_prompt(p, 80), p) for p in prompts)]
        if list(self.prompt_history.options) != options:
            self.prompt_history.options = options
            self.prompt_history.value = ""

    def _on_recent_prompt(self, change: dict[str, Any]) -> None:
        if change["new"]:
            self.prompt.value = change["new"]
            self._touched = True
            self.prompt_history.value = ""  # ready to pick again (this change has an empty value: ignored)

    def close(self) -> None:
        close_tree(self)

    # -- static view ------------------------------------------------------------------
    def _static_values(self) -> dict[str, object]:
        values: dict[str, object] = {
            "prompt": self.prompt.value or "(empty)",
            "model": self.model.value,
            "size": self.size.value,
            "seconds": self.seconds.value,
        }
        if self._image_info is not None and self._image is not None:
            fit = f", fitted by {self.fit.value}" if self._fit_needed() else ""
            values["starting image"] = f"{self._image.filename} ({self._image_info.size}{fit})"
        if self.characters.ids:
            values["characters"] = ", ".join(self.characters.ids)
        if (cost := self._cost_text()) is not None:
            values["cost"] = cost
        if self.last_record is not None:
            values["last job"] = f"{self.last_record.id} ({self.last_record.status.value})"
        return values

    def _static_html(self) -> str:
        return key_value_html(self._static_values(), title="soranb generation form")

    def _static_text(self) -> str:
        return f"GenerationForm({self.model.value}, {self.size.value}, {self.seconds.value} s)"
