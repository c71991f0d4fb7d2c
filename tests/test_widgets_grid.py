"""VariationGrid over a real service: cost before Start, refusals before anything is stored or sent,
cells in matrix order, live updates reaching the right cell, one spend per double-click, escaping."""

from __future__ import annotations

import re
import threading

import pytest
from engine_helpers import drive, emulator_jobs
from widget_helpers import XSS, SigningService

from soranb.config import Settings
from soranb.records import Status
from soranb.variation import plan_variations
from soranb.widgets import Toasts, VariationGrid
from soranb.widgets._base import RepeatGuard
from soranb.widgets.media_urls import MediaUrls


@pytest.fixture
def toasts():
    return Toasts(dismiss_after=None)


def two_by_two(grid: VariationGrid) -> None:
    grid.prompts.value = "a fox in snow\na cat on a roof"
    grid.models.value = ("sora-2", "sora-2-pro")


def test_the_cost_of_the_whole_matrix_shows_before_anything_starts(service, toasts):
    grid = VariationGrid(service, toasts=toasts)
    assert "type at least one prompt" in grid.cost_note.value
    grid.start_button.click()  # nothing to make: it says so again, and nothing is stored
    assert "type at least one prompt" in grid.cost_note.value and service.count_records() == 0
    two_by_two(grid)
    grid.seconds.value = (4, 8)
    # 2 prompts x 2 models x 2 lengths: sora-2 $0.40 + $0.80, pro $1.20 + $2.40, twice
    assert "8 video(s)" in grid.cost_note.value and "Start costs $9.60" in grid.cost_note.value
    assert service.count_records() == 0  # pricing stores nothing
    grid.close()


def test_cells_follow_the_matrix_order_with_the_varied_settings_as_headers(service, toasts):
    grid = VariationGrid(service, toasts=toasts)
    two_by_two(grid)
    records = grid.start()
    assert records is not None and len(records) == 4
    plan = grid.plan
    assert plan is not None
    assert [c.record.id for c in grid.cells if c.record] == [r.id for r in records]
    assert [(c.record.prompt, c.record.model) for c in grid.cells if c.record] == [
        ("a fox in snow", "sora-2"),
        ("a fox in snow", "sora-2-pro"),
        ("a cat on a roof", "sora-2"),
        ("a cat on a roof", "sora-2-pro"),
    ]
    texts = [w.value for w in grid.table.children if "soranb-grid-cell" not in w._dom_classes]
    assert "prompt / model" in texts[0]
    assert ">sora-2<" in texts[1] and ">sora-2-pro<" in texts[2]
    assert ">a fox in snow<" in texts[3] and ">a cat on a roof<" in texts[4]
    # the table's children: corner, 2 column heads, then each row's head and its two cells
    kinds = ["cell" if "soranb-grid-cell" in w._dom_classes else "head" for w in grid.table.children]
    assert kinds == ["head"] * 3 + ["head", "cell", "cell"] * 2
    assert "repeat(2," in grid.table.layout.grid_template_columns
    grid.close()
    assert grid.comm is None and grid.table.comm is None
    assert toasts.comm is not None  # toasts passed in belong to whoever passed them


def test_a_combination_not_offered_is_a_cell_that_says_why(service, toasts):
    grid = VariationGrid(service, toasts=toasts)
    grid.prompts.value = "a lighthouse"
    grid.models.value = ("sora-2", "sora-2-pro")
    grid.sizes.value = ("1280x720", "1792x1024")
    assert "1 not offered" in grid.cost_note.value
    grid.start()
    notes = [c for c in grid.cells if c.record is None]
    assert len(grid.cells) == 4 and len(notes) == 1
    assert "sora-2 does not offer 1792x1024" in notes[0].note.value
    assert service.count_records() == 3
    grid.close()


def test_a_grid_over_the_budget_is_refused_saying_how_much_before_anything_is_stored_or_sent(
    make_service, settings, toasts
):
    env = {"SORANB_DATA_DIR": str(settings.data_dir), "SORANB_EMULATOR_SPEED": "240", "SORANB_BUDGET_USD": "2.00"}
    service = make_service(using=Settings.from_env(env, dotenv=False))
    grid = VariationGrid(service, toasts=toasts)
    grid.prompts.value = "a fox in snow"
    assert "Start costs $0.40. $1.60 of the budget will be left." in grid.cost_note.value
    two_by_two(grid)  # $3.20
    assert "$1.20 over" in grid.cost_note.value and "SORANB_BUDGET_USD" in grid.cost_note.value
    grid.start_button.click()  # refused again, in the grid and in a toast; nothing stored or sent
    assert "$1.20 over" in grid.cost_note.value and "Traceback" not in grid.cost_note.value
    assert any("$1.20 over" in text for _kind, text in toasts.messages)
    assert service.count_records() == 0
    assert emulator_jobs(service) == []
    grid.close()


def test_a_double_click_on_start_makes_one_set_of_new_takes(service, toasts):
    now = [1000.0]
    grid = VariationGrid(service, toasts=toasts, repeat_guard=RepeatGuard(clock=lambda: now[0]))
    two_by_two(grid)
    grid.start()
    assert service.count_records() == 4
    grid.start_button.click()  # same settings, same key: the same records, nothing paid again
    assert service.count_records() == 4
    now[0] += 60  # a minute later, fresh takes of the same grid
    grid.new_takes.value = True
    assert "Start costs $3.20" in grid.cost_note.value
    grid.start_button.click()
    grid.start_button.click()  # the second click of a double-click
    assert service.count_records() == 8
    assert "Press Start again" in grid.cost_note.value
    grid.start_button.click()  # asked, and pressed again: another set
    assert service.count_records() == 12
    grid.close()


def test_service_events_update_the_card_of_their_own_cell_in_place(service, toasts):
    grid = VariationGrid(service, toasts=toasts)
    two_by_two(grid)
    records = grid.start()
    assert records is not None
    cards = [c.card for c in grid.cells]
    table = grid.table.children
    assert all(not c.compare.value and c.compare.disabled for c in grid.cells)  # not finished yet
    drive(service)
    grid.flush()  # the events reach the cells on the views' thread
    assert [c.card for c in grid.cells] == cards and grid.table.children == table  # nothing rebuilt
    for cell, record in zip(grid.cells, records, strict=True):
        assert cell.card is not None and cell.card.record.id == record.id
        assert cell.card.record.status == Status.COMPLETED
        assert "soranb-player" in cell.card.media.value
        assert not cell.compare.disabled
    grid.close()


def test_a_deleted_record_leaves_its_cell_saying_so(service, toasts):
    grid = VariationGrid(service, toasts=toasts)
    two_by_two(grid)
    records = grid.start()
    assert records is not None
    service.delete(records[1].id)  # elsewhere, e.g. the history grid
    grid.flush()
    assert grid.cells[1].record is None and "deleted" in grid.cells[1].note.value
    assert [c.record.id for c in grid.cells if c.record] == [records[0].id, records[2].id, records[3].id]
    grid.close()


def test_an_existing_plan_shows_as_a_grid_in_code_without_making_anything(service, toasts):
    plan = plan_variations(["a fox in snow"], models=["sora-2", "sora-2-pro"], seconds=[4, 8], key="shoot")
    made = service.vary(plan.prompts, models=plan.models, seconds=plan.seconds, key="shoot")
    grid = VariationGrid(service, plan=plan, toasts=toasts)
    assert [c.record.id for c in grid.cells if c.record] == [r.id for r in made]
    assert grid.prompts.value == "a fox in snow" and grid.models.value == ("sora-2", "sora-2-pro")
    assert "4 made already" in grid.cost_note.value and "Start costs $0.00" in grid.cost_note.value
    assert service.count_records() == 4
    fresh = plan_variations(["an untouched prompt"], key="shoot")
    grid.show(fresh)  # nothing stored under it: cells say so, and nothing is made
    assert "not made yet" in grid.cells[0].note.value and service.count_records() == 4
    grid.close()


def test_prompts_and_variants_are_escaped_in_headers_cards_and_the_static_view(service, toasts):
    grid = VariationGrid(service, toasts=toasts)
    grid.prompts.value = XSS
    grid.variants.value = "<b>bold</b>\n<script>x()</script>"
    grid.start()
    html = "".join(str(w.value) for w in grid.table.children if hasattr(w, "value"))
    html += "".join(c.card.html for c in grid.cells if c.card) + grid._static_html() + grid.cost_note.value
    assert "<img src=x" not in html and "<script>" not in html and "<b>bold" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html and "&lt;script&gt;x()&lt;/script&gt;" in html
    grid.close()


def test_compare_takes_two_to_four_finished_cells(service, toasts):
    grid = VariationGrid(service, toasts=toasts)
    grid.prompts.value = "one\ntwo\nthree\nfour\nfive"
    grid.start()
    drive(service)
    grid.flush()
    assert grid.compare_button.disabled
    for cell in grid.cells:
        cell.compare.value = True
    assert [c.compare.value for c in grid.cells] == [True] * 4 + [False]  # the fifth is refused
    assert "At most 4" in grid.compare_note.value
    grid.cells[0].compare.value = grid.cells[1].compare.value = False
    grid.compare_button.click()
    view = grid.compare_view
    assert view is not None and view.record_ids == [grid.cells[2].record.id, grid.cells[3].record.id]
    assert view in grid.compare_box.children
    grid.close()


def test_a_finished_video_whose_urls_need_the_service_still_reaches_its_cell(service, toasts, monkeypatch):
    """A signed URL cannot be asked for on the service's own thread: events reach the cells off that thread."""
    import soranb.widgets.media_urls as urls_module

    real = urls_module.media_src
    asked_on: list[str] = []

    def sign(svc, key):
        asked_on.append(threading.current_thread().name)
        if threading.current_thread().name == "soranb-service":
            raise RuntimeError("a service call from the service's own thread")
        return real(svc, key)

    monkeypatch.setattr(urls_module, "media_src", sign)
    grid = VariationGrid(service, toasts=toasts)
    grid.prompts.value = "a signed fox"
    (record,) = grid.start() or []
    drive(service)
    grid.flush()
    card = grid.cells[0].card
    assert card.record.id == record.id and card.record.status == Status.COMPLETED
    assert '<video class="soranb-player"' in card.media.value
    assert asked_on and "soranb-service" not in asked_on  # never asked on the service's thread
    assert not grid.cells[0].compare.disabled
    grid.close()


def _src(card) -> str:
    found = re.search(r'<video class="soranb-player"[^>]* src="([^"]*)"', card.media.value)
    assert found, card.media.value
    return found.group(1)


def test_a_cell_shown_after_its_signed_url_went_stale_plays_from_a_fresh_one(service, toasts):
    """The grid asks again once the store's TTL (here 60 s) runs short, and not before."""
    signing = SigningService(service, ttl=60)
    grid = VariationGrid(signing, toasts=toasts, media_urls=MediaUrls(signing, clock=signing.clock))
    grid.prompts.value = "a fox in snow"
    (record,) = grid.start() or []
    drive(service)
    grid.flush()
    card = grid.cells[0].card
    first, media = _src(card), card.media.value
    signing.now += 20
    service.set_favourite(record.id, True)  # an event re-renders the cell: the player is left alone
    grid.flush()
    assert card.record.favourite and card.media.value == media
    signing.now += 45  # 65 s: the first URL answers 400 by now
    grid.show(grid.plan)  # shown again (as Start under the same key does)
    card = grid.cells[0].card
    second = _src(card)
    assert second != first and signing.works(second)
    signing.now += 35
    service.set_favourite(record.id, False)  # near expiry, a re-render takes the new URL
    grid.flush()
    assert _src(card) != second and signing.works(_src(card))
    grid.close()


def start_click(grid: VariationGrid, prompts: str, variants: str) -> None:
    """What the page sends when Start is clicked: both boxes and the price note as shown at the click."""
    shown = re.sub(r"<[^>]+>", "", grid.cost_note.value).replace("&#x27;", "'")
    message = {
        "event": "click",
        "button": "soranb-vary-start",
        "fields": {"prompts": prompts, "variants": variants},
        "shown": {"cost": shown},
    }
    grid.screen._handle_custom_msg(message, [])


def test_the_prompts_and_variants_boxes_price_as_you_type(service, toasts):
    grid = VariationGrid(service, toasts=toasts)
    assert grid.prompts.continuous_update and grid.variants.continuous_update
    grid.close()


def test_start_makes_exactly_what_the_price_on_screen_said_at_the_click(service, toasts):
    grid = VariationGrid(service, toasts=toasts)
    grid.prompts.value = "a fox in snow\na cat on a roof"
    grid.variants.value = "at dawn\nat dusk"
    assert "4 video(s)" in grid.cost_note.value and "Start costs $1.60" in grid.cost_note.value
    # a third variant typed and Start clicked at once: the page still shows $1.60
    start_click(grid, "a fox in snow\na cat on a roof", "at dawn\nat dusk\nat noon")
    assert service.count_records() == 0  # not $2.40 behind a $1.60 on screen
    assert "6 video(s)" in grid.cost_note.value and "Start costs $2.40" in grid.cost_note.value
    assert "again" in grid.cost_note.value
    start_click(grid, "a fox in snow\na cat on a roof", "at dawn\nat dusk\nat noon")  # seen, pressed again
    assert service.count_records() == 6
    assert toasts.messages[-1] == ("success", "Started 6 video(s) ($2.40)")
    grid.close()


def test_a_double_click_on_start_with_new_takes_asks_once_with_the_price(service, toasts):
    grid = VariationGrid(service, toasts=toasts)
    two_by_two(grid)
    grid.new_takes.value = True
    start_click(grid, grid.prompts.value, "")
    start_click(grid, grid.prompts.value, "")  # the second click of a double-click
    assert service.count_records() == 4
    assert "Press Start again" in grid.cost_note.value and "Start costs $3.20" in grid.cost_note.value
    start_click(grid, grid.prompts.value, "")  # asked, and pressed again: another set
    assert service.count_records() == 8
    grid.close()
