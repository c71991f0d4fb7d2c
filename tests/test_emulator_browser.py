"""Debian's Chromium plays what the emulator renders, streamed from the served emulator (Range requests)."""

from __future__ import annotations

import httpx2
import openai
import pytest
import test_emulator_server
from labbrowser import launch, require_chromium
from test_emulator_server import Served

pytestmark = pytest.mark.browser
served = test_emulator_server.served  # the uvicorn fixture, shared


def test_chromium_plays_the_emulator_mp4(served: Served) -> None:
    executable = require_chromium()
    from playwright.sync_api import sync_playwright

    with openai.OpenAI(base_url=served.base_url, api_key="sk-test", http_client=httpx2.Client(), max_retries=0) as sdk:
        video = sdk.videos.create_and_poll(prompt="played in a real browser", size="1280x720", seconds="4")
    assert video.status == "completed"
    url = f"{served.base_url}/videos/{video.id}/content"

    with sync_playwright() as playwright:
        browser = launch(playwright, executable)
        try:
            page = browser.new_page()
            page.set_extra_http_headers({"Authorization": "Bearer sk-test"})  # as the real API, a key is needed
            page.set_content(f'<video id="v" src="{url}" muted playsinline></video>')
            page.evaluate("document.getElementById('v').play()")
            page.wait_for_function("document.getElementById('v').currentTime > 0.5", timeout=20_000)
            width, height, duration, error, audio_bytes = page.evaluate(
                "(() => { const v = document.getElementById('v');"
                " return [v.videoWidth, v.videoHeight, v.duration, v.error && v.error.code,"
                " v.webkitAudioDecodedByteCount]; })()"
            )
        finally:
            browser.close()
    assert (width, height, error) == (1280, 720, None)
    assert duration == pytest.approx(4.0, abs=0.1)
    assert audio_bytes > 0  # Chromium decoded the AAC track: the clip has sound


def test_chromium_plays_an_extended_video_with_sound(served: Served) -> None:
    """An extension is one whole MP4 (source, then the new segment) that plays to its end, with sound."""
    executable = require_chromium()
    from playwright.sync_api import sync_playwright

    with openai.OpenAI(base_url=served.base_url, api_key="sk-test", http_client=httpx2.Client(), max_retries=0) as sdk:
        source = sdk.videos.create_and_poll(prompt="the first part", size="1280x720", seconds="4")
        extended = sdk.post(
            "/videos/extensions",
            body={"prompt": "and then more", "seconds": "4", "video": {"id": source.id}},
            cast_to=openai.types.Video,
        )
        extended = sdk.videos.poll(extended.id)
    assert (extended.status, extended.seconds) == ("completed", "8")
    url = f"{served.base_url}/videos/{extended.id}/content"

    with sync_playwright() as playwright:
        browser = launch(playwright, executable)
        try:
            page = browser.new_page()
            page.set_extra_http_headers({"Authorization": "Bearer sk-test"})
            page.set_content(f'<video id="v" src="{url}" muted playsinline></video>')
            page.evaluate("(() => { const v = document.getElementById('v'); v.currentTime = 6; v.play(); })()")
            page.wait_for_function("document.getElementById('v').currentTime > 6.5", timeout=20_000)
            duration, error, audio_bytes = page.evaluate(
                "(() => { const v = document.getElementById('v');"
                " return [v.duration, v.error && v.error.code, v.webkitAudioDecodedByteCount]; })()"
            )
        finally:
            browser.close()
    assert error is None
    assert duration == pytest.approx(8.0, abs=0.1)
    assert audio_bytes > 0
