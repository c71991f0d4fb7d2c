"""Drive JupyterLab in Debian's Chromium through Playwright: launch, open, Run All, wait.

Why these waits: the status bar's "| Idle" appears only once the kernel is really ready (the
execution indicator says idle earlier, and Run All then does nothing), and the Run menu is the
one way to run every cell that does not depend on focus or keyboard layout.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("SORANB_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
KERNEL_READY_MS = 90_000
CELLS_DONE_MS = 90_000


def require_chromium() -> str:
    """Chromium's path; fails the test on CI (CI installs it), else skips with the reason."""
    found = CHROMIUM if os.access(CHROMIUM, os.X_OK) else shutil.which("chromium")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        found, reason = None, "the Python package playwright is not installed"
    else:
        reason = f"Chromium not found at {CHROMIUM} (apt-get install chromium)"
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail(reason + " — CI must provide it")
        pytest.skip(reason)
    return found


def launch(playwright: Any, executable: str) -> Any:
    return playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)


def open_notebook(page: Any, url: str) -> None:
    """Open a notebook and wait until its kernel is idle (ready for Run All)."""
    from playwright.sync_api import expect

    page.goto(url, wait_until="domcontentloaded", timeout=60_000)
    expect(page.locator("#jp-main-statusbar")).to_contain_text("| Idle", timeout=KERNEL_READY_MS)


def run_all_cells(page: Any) -> None:
    page.locator(".lm-MenuBar-itemLabel:text-is('Run')").click()
    page.locator(".lm-Menu-itemLabel:text-is('Run All Cells')").click()


def wait_cells_done(page: Any, count: int) -> None:
    """Wait until the first `count` code cells show an execution count (not "[*]")."""
    page.wait_for_function(
        """count => {
            const prompts = [...document.querySelectorAll(
                '.jp-Notebook .jp-CodeCell .jp-InputArea-prompt')].map(p => p.textContent.trim());
            return prompts.length >= count && prompts.slice(0, count).every(t => /^\\[\\d+\\]:$/.test(t));
        }""",
        arg=count,
        timeout=CELLS_DONE_MS,
    )


def error_outputs(page: Any) -> list[str]:
    """Tracebacks shown in the notebook (a cell that raised)."""
    texts: list[str] = page.locator(
        ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']"
    ).all_inner_texts()
    return [t for t in texts if "Traceback" in t or "Error" in t]


def screenshot(page: Any, name: str) -> Path:
    folder = Path(__file__).resolve().parent.parent / "artifacts"
    folder.mkdir(exist_ok=True)
    path = folder / name
    page.screenshot(path=str(path), full_page=False)
    return path
