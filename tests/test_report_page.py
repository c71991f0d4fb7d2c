"""`soranb report OUT.html`: a static page from the store that reads offline in Chromium."""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import unquote

from labbrowser import launch, require_chromium

from soranb.cli import main
from soranb.records import GenerationRecord
from soranb.report import esc
from soranb.report_page import data_uri_thumbnail, report_page_html, video_link
from soranb.request import GenerationRequest

HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)> & "quotes"'


def _generate(capsys, prompt: str) -> dict:
    assert main(["generate", prompt, "--wait", "--json", "--timeout", "120"]) == 0
    return json.loads(capsys.readouterr().out)


def test_report_reads_offline_in_chromium_with_every_thumbnail_shown(cli_env, capsys):
    chromium = require_chromium()
    fox = _generate(capsys, "a red fox running through snow")
    hostile = _generate(capsys, HOSTILE)
    _generate(capsys, "an untagged lake")
    assert main(["tag", fox["id"], "keep"]) == 0 and main(["tag", hostile["id"], "keep"]) == 0
    assert main(["note", fox["id"], "<b>best</b> light"]) == 0 and main(["favourite", fox["id"]]) == 0
    capsys.readouterr()
    (cli_env / "shared").mkdir()
    out = cli_env / "shared" / "report.html"  # a folder away from the data: links must still reach the videos
    assert main(["report", str(out), "--tag", "keep"]) == 0
    assert "2 record(s)" in capsys.readouterr().out

    html = out.read_text()
    assert "<script" not in html and "onerror=alert" not in html.replace("onerror=alert(1)&gt;", "")
    assert "&lt;script&gt;" in html and "&lt;b&gt;best&lt;/b&gt; light" in html and "untagged lake" not in html
    assert html.count("data:image/jpeg;base64,") == 2 and "file:" not in html
    links = re.findall(r'class="soranb-video-link" href="([^"]+)"', html)
    assert len(links) == 2 and all((out.parent / unquote(link)).resolve().is_file() for link in links)

    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = launch(p, chromium)
        try:
            page = browser.new_page()
            dialogs: list[str] = []
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            page.goto(out.resolve().as_uri(), wait_until="load")
            loaded = "imgs => imgs.map(i => i.complete && i.naturalWidth)"
            widths = page.eval_on_selector_all("img.soranb-thumb", loaded)
            assert len(widths) == 2 and all(w > 0 for w in widths), widths
            texts = page.eval_on_selector_all(".soranb-prompt-text", "els => els.map(e => e.textContent)")
            assert HOSTILE in texts  # shown as text, never run
            assert page.locator(".soranb-favourite").count() == 1
            assert page.locator(".soranb-tag", has_text="keep").count() == 2
            href = page.eval_on_selector("a.soranb-video-link", "a => a.href")
            assert href.startswith("file://") and Path(unquote(href.removeprefix("file://"))).is_file()
            assert dialogs == []
        finally:
            browser.close()


def test_report_filters_and_bad_input(cli_env, capsys):
    _generate(capsys, "a quiet street at dusk")
    out = cli_env / "r.html"
    assert main(["report", str(out), "--since", "2999-01-01"]) == 0
    assert "No generations match" in out.read_text() and "since 2999-01-01" in out.read_text()
    assert main(["report", str(out), "--since", "last tuesday"]) == 2
    assert "use YYYY-MM-DD" in capsys.readouterr().err
    assert main(["report", str(cli_env / "missing" / "r.html")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_a_damaged_thumbnail_becomes_a_placeholder_and_odd_links_are_dropped():
    assert data_uri_thumbnail(b"not an image") is None
    record = GenerationRecord("p", "sora-2", "1280x720", 4, video_key="videos/x.mp4", thumbnail_key="thumbnails/x.webp")
    for url in ("javascript:alert(1)", "java\tscript:alert(1)", "file:///etc/passwd", "data:text/html,x"):
        assert video_link(url) is None
        html = report_page_html([record], thumbnails={record.id: None}, link_for=lambda r, u=url: u)
        assert "soranb-video-link" not in html and "soranb-thumb-empty" in html
    fake = {record.id: "data:text/html;base64,PHNjcmlwdD4="}  # only soranb's own JPEG data URIs are used
    assert "data:text/html" not in report_page_html([record], thumbnails=fake, link_for=lambda r: None)


def test_a_variation_grid_is_laid_out_by_the_settings_it_varied(make_service, tmp_path):
    """`service.vary` of two prompts (one hostile) x two lengths: the report shows a 2 x 2 grid, lengths
    across, prompts down, each cell the video's thumbnail; the prompt headers are text."""
    from engine_helpers import drive

    from soranb.report_page import write_report
    from soranb.store.base import RecordQuery

    service = make_service()
    service.generate(GenerationRequest("not in a grid"))
    service.vary(["a fox", HOSTILE], seconds=[4, 8], key="two by two")
    drive(service)
    out = tmp_path / "report.html"
    assert write_report(service, out, RecordQuery()) == 5
    html = out.read_text()
    (grid,) = re.findall(r'<table class="soranb-variation-grid">(.*?)</table>', html, re.S)
    assert "Variation grid two by two: seconds across" in html
    head, *rows = re.findall(r"<tr>(.*?)</tr>", grid, re.S)
    assert re.findall(r"<th>(.*?)</th>", head) == ["prompt", "4 s", "8 s"]
    assert [re.findall(r"<th>(.*?)</th>", row)[0] for row in rows] == ["a fox", esc(HOSTILE)]
    assert all(row.count('<img class="soranb-thumb" src="data:image/jpeg;base64,') == 2 for row in rows)
    assert "<script>" not in html
