"""MediaUrls, the one cache of media URLs the views play from: it follows the store's expiry."""

from __future__ import annotations

import pytest
from widget_helpers import SigningService, insert_records, make_records

import soranb.widgets.media_urls as urls_module
from soranb.widgets import CompareView, HistoryGrid, Toasts, VariationGrid
from soranb.widgets.media_urls import MediaUrls


@pytest.mark.parametrize(("ttl", "reused_for"), [(60, 30), (300, 240), (3600, 2880)])
def test_a_url_is_reused_while_a_fifth_of_its_ttl_or_30_s_is_left(service, ttl, reused_for):
    signing = SigningService(service, ttl=ttl)
    urls = MediaUrls(signing, clock=signing.clock)
    first = urls.url("videos/a.mp4")
    signing.now += reused_for
    assert urls.url("videos/a.mp4") == first and urls.is_fresh("videos/a.mp4")
    signing.now += 1
    assert not urls.is_fresh("videos/a.mp4")
    second = urls.url("videos/a.mp4")
    assert second != first and signing.works(second)


def test_a_store_that_hands_back_its_own_cached_signature_never_leaves_a_dead_url(service):
    """Supabase's store reuses a signature while it has some time left: that URL is not a new one."""
    signing = SigningService(service, ttl=60, keeps_for=12)
    urls = MediaUrls(signing, clock=signing.clock)
    key = "videos/a.mp4"
    for step in [0, 35, 15, 11, 10, 20, 30, 5]:  # 35: stale for the views, still good for the store
        signing.now += step
        assert signing.works(urls.url(key)), f"a dead URL at {signing.now - 1000:.0f} s"


def test_reload_asks_again_but_a_signature_handed_back_keeps_its_deadline(service):
    signing = SigningService(service, ttl=60, keeps_for=12)
    urls = MediaUrls(signing, clock=signing.clock)
    first = urls.url("videos/a.mp4")
    signing.now += 35
    urls.forget()  # Reload: the store answers with the same signature (25 s left)
    assert urls.url("videos/a.mp4") == first
    for step in (20, 6):  # it must not be kept as if it were new: it dies 60 s after it was signed
        signing.now += step
        assert signing.works(urls.url("videos/a.mp4")), f"a dead URL at {signing.now - 1000:.0f} s"


def test_the_local_store_urls_do_not_expire_and_are_asked_for_once(service, settings, monkeypatch):
    (record,) = insert_records(settings.data_dir, make_records(1))
    asked: list[str] = []
    real = urls_module.media_src
    monkeypatch.setattr(urls_module, "media_src", lambda svc, key: asked.append(key) or real(svc, key))
    now = [0.0]
    urls = MediaUrls(service, clock=lambda: now[0])
    first = urls.url(record.video_key)
    assert first.endswith(record.video_key) and "/soranb/media/" in first
    now[0] += 365 * 24 * 3600.0
    assert urls.url(record.video_key) == first and urls.is_fresh(record.video_key)
    assert asked == [record.video_key]


def test_every_view_of_a_service_shares_one_cache(service, settings):
    records = insert_records(settings.data_dir, make_records(2))
    toasts = Toasts(dismiss_after=None)
    history = HistoryGrid(service, toasts=toasts)
    grid = VariationGrid(service, toasts=toasts)
    compare = CompareView(service, records)
    try:
        assert history.media_urls is grid.media_urls is compare.media_urls
        assert history.media_urls.is_fresh(records[0].video_key)  # the compare plays what the history asked for
    finally:
        for view in (compare, grid, history):
            view.close()
