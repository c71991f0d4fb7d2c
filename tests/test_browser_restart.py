"""After a kernel restart, the views left on the page say at once that they are disconnected.

JupyterLab's widget manager marks every view of the old kernel `jupyter-widgets-disconnected` when
the kernel restarts; soranb's stylesheet turns that into a sentence on each soranb view, before any
cell runs again (the set-up cell's `restart_note` only speaks once it is re-run).
"""

from __future__ import annotations

from typing import Any

import pytest
from labbrowser import error_outputs, launch, open_notebook, run_all_cells, screenshot, wait_cells_done
from test_browser import chromium, lab  # noqa: F401 - the same server and browser as the main browser test

pytestmark = pytest.mark.browser

NOTICE = """el => getComputedStyle(el, '::before').content"""


def test_views_of_a_restarted_kernel_say_they_are_disconnected(chromium: str, lab: Any) -> None:  # noqa: F811
    from playwright.sync_api import expect, sync_playwright

    server, _data = lab
    with sync_playwright() as playwright:
        browser = launch(playwright, chromium)
        page = None
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            open_notebook(page, server.url("lab/tree/generate.ipynb"))
            run_all_cells(page)
            wait_cells_done(page, 4)
            assert error_outputs(page) == []
            app = page.locator(".soranb-app").first
            assert "Disconnected" not in app.evaluate(NOTICE)  # a live view says nothing

            page.locator(".lm-MenuBar-itemLabel:text-is('Kernel')").click()
            page.locator(".lm-Menu-itemLabel:text-is('Restart Kernel…')").click()
            page.locator(".jp-Dialog button", has_text="Restart").click()
            expect(page.locator(".soranb-app.jupyter-widgets-disconnected").first).to_be_attached(timeout=60_000)

            assert "Disconnected: this view belongs to a kernel that was restarted" in app.evaluate(NOTICE)
            nested = page.locator(".soranb-app .soranb-history").first  # one notice per app, not one per part
            assert nested.evaluate(NOTICE) == "none"
            assert float(app.evaluate("el => getComputedStyle(el.firstElementChild).opacity")) < 1  # controls fade
            app.evaluate("el => el.scrollIntoView({block: 'start'})")  # the notice is on top
            screenshot(page, "browser-restart-disconnected.png")
        except Exception:
            if page is not None:
                screenshot(page, "browser-restart-failure.png")
            print(server.log()[-6000:])
            raise
        finally:
            browser.close()
