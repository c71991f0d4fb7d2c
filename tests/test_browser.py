"""JupyterLab in Debian's Chromium: Run All on generate.ipynb, generate from the form, play the video.

This is the one test that sees what a person sees: the kernel, the widgets in the page, the soranb
server extension serving the MP4, and Chromium decoding it. It also proves that a prompt is shown
as text, never run as HTML.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import pytest
from labbrowser import (
    error_outputs,
    launch,
    open_notebook,
    require_chromium,
    run_all_cells,
    screenshot,
    wait_cells_done,
)
from labserver import LabServer, run_server

pytestmark = pytest.mark.browser

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
VIDEO_READY_MS = 90_000
PROMPT = "A lighthouse beam sweeping over a calm night sea"
HOSTILE_PROMPT = "<img src=x onerror=alert(1)>"
PLAYABLE = "v => v.readyState >= 2 && v.videoWidth > 0 && !v.error"


@pytest.fixture
def chromium() -> str:
    """Checked before the server starts: a skip (or a CI failure) costs nothing."""
    return require_chromium()


@pytest.fixture
def lab(tmp_path: Path) -> Any:
    """JupyterLab over a copy of notebooks/ with an offline, fast soranb in a temp data folder."""
    root = tmp_path / "root"
    shutil.copytree(NOTEBOOKS, root, ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    data = tmp_path / "data"
    env = {
        "SORANB_DATA_DIR": str(data),
        "SORANB_PROVIDER": "emulator",
        "SORANB_STORE": "local",
        "SORANB_EMULATOR_SPEED": "200",
    }
    with run_server(root, tmp_path / "server", env) as server:
        yield server, data


def _card(page: Any, prompt: str) -> Any:
    text = page.locator(".soranb-prompt-text").filter(has_text=prompt)
    return page.locator(".soranb-card").filter(has=text).first


def _generate(page: Any, prompt: str) -> Any:
    page.locator(".soranb-prompt textarea").fill(prompt)
    page.locator("button.soranb-generate").click()
    card = _card(page, prompt)
    card.wait_for(state="visible", timeout=VIDEO_READY_MS)
    return card


def _wait_playable(card: Any) -> dict[str, Any]:
    """Wait for the card's player, start it muted (as a person would press play), wait for frames."""
    video = card.locator("video.soranb-player")
    video.wait_for(state="attached", timeout=VIDEO_READY_MS)
    video.evaluate("v => { v.muted = true; return v.play().catch(() => null); }")
    video.element_handle().wait_for_element_state("visible", timeout=VIDEO_READY_MS)
    deadline = time.monotonic() + VIDEO_READY_MS / 1000
    while time.monotonic() < deadline:
        if video.evaluate(PLAYABLE):
            break
        time.sleep(0.25)
    info: dict[str, Any] = video.evaluate(
        "v => ({src: v.currentSrc, readyState: v.readyState, width: v.videoWidth, height: v.videoHeight,"
        " error: v.error && v.error.code})"
    )
    return info


def test_generate_notebook_in_jupyterlab(chromium: str, lab: tuple[LabServer, Path]) -> None:
    from playwright.sync_api import sync_playwright

    server, data = lab
    dialogs: list[str] = []
    with sync_playwright() as playwright:
        browser = launch(playwright, chromium)
        page = None
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
            open_notebook(page, server.url("lab/tree/generate.ipynb"))
            run_all_cells(page)
            page.locator(".soranb-prompt textarea").wait_for(state="visible", timeout=VIDEO_READY_MS)
            wait_cells_done(page, 4)  # set-up, app, batch, report (which waits for the batch)
            assert error_outputs(page) == []

            card = _generate(page, PROMPT)
            info = _wait_playable(card)
            assert info["error"] is None, info
            assert info["readyState"] >= 2 and info["width"] > 0, info
            assert (info["width"], info["height"]) == (1280, 720)
            assert "/soranb/media/videos/" in info["src"]  # served by the soranb server extension

            # Seeking needs byte ranges: the route answers 206 to the page's own (cookie) session.
            status = page.evaluate(
                "src => fetch(src, {headers: {Range: 'bytes=0-99'}}).then(r => r.status)", info["src"]
            )
            assert status == 206

            hostile = _generate(page, HOSTILE_PROMPT)
            hostile.locator(".soranb-prompt-text").filter(has_text=HOSTILE_PROMPT).wait_for(timeout=10_000)
            _wait_playable(hostile)
            assert page.locator("img[src='x']").count() == 0
            card.scroll_into_view_if_needed()
            screenshot(page, "browser-generate.png")
        except Exception:
            if page is not None:
                screenshot(page, "browser-generate-failure.png")
            print(server.log()[-6000:])
            raise
        finally:
            browser.close()
    assert dialogs == [], f"a prompt ran as HTML: {dialogs}"
    _assert_h264(data)


def _assert_h264(data: Path) -> None:
    """What the emulator renders is what Debian's Chromium decodes (H.264, not MPEG-4 Part 2)."""
    import av

    videos = sorted((data / "media" / "videos").glob("*.mp4"))
    assert len(videos) >= 5  # the batch of three and the two made from the form
    with av.open(str(videos[0])) as container:
        assert container.streams.video[0].codec_context.name == "h264"
