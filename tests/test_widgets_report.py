"""The shared report (thumbnails embedded within a budget, links that say where they work) and batches
that a re-run reuses instead of paying again."""

from __future__ import annotations

import re
from pathlib import Path

from widget_helpers import finish

from soranb.batch import start_batch
from soranb.request import GenerationRequest
from soranb.sharing import OfflineMedia, report_html


def _done(service, prompt):
    return finish(service, service.generate(GenerationRequest(prompt)).id)


def test_report_embeds_small_thumbnails_and_links_videos_relative_to_the_notebook(service, settings, tmp_path):
    records = [_done(service, f"clip {i}") for i in range(3)]
    notebook_dir = settings.data_dir.parent / "notebooks"
    notebook_dir.mkdir()
    html = report_html(service, records, records, notebook_dir=notebook_dir)
    thumbs = re.findall(r'class="soranb-thumb" src="(data:image/jpeg;base64,[^"]+)"', html)
    assert len(thumbs) == 6 and all(len(t) < 16_000 for t in thumbs)
    assert "/soranb/media/" not in html and "file:" not in html
    links = re.findall(r'class="soranb-download" href="([^"]+)"', html)
    assert len(links) == 3
    for link, record in zip(links, records, strict=True):
        assert link.startswith("../") and (notebook_dir / link).resolve() == service.media_path(record.video_key)
    assert "author&#x27;s machine" in html


def test_report_thumbnails_stay_within_the_budget(service, settings):
    records = [_done(service, f"clip {i}") for i in range(3)]
    media = OfflineMedia(service, Path.cwd(), budget_bytes=4_000)
    uris = [media.thumb(r.thumbnail_key) for r in records]
    assert media.used_bytes <= 4_000 and "" in uris and media.left_out >= 1
    html = report_html(service, records, budget_bytes=4_000)
    assert "soranb-thumb-empty" in html and "left out to keep this notebook small" in html


def test_rerunning_a_batch_reuses_its_records(service):
    requests = [GenerationRequest("a paper boat"), GenerationRequest("a paper boat"), GenerationRequest("clouds")]
    first = start_batch(service, requests)
    assert [item.reused for item in first] == [False, False, False]
    again = start_batch(service, requests)
    assert [item.reused for item in again] == [True, True, True]
    assert {i.record.id for i in again} == {i.record.id for i in first}
    assert service.count_records() == 3
    fresh = start_batch(service, requests[:1], new=True)
    assert not fresh[0].reused and service.count_records() == 4


def test_report_waits_only_for_this_runs_jobs(service):
    """The report cell waits for its batch by id: a job from elsewhere that never ends does not hold it."""
    (item,) = start_batch(service, [GenerationRequest("this run")])
    service.poll_once()
    stuck = service.generate(GenerationRequest("an unrelated job"))
    finished = service.wait([item.record.id], timeout=60)
    assert [r.id for r in finished] == [item.record.id] and not finished[0].is_open
    assert stuck.id not in {r.id for r in finished}


def test_a_download_is_named_after_its_prompt():
    from soranb.records import GenerationRecord
    from soranb.report import download_html

    record = GenerationRecord("A red fox, trotting through <snow>!", "sora-2", "1280x720", 4, video_key="videos/x.mp4")
    html = download_html(record, lambda key: f"/media/{key}")
    assert f'download="a-red-fox-trotting-through-snow-{record.id[:6]}.mp4"' in html
    assert "soranb-" + record.id not in html
