"""JupyterLab in Debian's Chromium: a 2x2 variation grid from generate.ipynb, then a synced compare.

What only a browser can show: the grid's cost is on screen before Start, its four cells play their
videos, and the compare view's one Play, seek bar and Pause drive both picked videos together
(`paused` and `currentTime` read from the two `<video>` elements themselves).
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
READY_MS = 120_000
PROMPTS = "A kite over a windy beach\nA tram crossing a bridge in the rain"
TOLERANCE_S = 0.3  # two videos seeked together agree within about one timeupdate


@pytest.fixture
def chromium() -> str:
    return require_chromium()


@pytest.fixture
def lab(tmp_path: Path) -> Any:
    root = tmp_path / "root"
    shutil.copytree(NOTEBOOKS, root, ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    env = {
        "SORANB_DATA_DIR": str(tmp_path / "data"),
        "SORANB_PROVIDER": "emulator",
        "SORANB_STORE": "local",
        "SORANB_EMULATOR_SPEED": "200",
    }
    with run_server(root, tmp_path / "server", env) as server:
        yield server


def _wait(page: Any, script: str, arg: Any = None) -> None:
    page.wait_for_function(script, arg=arg, timeout=READY_MS)


def _state(page: Any) -> list[dict[str, Any]]:
    """Both compared videos, read in one go."""
    state: list[dict[str, Any]] = page.locator(".soranb-compare-video").evaluate_all(
        "vs => vs.map(v => ({paused: v.paused, t: v.currentTime, ready: v.readyState, error: v.error && v.error.code}))"
    )
    return state


def _build_grid(page: Any) -> Any:
    grid = page.locator(".soranb-variation-grid")
    grid.scroll_into_view_if_needed()
    prompts = grid.locator(".soranb-vary-prompts textarea")
    prompts.fill(PROMPTS)
    prompts.blur()  # the field sends its value when it loses focus
    grid.locator(".soranb-vary-models select").select_option(label=["Sora 2 (fast)", "Sora 2 Pro (high quality)"])
    cost = grid.locator(".soranb-vary-cost-text")
    # 2 prompts x 2 models, 4 s: sora-2 $0.40 and pro $1.20, twice; shown before anything starts
    cost.filter(has_text="Start costs $3.20").wait_for(timeout=READY_MS)
    assert "4 video(s)" in cost.inner_text()
    assert grid.locator(".soranb-grid-cell").count() == 0
    grid.locator("button.soranb-vary-start").click()
    return grid


def test_a_2x2_grid_and_a_synced_compare(chromium: str, lab: LabServer) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch(playwright, chromium)
        page = None
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            open_notebook(page, lab.url("lab/tree/generate.ipynb"))
            run_all_cells(page)
            page.locator(".soranb-variation-grid .soranb-vary-prompts textarea").wait_for(timeout=READY_MS)
            wait_cells_done(page, 7)  # every cell, the grid's last
            assert error_outputs(page) == []

            grid = _build_grid(page)
            _wait(page, "() => document.querySelectorAll('.soranb-grid-cell').length === 4")
            heads = grid.locator(".soranb-grid-column").all_inner_texts()
            assert heads == ["sora-2", "sora-2-pro"]
            assert grid.locator(".soranb-grid-row").all_inner_texts() == PROMPTS.splitlines()
            _wait(page, "() => document.querySelectorAll('.soranb-grid-cell video.soranb-player').length === 4")
            _wait(page, "() => [...document.querySelectorAll('.soranb-grid-cell video')].every(v => v.readyState >= 1)")

            picks = grid.locator(".soranb-compare-pick input[type=checkbox]")
            picks.nth(0).check()
            picks.nth(3).check()
            compare = grid.locator("button.soranb-vary-compare")
            compare.filter(has_text="Compare 2").wait_for(timeout=READY_MS)
            compare.click()
            view = page.locator(".soranb-compare")
            view.wait_for(timeout=READY_MS)
            view.scroll_into_view_if_needed()  # Chromium may pause a muted video out of sight
            _wait(page, "() => document.querySelectorAll('.soranb-compare-video').length === 2")
            _wait(page, "() => [...document.querySelectorAll('.soranb-compare-video')].every(v => v.readyState >= 2)")
            assert "A kite over a windy beach" in view.locator(".soranb-diff").inner_text()
            assert all(not v["error"] and v["paused"] for v in _state(page))

            view.locator(".soranb-compare-toggle").click()  # one Play for both
            _wait(page, "() => [...document.querySelectorAll('.soranb-compare-video')].every(v => !v.paused)")
            _wait(page, "() => [...document.querySelectorAll('.soranb-compare-video')].every(v => v.currentTime > 0.2)")

            seek = view.locator(".soranb-compare-seek")
            seek.evaluate("s => { s.value = '1.5'; s.dispatchEvent(new Event('input', {bubbles: true})); }")
            _wait(page, "() => [...document.querySelectorAll('.soranb-compare-video')].every(v => !v.seeking)")
            first, second = _state(page)
            assert abs(first["t"] - second["t"]) < TOLERANCE_S, (first, second)
            assert 1.4 <= first["t"] < 3.5, first  # the seek reached both, and they play on from there

            view.locator(".soranb-compare-toggle").click()  # one Pause for both
            _wait(page, "() => [...document.querySelectorAll('.soranb-compare-video')].every(v => v.paused)")
            time.sleep(0.3)  # paused videos stay where they stopped, together
            first, second = _state(page)
            assert first["paused"] and second["paused"]
            assert abs(first["t"] - second["t"]) < TOLERANCE_S, (first, second)
            screenshot(page, "variation-grid-compare.png")
        except BaseException:
            if page is not None:
                screenshot(page, "variation-grid-compare-failure.png")
            print(lab.log()[-4000:])
            raise
        finally:
            browser.close()
