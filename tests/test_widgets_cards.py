"""A finished card's own tools: extend and edit (priced first, one job per click), lineage, the star,
and the grid's favourites, tag and search filters (by the store's own rules)."""

from __future__ import annotations

import pytest
from engine_helpers import emulator_jobs
from widget_helpers import XSS, finish, insert_records, make_records

from soranb.catalog import EXTENSION_SECONDS
from soranb.config import Settings
from soranb.events import ServiceEvent
from soranb.records import Status, make_lineage
from soranb.request import GenerationRequest
from soranb.widgets import HistoryGrid, Toasts


@pytest.fixture
def toasts():
    return Toasts(dismiss_after=None)


def _completed(service, prompt: str):
    return finish(service, service.generate(GenerationRequest(prompt)).id)


def _derived(service, kind: str) -> list:
    return [r for r in service.list_records() if r.lineage and r.lineage.startswith(f"{kind}:")]


def test_extend_on_a_card_shows_the_cost_first_and_a_double_click_makes_one_job(service, toasts):
    source = _completed(service, "a red fox in snow")
    grid = HistoryGrid(service, toasts=toasts)
    card = grid.card(source.id)
    assert card.extend_button in card.actions.children and card.edit_button in card.actions.children
    card.extend_button.click()
    assert card.acting == "extend" and card.action in card.children
    assert [value for _label, value in card.action.seconds.options] == list(EXTENSION_SECONDS)
    card.action.seconds.value = 8
    assert "$0.80" in card.action.cost.value and "8 s added" in card.action.cost.value  # sora-2: $0.10 a second
    card.action.text.value = "the fox jumps a stream"
    jobs_before = len(emulator_jobs(service))
    card.action.go.click()
    card.action.go.click()  # a double-click: the field has closed, nothing more starts
    (made,) = _derived(service, "extend")
    assert (made.prompt, made.seconds, made.lineage) == (
        "the fox jumps a stream",
        12,
        make_lineage("extend", source.id),
    )
    assert len(emulator_jobs(service)) == jobs_before + 1
    assert card.acting is None and card.action not in card.children
    kind, message = toasts.messages[-1]
    assert kind == "success" and "an extension of “a red fox in snow”" in message and "($0.80)" in message
    new_card = grid.card(made.id)
    assert "extended from “" in new_card.info.value and "a red fox in snow" in new_card.info.value
    grid.close()


def test_edit_on_a_card_is_priced_as_the_source_and_remembers_it(service, toasts):
    source = _completed(service, "a quiet street")
    grid = HistoryGrid(service, toasts=toasts)
    card = grid.card(source.id)
    card.edit_button.click()
    assert card.acting == "edit" and card.action.seconds not in card.action.children  # an edit keeps the length
    assert "$0.40" in card.action.cost.value
    card.action.text.value = "make it night"
    card.action.go.click()
    (made,) = _derived(service, "edit")
    assert (made.prompt, made.seconds) == ("make it night", 4)
    assert "edited from “" in grid.card(made.id).info.value
    grid.close()


def test_the_same_extension_again_within_seconds_asks_first(service, toasts):
    source = _completed(service, "a kite")
    grid = HistoryGrid(service, toasts=toasts)
    assert grid.extend(source.id, "it flies higher", 4) is not None
    assert grid.extend(source.id, "it flies higher", 4) is None  # asked instead
    assert "same extension" in toasts.messages[-1][1]
    assert grid.extend(source.id, "it flies higher", 4) is not None  # pressed again: the person means it
    assert grid.extend(source.id, "it flies higher", 8) is not None  # another length is another request
    assert len(_derived(service, "extend")) == 3
    grid.close()


def test_over_the_budget_the_card_says_so_and_the_refusal_is_a_toast(make_service, settings, toasts):
    env = {"SORANB_DATA_DIR": str(settings.data_dir), "SORANB_EMULATOR_SPEED": "240", "SORANB_BUDGET_USD": "0.50"}
    service = make_service(using=Settings.from_env(env, dotenv=False))
    source = _completed(service, "a lighthouse")  # $0.40 of $0.50
    grid = HistoryGrid(service, toasts=toasts)
    card = grid.card(source.id)
    card.extend_button.click()
    card.action.seconds.value = 4  # $0.40 more: over
    assert "Over the budget" in card.action.cost.value and "$0.10 left" in card.action.cost.value
    card.action.text.value = "the light turns on"
    jobs_before, stored_before = len(emulator_jobs(service)), service.count_records()
    card.action.go.click()  # guarded: the refusal is a toast, never a traceback
    kind, message = toasts.messages[-1]
    assert kind == "error" and "over the budget" in message and "SORANB_BUDGET_USD" in message
    assert (len(emulator_jobs(service)), service.count_records()) == (jobs_before, stored_before)
    assert card.acting == "extend" and card.action.text.value == "the light turns on"  # nothing typed is lost
    grid.close()


def test_an_empty_prompt_says_what_to_type(service, toasts):
    source = _completed(service, "a pond")
    grid = HistoryGrid(service, toasts=toasts)
    card = grid.card(source.id)
    card.extend_button.click()
    card.action.go.click()
    assert toasts.messages[-1][0] == "error" and "type a prompt first" in toasts.messages[-1][1]
    assert _derived(service, "extend") == []
    grid.close()


def test_lineage_names_a_hostile_source_as_text(service, settings, toasts):
    (source,) = insert_records(settings.data_dir, make_records(1, prompt=XSS))
    (child,) = make_records(1, prompt="after")
    child = child.evolve(lineage=make_lineage("extend", source.id))
    insert_records(settings.data_dir, [child])
    grid = HistoryGrid(service, toasts=toasts)
    info = grid.card(child.id).info.value
    assert "extended from “" in info and "<img" not in info and "&lt;img src=x" in info
    grid.close()


def test_the_star_marks_a_favourite_and_the_filter_shows_only_favourites(service, settings, toasts):
    records = insert_records(settings.data_dir, make_records(3))
    grid = HistoryGrid(service, toasts=toasts)
    card = grid.card(records[1].id)
    assert card.favourite_button in card.actions.children and card.favourite_button.description == "☆"
    card.favourite_button.click()
    assert service.get(records[1].id).favourite is True
    assert card.favourite_button.description == "★"
    grid.favourite_filter.value = True
    assert [c.record.id for c in grid.cards] == [records[1].id] and grid.total == 1
    grid.card(records[1].id).favourite_button.click()  # unmarked: it leaves the favourites page
    assert service.get(records[1].id).favourite is False and grid.cards == [] and grid.total == 0
    grid.close()


def test_tags_show_on_cards_and_the_tag_filter_queries_the_store(service, settings, toasts):
    records = insert_records(settings.data_dir, make_records(3))
    service.tag(records[0].id, "night shots")
    service.tag(records[2].id, "fox")
    grid = HistoryGrid(service, toasts=toasts)
    assert 'class="soranb-tag"' in grid.card(records[0].id).info.value
    assert "night shots" in grid.card(records[0].id).info.value
    (hostile,) = insert_records(
        settings.data_dir, make_records(1, prompt="planted", tags=(XSS,))
    )  # a row says anything
    grid.reload()
    assert "&lt;img src=x" in grid.card(hostile.id).info.value and "<img" not in grid.card(hostile.id).info.value
    grid.tag_filter.value = "  night   shots "  # written as stored tags are
    assert [c.record.id for c in grid.cards] == [records[0].id]
    grid.tag_filter.value = "<b>"
    assert toasts.messages[-1][0] == "error" and "is not allowed" in toasts.messages[-1][1]
    assert grid.total == 4  # no tag filter left behind
    grid.close()


@pytest.mark.parametrize(("stored", "typed"), [("DIE STRASSE BEI NACHT", "straße"), ("ΟΔΟΣ", "οδος")])
def test_a_created_record_is_placed_by_the_stores_search_rules(service, toasts, stored, typed):
    grid = HistoryGrid(service, toasts=toasts, search_delay_s=0)
    grid.search.value = typed
    assert grid.total == 0
    made = service.generate(GenerationRequest(stored))
    grid._on_event(ServiceEvent("created", made))  # announced by an event, placed without a query (once)
    assert service.count_records(grid.query()) == 1  # the store finds it
    assert grid.total == 1 and [c.record.id for c in grid.cards] == [made.id]
    grid._on_event(ServiceEvent("deleted", made))
    assert grid.total == 0
    grid.close()


def test_a_running_card_offers_no_extend_or_edit(service, settings, toasts):
    (running,) = insert_records(settings.data_dir, make_records(1, status=Status.PROCESSING))
    grid = HistoryGrid(service, toasts=toasts)
    card = grid.card(running.id)
    assert card.extend_button not in card.actions.children and card.edit_button not in card.actions.children
    grid.close()


def test_a_finished_card_scrubs_its_spritesheet_and_its_static_html_keeps_the_thumbnail(service, toasts):
    from soranb.sprites import Spritesheet
    from soranb.widgets.scrub import ScrubStrip

    done = _completed(service, "a lantern festival")
    grid = HistoryGrid(service, toasts=toasts)
    card = grid.card(done.id)
    sheet = Spritesheet.of(done)
    assert isinstance(card.scrub, ScrubStrip) and card.scrub in card.children
    assert card.children.index(card.scrub) < card.children.index(card.media)  # above the player
    assert card.scrub.src == grid.url_for(sheet.key) and card.scrub.src.endswith(f"thumbnails/{done.id}-sprites.jpg")
    assert (card.scrub.columns, card.scrub.rows, card.scrub.frames, card.scrub.seconds) == (4, 1, 4, 4.0)
    assert card.scrub.aspect == "1280 / 720"
    assert "sprites" not in grid._static_html() and "thumbnails/" in grid._static_html()
    grid.close()


def test_a_card_without_a_sane_spritesheet_has_no_scrub(service, settings, toasts):
    hostile = {"key": "../../secrets", "columns": 4, "rows": 1, "frames": 4}
    (record,) = insert_records(settings.data_dir, make_records(1, metadata={"spritesheet": hostile}))
    grid = HistoryGrid(service, toasts=toasts)
    card = grid.card(record.id)
    assert card.scrub is None and "secrets" not in card.html
    grid.close()


def test_the_scrub_strip_takes_only_web_urls_and_a_sane_grid():
    import traitlets

    from soranb.widgets.scrub import ScrubStrip

    strip = ScrubStrip(src="/soranb/media/thumbnails/a-sprites.jpg", columns=4, frames=4)
    assert strip.src == "/soranb/media/thumbnails/a-sprites.jpg"
    for hostile in ("javascript:alert(1)", "java\tscript:alert(1)", "data:text/html,<b>x</b>"):
        strip.src = hostile
        assert strip.src == ""
    strip.src = "https://example.supabase.co/storage/v1/object/sign/x.jpg?token=a&b=c"
    assert strip.src.endswith("token=a&b=c")  # a signed URL as it is, not HTML-escaped
    with pytest.raises(traitlets.TraitError):
        strip.columns = 0
    strip.close()
