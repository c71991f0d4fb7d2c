"""HistoryGrid over a real service: cards, in-place updates from events, delete, escaping, paging."""

from __future__ import annotations

import re

import pytest
from widget_helpers import XSS, finish, insert_records, make_records

from soranb.errors import RecordNotFound
from soranb.events import ServiceEvent
from soranb.records import Status
from soranb.report import history_table_html, summary_html
from soranb.request import GenerationRequest
from soranb.widgets import HistoryGrid, Toasts, app
from soranb.widgets._base import state_json


@pytest.fixture
def toasts():
    return Toasts(dismiss_after=None)


def grid_for(service, toasts, **kwargs) -> HistoryGrid:
    return HistoryGrid(service, toasts=toasts, **kwargs)


def test_generate_in_the_app_puts_a_card_on_top(service):
    view = app(service)
    view.toasts.dismiss_after = None
    assert view.history.cards == []
    view.form.prompt.value = "a fox in snow"
    view.form.generate.click()
    (card,) = view.history.cards
    assert card.record.prompt == "a fox in snow"
    assert {"soranb-card", f"soranb-card-{card.record.id}"} <= set(card._dom_classes)
    assert view.history.refresh_button.layout.display == ""  # a job is open
    view.close()


def test_progress_updates_one_card_in_place(service, settings, toasts):
    insert_records(settings.data_dir, make_records(3))
    grid = grid_for(service, toasts)
    record = service.generate(GenerationRequest("a slow sunrise"))
    before = {c.record.id: c for c in grid.cards}
    children_before = grid.grid.children
    assert len(before) == 4 and record.id in before

    seen: list[int] = []
    service.subscribe(lambda e: seen.append(e.record.progress) if e.kind == "progress" and e.record else None)
    while not seen:
        service.poll_once()
    card = grid.card(record.id)
    assert card is before[record.id]  # the same card object, updated
    assert card.progress.value == card.record.progress > 0
    assert grid.grid.children == children_before  # no card added, removed or rebuilt
    assert all(grid.card(rid) is c for rid, c in before.items())

    done = finish(service, record.id)
    assert done.status == Status.COMPLETED
    assert grid.card(record.id) is before[record.id]
    html = card.media.value
    assert '<video class="soranb-player"' in html and 'preload="metadata"' in html
    src = re.search(r'<video[^>]* src="([^"]+)"', html).group(1)
    assert src.endswith(f"videos/{record.id}.mp4") and not src.startswith("data:")
    assert "base64" not in state_json(grid)
    assert card.progress not in card.children  # shown only while running
    assert "Download" in card.media.value
    assert grid.refresh_button.layout.display == "none"  # nothing open any more
    grid.close()


def test_an_event_touches_only_its_card(service, settings, toasts):
    records = insert_records(settings.data_dir, make_records(5, status=Status.PROCESSING))
    grid = grid_for(service, toasts)
    others = {c.record.id: (c, c.media.value, c.info.value) for c in grid.cards}
    target = records[2]
    grid._on_event(ServiceEvent("progress", target.evolve(progress=64)))
    assert grid.card(target.id).progress.value == 64
    for rid, (card, media, meta) in others.items():
        assert grid.card(rid) is card
        if rid != target.id:
            assert card.progress.value == 0 and card.media.value == media and card.info.value == meta
    # An older update arriving late never overwrites a newer one.
    stale = target.evolve(progress=10, updated_at=target.updated_at)
    grid._on_event(ServiceEvent("progress", stale))
    assert grid.card(target.id).progress.value == 64
    grid.close()


def test_created_event_inserts_on_page_one_only(service, settings, toasts):
    insert_records(settings.data_dir, make_records(13))
    grid = grid_for(service, toasts, page_size=12)
    first = grid.cards[0]
    grid.go_to(1)
    service.generate(GenerationRequest("made while on page two"))
    assert all(c.record.prompt != "made while on page two" for c in grid.cards)
    assert grid.total == 14 and "page 2 of 2" in grid.page_label.value
    grid.go_to(0)
    assert grid.cards[0].record.prompt == "made while on page two"
    assert len(grid.cards) == 12
    assert first.record.id in {c.record.id for c in grid.cards}
    grid.close()


def test_completed_card_plays_from_a_url_never_bytes(service, settings, toasts):
    (record,) = insert_records(settings.data_dir, make_records(1))
    grid = grid_for(service, toasts)
    card = grid.card(record.id)
    assert '<video class="soranb-player" controls preload="metadata" src="' in card.media.value
    assert "data:" not in card.media.value and "base64" not in state_json(grid)
    assert 'poster="' in card.media.value and "thumbnails/" in card.media.value
    grid.close()


def test_failed_card_shows_the_error(service, settings, toasts):
    (record,) = insert_records(
        settings.data_dir, make_records(1, status=Status.FAILED, error_message="moderation_blocked: <b>no</b>")
    )
    grid = grid_for(service, toasts)
    assert "moderation_blocked: &lt;b&gt;no&lt;/b&gt;" in grid.card(record.id).info.value
    grid.close()


def test_delete_asks_first_then_removes_record_and_card(service, settings, toasts):
    records = insert_records(settings.data_dir, make_records(3))
    grid = grid_for(service, toasts)
    card = grid.card(records[0].id)
    card.delete_button.click()
    assert card.confirming and card.actions.children == (card.confirm_button, card.cancel_button)
    card.cancel_button.click()
    assert not card.confirming and card.confirm_button not in card.actions.children
    assert service.count_records() == 3

    kept = grid.card(records[1].id)
    card.delete_button.click()
    card.confirm_button.click()
    with pytest.raises(RecordNotFound):
        service.get(records[0].id)
    assert grid.card(records[0].id) is None and len(grid.cards) == 2
    assert grid.card(records[1].id) is kept
    assert grid.total == 2 and toasts.messages[-1][0] == "success"
    grid.close()


def test_delete_failure_is_shown_not_swallowed(service, settings, toasts, monkeypatch):
    (record,) = insert_records(settings.data_dir, make_records(1))
    grid = grid_for(service, toasts)

    def refuse(_record_id):
        raise RecordNotFound("no record with that id")

    monkeypatch.setattr(service, "delete", refuse)
    card = grid.card(record.id)
    card.delete_button.click()
    card.confirm_button.click()
    assert toasts.messages[-1] == ("error", "no record with that id")
    grid.close()


def test_prompt_is_escaped_in_cards_and_static_html(service, settings, toasts):
    (record,) = insert_records(settings.data_dir, make_records(1, prompt=XSS))
    grid = grid_for(service, toasts)
    escaped = "&lt;img src=x onerror=alert(1)&gt;"
    card_html = grid.card(record.id).html
    assert escaped in card_html and "<img src=x" not in card_html
    static = grid._repr_mimebundle_()["text/html"]
    assert escaped in static and "<img src=x" not in static
    table = history_table_html([record], grid.url_for)
    assert escaped in table and "<img src=x" not in table
    grid.close()


def test_pagination_over_sixty_records(service, settings, toasts):
    records = insert_records(settings.data_dir, make_records(60))
    grid = grid_for(service, toasts, page_size=12)
    newest_first = [r.id for r in reversed(records)]
    assert [c.record.id for c in grid.cards] == newest_first[:12]
    assert "page 1 of 5" in grid.page_label.value and "60 records" in grid.page_label.value
    assert grid.prev_button.disabled and not grid.next_button.disabled

    grid.next_button.click()
    assert [c.record.id for c in grid.cards] == newest_first[12:24]
    assert "page 2 of 5" in grid.page_label.value
    grid.go_to(99)
    assert "page 5 of 5" in grid.page_label.value and grid.next_button.disabled
    assert [c.record.id for c in grid.cards] == newest_first[48:]

    grid.order.value = False  # oldest first, back to page 1
    assert [c.record.id for c in grid.cards] == [r.id for r in records[:12]]
    grid.search.value = "clip 005"  # clip 0050..0059
    assert grid.total == 10 and len(grid.cards) == 10 and "page 1 of 1" in grid.page_label.value
    grid.search.value = ""
    grid.status_filter.value = "failed"
    assert grid.total == 0 and grid.cards == [] and grid.empty_note.layout.display == ""
    grid.close()


def test_refresh_status_polls_the_service(service, settings, toasts, monkeypatch):
    insert_records(settings.data_dir, make_records(1, status=Status.PENDING))
    grid = grid_for(service, toasts)
    assert grid.refresh_button.layout.display == ""
    calls = []
    monkeypatch.setattr(service, "poll_once", lambda: calls.append(1))
    grid.refresh_button.click()
    assert calls == [1]
    grid.close()


def test_mimebundle_has_view_html_and_text(service, settings, toasts):
    insert_records(settings.data_dir, make_records(2))
    grid = grid_for(service, toasts)
    bundle = grid._repr_mimebundle_()
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == grid.model_id
    assert "soranb-history-static" in bundle["text/html"] and "<img" in bundle["text/html"]
    assert bundle["text/plain"] == "HistoryGrid: 2 records, page 1 of 1"
    insert_records(settings.data_dir, make_records(1, prompt="later"))
    grid.reload()
    assert "later 0000" in grid.snapshot().data  # the state now, for a closing cell
    grid.close()


def test_summary_report(settings):
    records = make_records(3) + make_records(1, status=Status.FAILED)
    html = summary_html(records, lambda key: f"/media/{key}")
    assert "<b>4</b> generations" in html
    assert "$1.20" in html  # three completed 4 s sora-2 videos
    assert html.count("<img") == 3
