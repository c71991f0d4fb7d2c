"""JupyterLab in Debian's Chromium: extend a generated video from its card; the extension plays with sound.

A person generates a video in `notebooks/generate.ipynb`, opens Extend on its card, sees the price,
double-clicks Start extension, and gets one new card, named as extended from the first video, whose
player holds the source followed by the added seconds and decodes the new segment's audio.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from labbrowser import error_outputs, launch, open_notebook, run_all_cells, screenshot, wait_cells_done
from labserver import LabServer

# The lab fixtures and the card helpers of the main browser test, reused as they are.
from test_browser import VIDEO_READY_MS, _card, _generate, _wait_idle, _wait_playable, chromium, lab  # noqa: F401

pytestmark = pytest.mark.browser

PROMPT = "A paper boat drifting down a gutter stream"
NEXT = "the boat slides into a storm drain"
SOURCE_SECONDS, ADDED_SECONDS = 4, 4


def _play_from(video: Any, at: float) -> dict[str, Any]:
    """Seek to `at`, play (muted, as autoplay allows) until the time passes it, and read what Chromium decoded."""
    before = video.evaluate(
        "(v, at) => { v.muted = true; v.currentTime = at; v.play().catch(() => null);"
        " return v.webkitAudioDecodedByteCount; }",
        at,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not video.evaluate("(v, at) => v.currentTime > at + 0.5", at):
        time.sleep(0.1)
    state: dict[str, Any] = video.evaluate(
        "v => ({t: v.currentTime, duration: v.duration, readyState: v.readyState, error: v.error && v.error.code,"
        " audio: v.webkitAudioDecodedByteCount})"
    )
    state["audio_before"] = before
    return state


def _assert_scrubs(card: Any, frames: int) -> None:
    """The pointer along the strip shows the still under it (the sheet loaded, from the media route)."""
    strip = card.locator(".soranb-scrub-strip")
    strip.wait_for(state="visible", timeout=VIDEO_READY_MS)
    strip.scroll_into_view_if_needed()
    box = strip.bounding_box()
    assert box is not None and box["width"] > 0
    big = card.locator(".soranb-scrub-frame")
    seen = []
    for n in (0, frames - 1):
        strip.hover(position={"x": box["width"] * (n + 0.5) / frames, "y": box["height"] / 2})
        big.wait_for(state="visible", timeout=10_000)
        seen.append(big.get_attribute("data-frame"))
    assert seen == ["0", str(frames - 1)]
    screenshot(card.page, "browser-scrub.png")
    image = big.evaluate("e => getComputedStyle(e).backgroundImage")
    assert "/soranb/media/thumbnails/" in image and "-sprites.jpg" in image, image
    loaded = card.page.evaluate(
        "src => new Promise(ok => { const i = new Image(); i.onload = () => ok(i.naturalWidth);"
        " i.onerror = () => ok(0); i.src = src; })",
        image[image.index("(") + 2 : image.rindex(")") - 1],
    )
    assert loaded > 0
    card.locator(".soranb-prompt-text").hover()
    big.wait_for(state="hidden", timeout=10_000)


def test_extend_a_video_from_its_card_and_play_it_with_sound(chromium: str, lab: tuple[LabServer, Path]) -> None:  # noqa: F811
    from playwright.sync_api import sync_playwright

    server, _data = lab
    with sync_playwright() as playwright:
        browser = launch(playwright, chromium)
        page = None
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            open_notebook(page, server.url("lab/tree/generate.ipynb"))
            run_all_cells(page)
            page.locator(".soranb-prompt textarea").wait_for(state="visible", timeout=VIDEO_READY_MS)
            wait_cells_done(page, 4)
            assert error_outputs(page) == []

            card = _generate(page, PROMPT)
            source = _wait_playable(card)
            assert source["error"] is None and source["readyState"] >= 2, source

            _assert_scrubs(card, SOURCE_SECONDS)  # the spritesheet strip follows the pointer

            card.locator("button.soranb-extend").click()
            field = card.locator(".soranb-action-text input")
            field.wait_for(state="visible", timeout=20_000)
            card.locator(".soranb-action-seconds select").select_option(label=f"+{ADDED_SECONDS} s")
            cost = card.locator(".soranb-action-cost")
            cost.filter(has_text="$0.40").wait_for(timeout=20_000)  # priced before Start: 4 s of sora-2
            field.fill(NEXT)
            card.locator("button.soranb-action-go").dblclick()  # a double-click is one extension

            extended = page.locator(".soranb-card").filter(has=page.locator(".soranb-lineage-source", has_text=PROMPT))
            extended.first.wait_for(state="visible", timeout=VIDEO_READY_MS)
            assert "extended from" in extended.first.locator(".soranb-lineage").inner_text()
            assert extended.first.locator(".soranb-prompt-text").inner_text() == NEXT
            info = _wait_playable(extended.first)
            assert info["error"] is None and info["readyState"] >= 2, info
            _wait_idle(page)  # both clicks handled
            assert extended.count() == 1

            video = extended.first.locator("video.soranb-player")
            video.scroll_into_view_if_needed()  # Chromium pauses a muted video that is out of sight
            played = _play_from(video, SOURCE_SECONDS + 0.5)  # into the added segment
            assert played["error"] is None and played["readyState"] >= 2, played
            assert played["duration"] == pytest.approx(SOURCE_SECONDS + ADDED_SECONDS, abs=0.2), played
            assert played["t"] > SOURCE_SECONDS + 0.5, played
            assert played["audio"] > 0 and played["audio"] > played["audio_before"], played  # the new part has sound
            screenshot(page, "browser-extend.png")
        except Exception:
            if page is not None:
                screenshot(page, "browser-extend-failure.png")
            print(server.log()[-6000:])
            raise
        finally:
            browser.close()
