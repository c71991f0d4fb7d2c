"""JupyterLab in Debian's Chromium: Run All on generate.ipynb, generate from the form, play the video.

This is the one test that sees what a person sees: the kernel, the widgets in the page, the soranb
server extension serving the MP4, and Chromium decoding it. It also proves that a prompt is shown
as text, never run as HTML; that a playing video keeps playing while cards are inserted, deleted
and reloaded; that a double-click on Generate makes one job; that a card's remix keeps its source;
and that the exported report shows its thumbnails from disk with no server at all.
"""

from __future__ import annotations

import os
import shutil
import time
import urllib.parse
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
DOUBLE_PROMPT = "A hummingbird hovering at a red feeder"
OTHER_PROMPTS = ("Northern lights over a frozen lake", "Rain on a tin roof at night")


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


def _wait_idle(page: Any) -> None:
    from playwright.sync_api import expect

    expect(page.locator("#jp-main-statusbar")).to_contain_text("| Idle", timeout=VIDEO_READY_MS)


def _assert_keeps_playing(video: Any, rise_s: float = 0.5) -> None:
    """The same `<video>` element (our mark is still on it) is playing and its time moves on."""
    video.scroll_into_view_if_needed()  # Chromium pauses a muted video that is out of sight
    state = video.evaluate("v => ({mark: v.soranbWatched === true, paused: v.paused, t: v.currentTime})")
    assert state["mark"], "the watched <video> was replaced by a new element"
    assert not state["paused"], state
    start = state["t"]
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        now = video.evaluate("v => ({mark: v.soranbWatched === true, paused: v.paused, t: v.currentTime})")
        assert now["mark"] and not now["paused"], now
        if now["t"] > start + rise_s or now["t"] < start:  # moved on (or looped round)
            return
        time.sleep(0.1)
    raise AssertionError(f"the video stopped at {start:.2f} s")


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
            wait_cells_done(page, 6)  # set-up, app, parameters, price, batch, report (which waits for the batch)
            assert error_outputs(page) == []

            clicked = time.monotonic()
            card = _generate(page, PROMPT)
            info = _wait_playable(card)
            print(f"click to playable video: {time.monotonic() - clicked:.1f} s (emulator speed 200)")
            assert info["error"] is None, info
            assert info["readyState"] >= 2 and info["width"] > 0, info
            assert (info["width"], info["height"]) == (1280, 720)
            assert "/soranb/media/videos/" in info["src"]  # served by the soranb server extension

            # Seeking needs byte ranges: the route answers 206 to the page's own (cookie) session.
            status = page.evaluate(
                "src => fetch(src, {headers: {Range: 'bytes=0-99'}}).then(r => r.status)", info["src"]
            )
            assert status == 206

            # The video being watched keeps playing while the grid changes around it.
            video = card.locator("video.soranb-player")
            video.evaluate("v => { v.loop = true; v.soranbWatched = true; }")
            _assert_keeps_playing(video)

            hostile = _generate(page, HOSTILE_PROMPT)  # insert: a new card on top
            hostile.locator(".soranb-prompt-text").filter(has_text=HOSTILE_PROMPT).wait_for(timeout=10_000)
            _wait_playable(hostile)
            assert page.locator("img[src='x']").count() == 0
            _assert_keeps_playing(video)

            fox = _card(page, "A red fox trotting")  # delete: a card of the batch goes
            fox.locator("button", has_text="Delete").first.click()
            fox.locator("button", has_text="Confirm delete").click()
            page.locator(".soranb-card .soranb-prompt-text").filter(has_text="A red fox trotting").wait_for(
                state="detached", timeout=20_000
            )
            _assert_keeps_playing(video)

            page.locator("button.soranb-reload").first.click()  # Reload
            _wait_idle(page)
            _assert_keeps_playing(video)

            # One double-click on Generate is one job: the second click asks instead of spending.
            page.locator(".soranb-prompt textarea").fill(DOUBLE_PROMPT)
            page.locator("button.soranb-generate").dblclick()
            _card(page, DOUBLE_PROMPT).wait_for(state="visible", timeout=VIDEO_READY_MS)
            _wait_idle(page)  # both clicks handled
            assert page.locator(".soranb-card .soranb-prompt-text").filter(has_text=DOUBLE_PROMPT).count() == 1
            page.locator(".soranb-repeat-note").wait_for(state="visible", timeout=20_000)
            page.locator(".soranb-repeat button", has_text="Cancel").click()

            # A card's Remix opens a field on that card; its source stays that video while others finish.
            card.locator("button", has_text="Remix").first.click()
            field = card.locator(".soranb-remix-text input")
            field.wait_for(state="visible", timeout=20_000)
            page.wait_for_function(
                "() => document.activeElement && document.activeElement.closest('.soranb-remix-text') !== null",
                timeout=20_000,
            )
            field.fill("make it night")
            for prompt in OTHER_PROMPTS:  # other jobs finish and land on top meanwhile
                _wait_playable(_generate(page, prompt))
            _assert_keeps_playing(video)
            assert field.input_value() == "make it night"
            card.locator("button.soranb-remix-go").click()
            remix = page.locator(".soranb-card").filter(has=page.locator(".soranb-remix-source", has_text=PROMPT))
            remix.first.wait_for(state="visible", timeout=VIDEO_READY_MS)
            assert remix.first.locator(".soranb-prompt-text").inner_text() == "make it night"
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


def test_exported_report_shows_thumbnails_from_disk_without_a_server(chromium: str, tmp_path: Path) -> None:
    """Execute generate.ipynb, convert it to HTML, open that file in Chromium with no Jupyter running."""
    import subprocess
    import sys

    import nbformat
    from nbclient import NotebookClient
    from playwright.sync_api import sync_playwright

    nb = nbformat.read(NOTEBOOKS / "generate.ipynb", as_version=4)
    env = {
        **os.environ,
        "SORANB_DATA_DIR": str(tmp_path / "data"),
        "SORANB_PROVIDER": "emulator",
        "SORANB_STORE": "local",
        "SORANB_EMULATOR_SPEED": "200",
    }
    env.pop("OPENAI_API_KEY", None)
    client = NotebookClient(nb, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}})
    client.execute(env=env)
    executed = tmp_path / "generate.ipynb"
    nbformat.write(nb, executed)
    size = executed.stat().st_size
    print(f"executed generate.ipynb: {size:,} bytes")
    assert size < 1_000_000
    target = tmp_path / "generate.html"
    subprocess.run(
        [sys.executable, "-m", "nbconvert", "--to", "html", str(executed), "--output", str(target)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    with sync_playwright() as playwright:
        browser = launch(playwright, chromium)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(target.as_uri(), wait_until="load", timeout=60_000)
            thumbs = page.locator("img.soranb-thumb")
            page.wait_for_function(
                "() => [...document.querySelectorAll('img.soranb-thumb')].every(i => i.complete)", timeout=30_000
            )
            widths = thumbs.evaluate_all("imgs => imgs.map(i => i.naturalWidth)")
            print(f"report thumbnails loaded offline: {sum(w > 0 for w in widths)} of {len(widths)}")
            assert len(widths) >= 6  # three in the summary, three in the table
            assert all(w > 0 for w in widths), widths
            links = page.locator("a.soranb-download").evaluate_all("as => as.map(a => a.getAttribute('href'))")
            notes = page.locator(".soranb-download-note").all_inner_texts()
            screenshot(page, "report-offline.png")
        finally:
            browser.close()
    assert len(links) >= 3 and all(not link.startswith(("/", "file:")) for link in links), links
    for link in links:  # a path relative to the notebook that reaches the stored video
        assert (NOTEBOOKS / urllib.parse.unquote(link)).resolve().is_file(), link
    assert notes and all("author's machine" in note for note in notes)
