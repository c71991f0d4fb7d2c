"""GenerationForm over a real service on the emulator: options, validation, cost, images, one click one job."""

from __future__ import annotations

import base64
import logging
from decimal import Decimal

import pytest
from PIL import Image
from widget_helpers import XSS, png, upload_value

from soranb.catalog import MAX_PROMPT_CHARS, MODELS
from soranb.errors import ProviderRejected
from soranb.records import GenerationRecord
from soranb.widgets import GenerationForm, Toasts
from soranb.widgets._base import state_json


@pytest.fixture
def form(service):
    view = GenerationForm(service, toasts=Toasts(dismiss_after=None))
    yield view
    view.close()


def sizes(form: GenerationForm) -> list[str]:
    return [value for _label, value in form.size.options]


def test_css_classes_for_the_browser_test(form):
    assert "soranb-prompt" in form.prompt._dom_classes
    assert "soranb-generate" in form.generate._dom_classes


def test_size_options_follow_the_model_and_keep_an_allowed_choice(form):
    assert sizes(form) == list(MODELS["sora-2"].sizes)
    form.size.value = "720x1280"
    form.model.value = "sora-2-pro"
    assert sizes(form) == list(MODELS["sora-2-pro"].sizes)
    assert form.size.value == "720x1280"  # still allowed: kept
    form.size.value = "1792x1024"
    form.model.value = "sora-2"
    assert "1792x1024" not in sizes(form)
    assert form.size.value in MODELS["sora-2"].sizes


def test_generate_is_disabled_with_the_reason_for_an_empty_or_too_long_prompt(form):
    assert form.generate.disabled
    assert form.reason.value == ""  # an untouched form is not an error: no red "prompt is empty" yet
    form.prompt.value = "x"
    form.prompt.value = ""
    assert form.generate.disabled
    assert "prompt is empty" in form.reason.value

    form.prompt.value = "x" * (MAX_PROMPT_CHARS + 1)
    assert form.generate.disabled
    assert "32,001" in form.reason.value and "32,000" in form.reason.value
    assert "32,001 / 32,000" in form.char_count.value

    form.prompt.value = "x" * MAX_PROMPT_CHARS
    assert not form.generate.disabled
    assert form.reason.value == ""
    assert "32,000 / 32,000" in form.char_count.value


def test_cost_is_shown_before_anything_is_spent(form, service):
    form.model.value = "sora-2-pro"
    form.size.value = "1792x1024"
    form.seconds.value = 12
    assert "$6.00" in form.cost.value and "$0.50/s" in form.cost.value
    assert "nothing is billed" in form.cost.value  # the emulator
    assert service.count_records() == 0


def test_wrong_size_image_offers_fit_and_the_job_gets_the_fitted_image(form, service):
    assert form.fit_box.layout.display == "none"
    form.upload.value = upload_value("photo.png", png(640, 480))
    assert form.upload.value == ()  # bytes never stay in widget state
    assert form.fit_box.layout.display == ""
    assert "640x480" in form.image_info.value and "640x480" in form.fit_note.value
    assert form.preview.layout.display == ""
    assert 0 < len(form.preview.value) < 20_000
    with Image.open(__import__("io").BytesIO(form.preview.value)) as thumb:
        assert max(thumb.size) <= 160

    form.prompt.value = "a lighthouse"
    form.fit.value = "pad"
    assert not form.generate.disabled
    form.generate.click()
    record = form.last_record
    assert record is not None and record.image_key
    path = service.media_path(record.image_key)
    with Image.open(path) as sent:
        assert f"{sent.width}x{sent.height}" == record.size == "1280x720"

    form.size.value = "720x1280"  # fit still needed for the other size
    assert form.fit_box.layout.display == ""
    form.remove_image()
    assert form.fit_box.layout.display == "none"


def test_matching_image_needs_no_fit_choice(form):
    form.upload.value = upload_value("frame.png", png(1280, 720))
    assert form.fit_box.layout.display == "none"
    assert form.request().fit is None


def test_a_file_that_is_not_an_image_blocks_generate(form):
    form.prompt.value = "fine prompt"
    form.upload.value = upload_value("notes.png", b"not an image at all")
    assert form.generate.disabled
    assert "not a readable image" in form.image_info.value
    assert "not a readable image" not in form.reason.value  # said once, beside the image
    form.remove_image()
    assert not form.generate.disabled


def test_generate_creates_a_record_and_says_so(form, service):
    form.prompt.value = "a red kite over dunes"
    form.generate.click()
    records = service.list_records()
    assert len(records) == 1 and records[0].prompt == "a red kite over dunes"
    assert form.toasts.messages[-1][0] == "success"
    assert "$0.40" in form.toasts.messages[-1][1]


def test_service_errors_become_error_toasts(form, service, monkeypatch, caplog):
    form.prompt.value = "anything"

    def refuse(_request):
        raise ProviderRejected("the provider refused: size not allowed")

    monkeypatch.setattr(service, "generate", refuse)
    form.generate.click()
    assert form.toasts.messages[-1] == ("error", "the provider refused: size not allowed")

    def crash(_request):
        raise RuntimeError("boom")

    monkeypatch.setattr(service, "generate", crash)
    with caplog.at_level(logging.ERROR, logger="soranb.widgets"):
        form.generate.click()
    assert form.toasts.messages[-1] == ("error", "Unexpected error: RuntimeError: boom")
    assert "boom" in caplog.text
    assert not form.generate.disabled  # usable again after a failure


def test_a_double_click_on_generate_starts_one_job(form, service):
    form.prompt.value = "a hummingbird at a feeder"
    form.generate.click()
    form.generate.click()  # the second click of a double-click reaches the kernel after the first finished
    assert service.count_records() == 1
    assert [kind for kind, message in form.toasts.messages if message.startswith("Started")] == ["success"]
    assert form.asking_to_repeat and "same video" in form.repeat_note.value and "$0.40" in form.repeat_note.value
    form.repeat_no.click()
    assert not form.asking_to_repeat and service.count_records() == 1

    form.generate.click()  # asked again, and this time the person says yes
    assert form.asking_to_repeat and service.count_records() == 1
    form.repeat_yes.click()
    assert service.count_records() == 2 and not form.asking_to_repeat


def test_a_different_request_is_not_held_back(form, service):
    form.prompt.value = "a hummingbird at a feeder"
    form.generate.click()
    form.seconds.value = 8
    form.generate.click()
    assert service.count_records() == 2 and not form.asking_to_repeat


def test_the_button_is_busy_while_the_job_is_being_stored(form, service, monkeypatch):
    seen = []
    real = service.generate

    def watch(request):
        seen.append((form.generate.disabled, form.generate.description))
        return real(request)

    monkeypatch.setattr(service, "generate", watch)
    form.prompt.value = "a heron in reeds"
    form.generate.click()
    assert seen == [(True, "Starting…")]
    assert form.generate.description == "Generate"


def test_a_failed_record_goes_back_into_the_form_to_edit(form, service):
    record = GenerationRecord(prompt="a refused prompt", model="sora-2-pro", size="1792x1024", seconds=8)
    form.load_from(record)
    assert (form.prompt.value, form.model.value, form.size.value, form.seconds.value) == (
        "a refused prompt",
        "sora-2-pro",
        "1792x1024",
        8,
    )
    assert form.toasts.messages[-1][0] == "info"


def test_static_html_shows_the_values_escaped(form):
    form.prompt.value = XSS
    bundle = form._repr_mimebundle_()
    assert set(bundle) >= {"application/vnd.jupyter.widget-view+json", "text/html", "text/plain"}
    assert "&lt;img src=x onerror=alert(1)&gt;" in bundle["text/html"]
    assert "<img src=x" not in bundle["text/html"]
    assert "$0.40" in bundle["text/html"]


def test_uploaded_bytes_are_not_in_widget_state(form):
    big = png(1920, 1080, "blue")
    form.upload.value = upload_value("big.png", big)
    state = state_json(form)
    assert base64.b64encode(big)[:200].decode() not in state
    assert form.upload.get_state()["value"] == []
    assert len(state) < 100_000  # ~75 small widget models and a thumbnail of a few KB


def test_the_preview_shows_the_cropped_or_padded_result(form):
    import io

    form.size.value = "1280x720"
    form.load_image(png(640, 640, "red"), "square.png")

    def preview():
        with Image.open(io.BytesIO(form.preview.value)) as image:
            return image.size, image.convert("RGB").getpixel((0, 0))

    (width, height), corner = preview()
    assert abs(width / height - 16 / 9) < 0.05 and corner == (255, 0, 0)  # cropped to fill
    form.fit.value = "pad"
    (width, height), corner = preview()
    assert abs(width / height - 16 / 9) < 0.05 and corner != (255, 0, 0)  # bars at the sides


def test_use_these_settings_fills_the_form_with_the_stored_starting_image(service):
    from widget_helpers import finish

    from soranb.request import GenerationRequest, ImageInput
    from soranb.widgets import app

    image = png(1280, 720, "blue")
    request = GenerationRequest("a blue lagoon", "sora-2-pro", "1280x720", 8, image=ImageInput(f"{XSS}.png", image))
    made = finish(service, service.generate(request).id)
    fetched = []
    real = service.starting_image
    service.starting_image = lambda record_id: fetched.append(record_id) or real(record_id)  # type: ignore[method-assign]
    view = app(service)
    view.toasts.dismiss_after = None
    card = view.history.card(made.id)
    assert card.reuse_button in card.actions.children
    card.reuse_button.click()
    form = view.form
    assert (form.prompt.value, form.model.value, form.size.value, form.seconds.value) == (
        "a blue lagoon",
        "sora-2-pro",
        "1280x720",
        8,
    )
    assert fetched == [made.id]  # read from the store through the service, by the record's id
    assert form.request().image is not None and form.request().image.data == image
    assert "<img" not in form.image_info.value and "&lt;img" in form.image_info.value  # the stored name, escaped
    assert "starting image" in view.toasts.messages[-1][1]
    view.close()


def test_use_these_settings_without_an_image_clears_the_form_image(service):
    from widget_helpers import finish

    from soranb.request import GenerationRequest
    from soranb.widgets import app

    made = finish(service, service.generate(GenerationRequest("a plain field")).id)
    view = app(service)
    view.form.load_image(png(1280, 720), "old.png")
    view.history.card(made.id).reuse_button.click()
    assert view.form.prompt.value == "a plain field" and view.form.request().image is None
    view.close()


def test_recent_prompts_are_the_last_distinct_ones_and_picking_one_fills_the_prompt(form, service):
    from soranb.request import GenerationRequest

    for prompt in ("a fox", "an owl", "a fox", XSS):
        service.generate(GenerationRequest(prompt))
    form.refresh_recent_prompts()
    values = [value for _label, value in form.prompt_history.options]
    assert values == ["", XSS, "a fox", "an owl"]  # newest first, each once
    form.prompt_history.value = "an owl"
    assert form.prompt.value == "an owl" and form.prompt_history.value == ""
    assert not form.generate.disabled
    form.prompt.value = "a heron"
    form.generate.click()  # a new prompt joins the list at once
    assert [value for _label, value in form.prompt_history.options][1] == "a heron"


def test_characters_are_checked_named_escaped_and_featured(form, service):
    from widget_helpers import finish

    from soranb.catalog import MAX_CHARACTERS
    from soranb.request import GenerationRequest

    source = finish(service, service.generate(GenerationRequest("a pilot waves")).id)
    nova = service.create_character("Captain <b>Nova</b>", service.media_path(source.video_key))
    form.prompt.value = "Nova lands on the moon"
    form.characters.ids_input.value = [nova.id]
    assert (
        "Captain &lt;b&gt;Nova&lt;/b&gt;" in form.characters.names.value
        and "<b>Nova" not in form.characters.names.value
    )
    assert not form.generate.disabled and form.request().characters == (nova.id,)

    form.characters.ids_input.value = [nova.id, "../etc"]  # not an id: said at once, nothing looked up
    assert form.generate.disabled and "is not a character id" in form.reason.value
    form.characters.ids_input.value = [nova.id, "char_nobody"]  # an id the provider does not know
    assert form.generate.disabled and "knows no character" in form.reason.value
    assert "char_nobody: not found" in form.characters.names.value
    form.characters.ids_input.value = [nova.id, "char_a", "char_b"][: MAX_CHARACTERS + 1]
    assert form.generate.disabled and f"at most {MAX_CHARACTERS} characters" in form.reason.value

    form.characters.ids_input.value = [nova.id]
    record = form.submit()
    assert record is not None and service.get(record.id).metadata["characters"] == [nova.id]
    assert "Captain &lt;b&gt;Nova&lt;/b&gt;" not in form._static_html() and nova.id in form._static_html()
    form.characters.ids_input.value = []
    form.use_settings(service.get(record.id))  # "Use these settings" brings the characters back too
    assert form.characters.ids == (nova.id,)


def test_a_character_that_cannot_be_checked_now_is_asked_again_not_refused(form, service, monkeypatch):
    from soranb.errors import ProviderUnreachable

    calls = []

    def unreachable(character_id):
        calls.append(character_id)
        raise ProviderUnreachable("get character: the provider did not answer")

    monkeypatch.setattr(service, "get_character", unreachable)
    form.prompt.value = "Nova waves"
    form.characters.ids_input.value = ["char_later"]
    assert "not checked now" in form.characters.names.value and not form.generate.disabled
    form.characters.ids_input.value = ["char_later", "char_other"]
    assert calls.count("char_later") == 2  # not remembered as unknown: asked again


def test_the_form_shows_spent_and_left_and_says_before_generate_when_a_video_would_go_over(make_service, settings):
    from soranb.config import Settings

    env = {"SORANB_DATA_DIR": str(settings.data_dir), "SORANB_EMULATOR_SPEED": "240", "SORANB_BUDGET_USD": "0.50"}
    service = make_service(using=Settings.from_env(env, dotenv=False))
    form = GenerationForm(service, toasts=Toasts(dismiss_after=None))
    assert "$0.00 spent today, $0.50 left" in form.cost.value and "go over" not in form.cost.value
    form.seconds.value = 8  # $0.80
    assert "would go over the budget" in form.cost.value
    form.seconds.value = 4
    form.prompt.value = "a lighthouse"
    form.generate.click()
    assert "$0.40 spent today, $0.10 left" in form.cost.value and "would go over the budget" in form.cost.value
    form.close()


def test_without_a_budget_the_form_shows_none(form):
    assert "Budget" not in form.cost.value


def screen_click(form: GenerationForm, prompt: str, cost: str, button: str = "soranb-generate") -> None:
    """What the page sends when Generate is clicked: the prompt and the price on screen at the click."""
    message = {"event": "click", "button": button, "fields": {"prompt": prompt}, "shown": {"cost": cost}}
    form.screen._handle_custom_msg(message, [])


def test_a_click_spends_the_prompt_on_screen_even_before_its_text_reached_the_kernel(form, service):
    form.prompt.value = "a lighthouse at dawn"
    form.generate.click()
    # a new prompt pasted and Generate clicked at once: the kernel still holds the old text
    screen_click(form, "first clip of a new idea", "$0.40")
    assert sorted(r.prompt for r in service.list_records()) == ["a lighthouse at dawn", "first clip of a new idea"]
    assert form.prompt.value == "first clip of a new idea" and not form.asking_to_repeat
    assert "24 / 32,000" in form.char_count.value

    screen_click(form, "first clip of a new idea", "$0.40")  # the second click of a double-click asks
    assert service.count_records() == 2 and form.asking_to_repeat
    screen_click(form, "first clip, edited while asked", "$0.40", button="soranb-repeat-yes")
    assert [r.prompt for r in service.list_records()].count("first clip, edited while asked") == 1


def test_a_click_whose_price_on_screen_is_stale_starts_nothing_and_says_the_price(form, service):
    form.prompt.value = "a heron in reeds"
    form.seconds.value = 8  # the kernel has 8 s ($0.80); the page still showed 4 s at $0.40
    screen_click(form, "a heron in reeds", "$0.40")
    assert service.count_records() == 0
    kind, message = form.toasts.messages[-1]
    assert kind == "info" and "$0.80" in message and "$0.40" in message and "Generate again" in message
    screen_click(form, "a heron in reeds", "$0.80")
    assert [r.cost for r in service.list_records()] == [Decimal("0.80")]


def test_a_click_on_screen_with_a_bad_prompt_says_what_to_change_and_spends_nothing(form, service):
    form.prompt.value = "fine"
    screen_click(form, "", "$0.40")
    screen_click(form, "x" * (MAX_PROMPT_CHARS + 1), "$0.40")
    assert service.count_records() == 0
    assert [kind for kind, _message in form.toasts.messages] == ["error", "error"]
    assert "empty" in form.toasts.messages[0][1] and "32,000" in form.toasts.messages[1][1]


def test_a_message_that_is_not_a_click_does_nothing(form, service):
    form.prompt.value = "a heron in reeds"
    for message in ({"event": "other"}, {"event": "click", "button": "soranb-delete"}, ["click"]):
        form.screen._handle_custom_msg(message, [])
    assert service.count_records() == 0 and form.prompt.value == "a heron in reeds"
