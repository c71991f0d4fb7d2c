"""CompareView's Python side: which records, their URLs for the synced players, the diff, the limits."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest
from widget_helpers import XSS, SigningService, insert_records, make_records

from soranb.errors import RequestInvalid
from soranb.records import Status
from soranb.widgets import CompareView
from soranb.widgets._base import media_src, state_json
from soranb.widgets.compare import SyncedPlayers, diff_html
from soranb.widgets.media_urls import MediaUrls


@pytest.fixture
def finished(service, settings):
    records = make_records(5)
    records[1] = dataclasses.replace(records[1], model="sora-2-pro", prompt="clip 0000 at dusk")
    return insert_records(settings.data_dir, records)


def test_it_shows_the_picked_records_in_order_from_ids_or_records(service, finished):
    view = CompareView(service, [finished[2].id, finished[0].id])
    assert view.record_ids == [finished[2].id, finished[0].id]
    assert [v["src"] for v in view.players.videos] == [
        media_src(service, finished[2].video_key),
        media_src(service, finished[0].video_key),
    ]
    assert all(v["poster"] for v in view.players.videos)
    assert isinstance(view.players, SyncedPlayers) and "export default" in view.players._esm
    view.close()
    assert CompareView(service, finished[:4]).record_ids == [r.id for r in finished[:4]]


def test_two_to_four_different_videos_only(service, finished):
    for picked in ([finished[0]], finished[:5], [finished[0], finished[0]], []):
        with pytest.raises(RequestInvalid, match="pick"):
            CompareView(service, picked)
    with pytest.raises(RequestInvalid, match="no video with id"):
        CompareView(service, [finished[0].id, "not-a-record"])


def test_only_finished_videos(service, settings, finished):
    (running,) = insert_records(settings.data_dir, make_records(1, status=Status.PROCESSING, prompt="still going"))
    with pytest.raises(RequestInvalid, match=r"only finished videos.*still going 0000.*processing"):
        CompareView(service, [finished[0].id, running.id])


def test_the_diff_marks_what_differs_and_escapes_everything(service, finished):
    view = CompareView(service, [finished[0], finished[1]])  # same size and length, other model and prompt
    html = view.diff.value
    changed = [row for row in html.split("<tr") if "soranb-diff-changed" in row]
    assert len(changed) == 2 and "model" in changed[0] and "cost" in changed[1]
    assert "<mark" not in html.split("<td")[1]  # the first prompt's words are all in the second
    assert '<mark class="soranb-diff-word">at</mark> <mark class="soranb-diff-word">dusk</mark>' in html
    hostile = dataclasses.replace(finished[2], prompt=XSS + " <script>x()</script>")
    html = diff_html([finished[0], hostile], lambda key: f"/media/{key}")
    assert "<script>" not in html and "<img src=x" not in html
    assert "&lt;img" in html and "&lt;script&gt;" in html
    assert "soranb-thumb" in html  # the static view has thumbnails
    view.close()


def test_labels_are_settings_only_and_no_unsafe_source_reaches_the_players(service, finished, monkeypatch):
    monkeypatch.setattr("soranb.widgets.media_urls.media_src", lambda _s, key: "javascript:alert(1)")
    view = CompareView(service, finished[:2])
    assert [v["src"] for v in view.players.videos] == ["", ""]
    assert view.players.videos[0]["label"] == "video 1: sora-2 1280x720 4 s"
    assert "javascript:" not in state_json(view)
    view.close()


def test_anywidget_loads_with_the_compare_view_only() -> None:
    """The other views never pay for the compare view's browser module."""
    code = (
        "import sys, soranb.widgets; before = 'anywidget' in sys.modules; "
        "from soranb import CompareView; print(before, 'anywidget' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.split() == ["False", "True"]


def test_the_history_picks_two_to_four_finished_videos_and_plays_them_in_sync(service, finished):
    from soranb.widgets import HistoryGrid, Toasts

    grid = HistoryGrid(service, toasts=Toasts(dismiss_after=None))
    try:
        assert grid.compare_go.disabled
        grid.card(finished[3].id).compare_button.click()
        assert grid.compare_go.disabled  # one video is not a compare
        grid.card(finished[1].id).compare_button.click()
        assert grid.card(finished[1].id).compare_button.description == "✓ Compare"
        assert not grid.compare_go.disabled and grid.compare_go.description == "Compare 2 picked"
        grid.compare_go.click()
        assert grid.compare_view is not None and grid.compare_view.record_ids == [finished[3].id, finished[1].id]
        assert grid.compare_box.children == (grid.compare_view,)
        for record in (finished[0], finished[2], finished[4]):  # a fifth pick is refused, saying why
            grid.card(record.id).compare_button.click()
        assert grid.compared == [finished[3].id, finished[1].id, finished[0].id, finished[2].id]
        assert grid.card(finished[4].id).compare_button.description == "Compare"
        assert any("at most 4" in message for _kind, message in grid.toasts.messages)
        grid.card(finished[3].id).compare_button.click()  # unpick
        assert grid.compared == [finished[1].id, finished[0].id, finished[2].id]
        grid.compare_close.click()
        assert grid.compare_view is None and grid.compare_box.children == ()
    finally:
        grid.close()


def test_a_compare_shown_again_after_its_signed_urls_went_stale_plays_from_fresh_ones(service, finished):
    """The players' sources follow the store's TTL (here 60 s); while they are good they are left alone."""
    signing = SigningService(service, ttl=60)
    view = CompareView(signing, finished[:2], media_urls=MediaUrls(signing, clock=signing.clock))
    first = [dict(v) for v in view.players.videos]
    signing.now += 20
    view._repr_mimebundle_()  # shown again soon: the same players
    assert view.players.videos == first
    signing.now += 45  # 65 s: the first URLs answer 400 by now
    view._repr_mimebundle_()  # shown again (a new output of the same view)
    videos = view.players.videos
    assert [v["src"] for v in videos] != [v["src"] for v in first]
    assert all(signing.works(v["src"]) and signing.works(v["poster"]) for v in videos)
    view.close()


def test_the_history_and_its_compare_share_one_cache_and_a_reload_renews_both(service, finished):
    from soranb.widgets import HistoryGrid, Toasts

    signing = SigningService(service, ttl=60)
    urls = MediaUrls(signing, clock=signing.clock)
    grid = HistoryGrid(signing, toasts=Toasts(dismiss_after=None), media_urls=urls)
    try:
        for record in finished[:2]:
            grid.card(record.id).compare_button.click()
        asked = len(signing.signed)
        grid.compare_go.click()
        assert len(signing.signed) == asked  # the compare plays the URLs the cards already have
        signing.now += 65
        grid.reload()
        assert all(signing.works(v["src"]) for v in grid.compare_view.players.videos)
    finally:
        grid.close()
