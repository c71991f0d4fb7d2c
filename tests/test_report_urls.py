"""URLs that reach `src`/`href` in soranb's HTML: an allowlist (http, https, relative), never a script."""

from __future__ import annotations

import pytest

from soranb.records import GenerationRecord, Status
from soranb.report import player_html, thumbnail_html

RECORD = GenerationRecord(
    prompt="p",
    model="sora-2",
    size="1280x720",
    seconds=4,
    status=Status.COMPLETED,
    video_key="videos/x.mp4",
    thumbnail_key="thumbnails/x.webp",
)


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "java\tscript:alert(1)",
        "java\nscript:alert(1)",
        "\x01javascript:alert(1)",
        " JavaScript:alert(1)",
        "jav\x00ascript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "data:image/svg+xml,<svg onload=alert(1)>",
        "vbscript:msgbox(1)",
        "file:///etc/passwd",
        "blob:https://x/1",
    ],
)
def test_other_schemes_never_reach_the_page(url: str) -> None:
    for html in (thumbnail_html(RECORD, lambda key: url), player_html(RECORD, lambda key: url)):
        assert 'src="#"' in html
        assert "script" not in html.lower().replace("soranb", "")
        assert "file:" not in html and "data:" not in html and "blob:" not in html


@pytest.mark.parametrize(
    "url",
    [
        "https://x.supabase.co/storage/v1/object/sign/video_files/a.mp4?token=1&t=2",
        "http://127.0.0.1:8000/v1/videos/x/content",
        "/soranb/media/videos/x.mp4",
        "soranb/media/videos/x.mp4",
        "../media/thumbnails/x.webp",
    ],
)
def test_http_and_relative_urls_are_kept_escaped(url: str) -> None:
    html = player_html(RECORD, lambda key: url)
    assert f'src="{url.replace("&", "&amp;")}"' in html
