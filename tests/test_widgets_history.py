"""HistoryGrid over a real service: cards, in-place updates from events, delete, escaping, paging."""

from __future__ import annotations

import re

import pytest
from widget_helpers import XSS, SigningService, finish, insert_records, make_records

from soranb.errors import RecordNotFound, StoreWriteFailed
from soranb.events import ServiceEvent
from soranb.records import Status
from soranb.report import history_table_html, summary_html
from soranb.request import GenerationRequest
from soranb.widgets import HistoryGrid, Toasts, app
from soranb.widgets._base import state_json
from soranb.widgets.media_urls import MediaUrls


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
    view.history.flush()  # the service's "created" event reaches the grid on the views' thread
    (card,) = view.history.cards
    assert card.record.prompt == "a fox in snow"
    assert {"soranb-card", f"soranb-card-{card.record.id}"} <= set(card._dom_classes)
    assert view.history.refresh_button.layout.display == ""  # a job is open
    view.close()


def test_progress_updates_one_card_in_place(service, settings, toasts):
    insert_records(settings.data_dir, make_records(3))
    grid = grid_for(service, toasts)
    record = service.generate(GenerationRequest("a slow sunrise"))
    grid.flush()
    before = {c.record.id: c for c in grid.cards}
    children_before = grid.grid.children
    assert len(before) == 4 and record.id in before

    seen: list[int] = []
    service.subscribe(lambda e: seen.append(e.record.progress) if e.kind == "progress" and e.record else None)
    while not seen:
        service.poll_once()
    grid.flush()
    card = grid.card(record.id)
    assert card is before[record.id]  # the same card object, updated
    assert card.progress.value == card.record.progress > 0
    assert grid.grid.children == children_before  # no card added, removed or rebuilt
    assert all(grid.card(rid) is c for rid, c in before.items())

    done = finish(service, record.id)
    grid.flush()
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
    grid.flush()
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
        raise StoreWriteFailed("the data folder is read-only")

    monkeypatch.setattr(service, "delete", refuse)
    card = grid.card(record.id)
    card.delete_button.click()
    card.confirm_button.click()
    assert toasts.messages[-1] == ("error", "the data folder is read-only")
    grid.close()


def test_deleting_what_was_deleted_elsewhere_says_so_in_words(service, settings, toasts, monkeypatch):
    (record,) = insert_records(settings.data_dir, make_records(1))
    grid = grid_for(service, toasts)

    def gone(_record_id):
        raise RecordNotFound(f"no record {record.id!r} in local ({settings.data_dir})")

    monkeypatch.setattr(service, "delete", gone)
    card = grid.card(record.id)
    card.delete_button.click()
    card.confirm_button.click()
    kind, message = toasts.messages[-1]
    assert kind == "info" and "deleted elsewhere" in message
    assert record.id not in message and str(settings.data_dir) not in message
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
    grid.search_delay_s = 0  # filter at once (typing waits for a pause: see the search test)
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


def _views(grid):
    """What the browser holds for the grid: the children's model ids, and each shown card's player HTML."""
    return [c.model_id for c in grid.grid.children], {c.record.id: (c.model_id, c.media.value) for c in grid.cards}


def _assert_untouched(grid, before, keep_ids):
    children_before, media_before = before
    children_after, media_after = _views(grid)
    # The browser re-creates every child view after the first changed position: only appending is safe.
    assert children_after[: len(children_before)] == children_before
    for rid in keep_ids:
        assert media_after[rid] == media_before[rid], "a shown card was rebuilt"


def test_insert_delete_reload_and_paging_never_rebuild_a_shown_card(service, settings, toasts):
    records = insert_records(settings.data_dir, make_records(5))
    grid = grid_for(service, toasts, page_size=4)
    watched = records[-1].id  # newest, on top: the video being watched
    before = _views(grid)

    made = service.generate(GenerationRequest("a new clip arrives"))  # insert on top
    grid.flush()
    assert grid.cards[0].record.id == made.id and len(grid.cards) == 4
    _assert_untouched(grid, before, [watched, records[-2].id])

    before = _views(grid)
    grid.card(records[-2].id).delete_button.click()
    grid.card(records[-2].id).confirm_button.click()  # delete a neighbour
    assert grid.card(records[-2].id) is None and grid.card(watched) is not None
    _assert_untouched(grid, before, [watched, made.id])

    before = _views(grid)
    grid.reload_button.click()
    _assert_untouched(grid, before, [watched, made.id])
    assert [c.record.id for c in grid.cards][:2] == [made.id, watched]

    grid.go_to(1)
    grid.go_to(0)
    assert len(grid.grid.children) <= 4 + 1  # cards are reused, not piled up
    assert [c.record.id for c in grid.cards][:2] == [made.id, watched]
    # Order on screen is CSS order; hidden spares carry no player.
    orders = [c.layout.order for c in grid.cards]
    assert orders == [str(i) for i in range(len(grid.cards))]
    for spare in set(grid.grid.children) - set(grid.cards):
        assert spare.layout.display == "none" and spare.media.value == ""
    grid.close()


def test_events_from_elsewhere_insert_and_remove_one_card(service, settings, toasts):
    records = insert_records(settings.data_dir, make_records(3))
    grid = grid_for(service, toasts)
    before = _views(grid)
    (other,) = make_records(1, prompt="made by the CLI")
    grid._on_event(ServiceEvent("created", other))
    assert grid.cards[0].record.id == other.id and grid.total == 4
    assert "4 records" in grid.page_label.value
    _assert_untouched(grid, before, [r.id for r in records])

    before = _views(grid)
    grid._on_event(ServiceEvent("deleted", records[1]))
    assert grid.card(records[1].id) is None and grid.total == 3 and len(grid.cards) == 3
    assert "3 records" in grid.page_label.value
    _assert_untouched(grid, before, [records[0].id, records[2].id, other.id])
    grid.close()


def _completed(service, prompt):
    return finish(service, service.generate(GenerationRequest(prompt)).id)


def test_remix_on_the_card_keeps_its_source_whatever_else_finishes(service, settings, toasts):
    source = _completed(service, "hummingbird 0000")
    grid = grid_for(service, toasts)
    card = grid.card(source.id)
    card.remix_button.click()
    assert card.remixing and "Remix this video" in card.action.label.value
    card.action.text.value = "make it night"
    for i in range(5):  # other jobs finish meanwhile and land on top of the grid
        (other,) = make_records(1, prompt=f"Northern lights {i}")
        grid._on_event(ServiceEvent("created", other))
        grid._on_event(ServiceEvent("completed", other))
    card = grid.card(source.id)
    assert card is not None and card.remixing and card.action.text.value == "make it night"
    card.action.go.click()
    card.action.go.click()  # a double-click: the field has closed, nothing more starts
    remixes = [r for r in service.list_records() if r.remixed_from]
    assert [(r.remixed_from, r.prompt) for r in remixes] == [(source.id, "make it night")]
    assert not card.remixing
    assert toasts.messages[-1][0] == "success" and "hummingbird 0000" in toasts.messages[-1][1]
    grid.flush()  # the remix's "created" event puts its card on top
    made = grid.card(remixes[0].id)
    assert "remix of “" in made.info.value and "hummingbird 0000" in made.info.value  # named by its prompt
    grid.close()


def test_the_same_remix_again_asks_first(service, settings, toasts):
    source = _completed(service, "a kite")
    grid = grid_for(service, toasts)
    assert grid.remix(source.id, "make it night") is not None
    assert grid.remix(source.id, "make it night") is None  # asked instead
    assert "same remix" in toasts.messages[-1][1]
    assert grid.remix(source.id, "make it night") is not None  # pressed again: the person means it
    assert len([r for r in service.list_records() if r.remixed_from]) == 2
    grid.close()


def test_progress_moves_and_says_why_a_job_waits(service, settings, toasts):
    (pending,) = insert_records(settings.data_dir, make_records(1, status=Status.PENDING))
    (running,) = insert_records(settings.data_dir, make_records(1, status=Status.PROCESSING, prompt="run"))
    grid = grid_for(service, toasts)
    assert "waiting for a free slot" in grid.card(pending.id).progress_note.value
    grid._on_event(ServiceEvent("progress", pending.evolve(metadata={"waiting_reason": "4 jobs running"})))
    assert "4 jobs running" in grid.card(pending.id).progress_note.value
    grid._on_event(ServiceEvent("progress", running.evolve(progress=37, metadata={"eta_s": 12.4})))
    card = grid.card(running.id)
    assert card.progress.value == 37 and "about 12 s left" in card.progress_note.value
    assert "soranb-card-running" in card._dom_classes  # the stylesheet animates running cards
    grid.close()


def test_a_failed_job_is_announced_not_billed_and_can_be_retried(service, settings, toasts):
    (running,) = insert_records(settings.data_dir, make_records(1, status=Status.PROCESSING, prompt="a boxer"))
    retried = []
    grid = grid_for(service, toasts, on_retry=retried.append)
    failed = running.evolve(status=Status.FAILED, error_message="Your request was blocked by moderation")
    grid._on_event(ServiceEvent("failed", failed))
    kind, message = toasts.messages[-1]
    assert kind == "error" and "a boxer" in message and "blocked by moderation" in message
    card = grid.card(running.id)
    assert "not billed" in card.info.value and "$0.40" not in card.info.value
    assert card.retry_button in card.actions.children
    card.retry_button.click()
    assert [r.id for r in retried] == [running.id]
    grid.close()


def test_search_filters_as_you_type_after_a_pause(service, settings, toasts):
    import time

    insert_records(settings.data_dir, make_records(3, prompt="fox") + make_records(2, prompt="owl"))
    grid = grid_for(service, toasts, search_delay_s=0.05)
    calls = []
    real = service.count_records
    service.count_records = lambda q=None: calls.append(q) or real(q)  # type: ignore[method-assign]
    for typed in ("o", "ow", "owl"):  # no Enter pressed
        grid.search.value = typed
    deadline = time.monotonic() + 10
    while grid.total != 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert grid.total == 2 and {c.record.prompt[:3] for c in grid.cards} == {"owl"}
    assert len(calls) == 1  # one query for the pause, not one per key
    grid.close()


def test_a_card_reused_for_another_record_never_carries_an_open_remix(service, settings, toasts):
    source = _completed(service, "hummingbird 0000")
    grid = grid_for(service, toasts, page_size=1)
    card = grid.card(source.id)
    card.remix_button.click()
    card.action.text.value = "make it night"
    (other,) = make_records(1, prompt="Northern lights")
    grid._on_event(ServiceEvent("created", other))  # pushes the source off the one-card page
    reused = grid.card(other.id)
    assert reused is card  # the same model now shows another record...
    assert not reused.remixing and reused.action.text.value == ""  # ...with no remix of it half-typed
    assert reused.action not in reused.children
    grid.close()


def test_diagnostic_records_are_not_shown(service, settings, toasts):
    (mine,) = insert_records(settings.data_dir, make_records(1, prompt="mine"))
    insert_records(settings.data_dir, make_records(1, prompt="soranb diagnostics", metadata={"diagnostic": True}))
    grid = grid_for(service, toasts)
    assert [c.record.id for c in grid.cards] == [mine.id]
    (later,) = make_records(1, prompt="soranb diagnostics")
    grid._on_event(ServiceEvent("created", later))
    grid._on_event(ServiceEvent("progress", later.evolve(progress=5, metadata={"diagnostic": True})))
    assert [c.record.id for c in grid.cards] == [mine.id]
    grid.close()


def test_the_saved_app_says_it_was_the_live_view_and_points_to_the_report(service):
    view = app(service)
    static = view._repr_mimebundle_()["text/html"]
    assert "live soranb app" in static and "report at the end of the notebook" in static
    view.close()


def _src(card) -> str:
    """The URL the card's player streams from."""
    found = re.search(r'<video class="soranb-player"[^>]* src="([^"]*)"', card.media.value)
    assert found, card.media.value
    return found.group(1)


def test_a_card_shown_after_its_signed_url_went_stale_plays_from_a_fresh_one(service, settings, toasts):
    """The store's TTL decides (here 60 s), not a fixed age: a card never shows a URL that answers 400."""
    (record,) = insert_records(settings.data_dir, make_records(1))
    signing = SigningService(service, ttl=60)
    grid = grid_for(signing, toasts, media_urls=MediaUrls(signing, clock=signing.clock))
    card = grid.card(record.id)
    first, media = _src(card), card.media.value
    signing.now += 20  # plenty left: a reload leaves the player alone
    grid.reload()
    assert card.media.value == media
    signing.now += 45  # 65 s: the first URL answers 400 by now
    grid.reload()
    assert _src(card) != first and signing.works(_src(card))
    second = _src(card)
    grid.reload_button.click()  # Reload asks for fresh URLs whatever their age
    assert _src(card) != second and signing.works(_src(card))
    grid.close()


def test_an_update_takes_a_new_url_only_once_the_old_one_is_about_to_expire(service, settings, toasts):
    """A re-render for an event keeps a playing video while its URL is good; near expiry it takes the new one."""
    (record,) = insert_records(settings.data_dir, make_records(1))
    signing = SigningService(service, ttl=60)
    grid = grid_for(signing, toasts, media_urls=MediaUrls(signing, clock=signing.clock))
    card = grid.card(record.id)
    first, media = _src(card), card.media.value
    signing.now += 20
    grid.set_favourite(record.id, True)
    assert card.record.favourite and card.media.value == media  # not rebuilt under a playing video
    signing.now += 15  # 35 s: less than the margin (30 s of 60) left
    grid.set_favourite(record.id, False)
    assert _src(card) != first and signing.works(_src(card))
    grid.close()


def test_a_finished_record_whose_urls_need_the_service_still_shows(service, settings, toasts, monkeypatch):
    """Events are handled off the service's thread, so a card whose signed URL needs the service shows at once."""
    import threading

    import soranb.widgets.media_urls as urls_module

    insert_records(settings.data_dir, make_records(2))
    grid = grid_for(service, toasts)
    real = urls_module.media_src

    def sign(svc, key):
        if threading.current_thread().name == "soranb-service":
            raise RuntimeError("a service call from the service's own thread")
        return real(svc, key)

    monkeypatch.setattr(urls_module, "media_src", sign)
    record = service.generate(GenerationRequest("a fox signed for"))
    grid.flush()
    before = _views(grid)
    finish(service, record.id)  # the poller's "completed" event is emitted on the service's thread
    grid.flush()
    assert '<video class="soranb-player"' in grid.card(record.id).media.value and toasts.messages == []
    _assert_untouched(grid, before, [r for r in before[1] if r != record.id])
    grid.close()


def test_a_card_shows_its_starting_image(service, settings, toasts):
    from widget_helpers import png

    from soranb.request import ImageInput

    record = service.generate(GenerationRequest("from a picture", image=ImageInput("red.png", png(1280, 720))))
    grid = grid_for(service, toasts)
    info = grid.card(record.id).info.value
    assert "from image red.png" in info
    assert 'class="soranb-start-image"' in info and f"images/{record.id}" in info
    grid.close()
