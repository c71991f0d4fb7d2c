"""One damaged row never stops the history: it becomes a failed record that says why, shows as an
error card, can be deleted, and `list`, the grid and `generate` keep working."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from widget_helpers import finish, insert_records, make_records

from soranb.cli import main
from soranb.records import Status
from soranb.request import GenerationRequest
from soranb.store.base import RecordQuery
from soranb.store.supabase import _from_row as supabase_row
from soranb.widgets import HistoryGrid, Toasts, app

# (An unknown status breaks the SQLite table's CHECK constraint: opening such a file reports it as
# damaged and changes nothing; on Supabase an unknown status is a row like any other, tested below.)
DAMAGE = {
    "video key that is no key": "update video_generations set video_key = '../../../etc/passwd' where id = ?",
    "seconds that is no number": "update video_generations set seconds = 'eight' where id = ?",
    "metadata that is no JSON": "update video_generations set metadata = '{not json' where id = ?",
    "metadata that is a list": "update video_generations set metadata = '[1, 2]' where id = ?",
}


def _damage(data_dir: Path, record_id: str, sql: str) -> None:
    with sqlite3.connect(data_dir / "soranb.db") as conn:
        conn.execute(sql, (record_id,))


@pytest.mark.parametrize("damage", DAMAGE)
def test_a_damaged_local_row_is_an_error_card_and_the_rest_still_works(
    service, settings, damage, capsys, monkeypatch, tmp_path
) -> None:
    good, bad = insert_records(settings.data_dir, make_records(2))
    _damage(settings.data_dir, bad.id, DAMAGE[damage])

    listed = {r.id: r for r in service.list_records()}
    assert set(listed) == {good.id, bad.id}
    assert listed[good.id] == good
    broken = listed[bad.id]
    assert broken.status == Status.FAILED and broken.is_unreadable
    assert broken.prompt == bad.prompt  # what could be read is still shown
    assert "could not be read" in (broken.error_message or "")
    assert broken.video_key is None  # nothing of it becomes a path or a URL

    grid = HistoryGrid(service, toasts=Toasts(dismiss_after=None))
    assert grid.card(bad.id) is not None
    assert "could not be read" in grid._static_html()
    view = app(service)  # the whole app builds
    view.close()

    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "SUPABASE_URL", "SORANB_PROVIDER", "SORANB_STORE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SORANB_DATA_DIR", str(settings.data_dir))
    assert main(["list", "--json"]) == 0, capsys.readouterr().err
    printed = json.loads(capsys.readouterr().out)
    assert {r["id"] for r in printed} == {good.id, bad.id}

    record = service.generate(GenerationRequest("still works", seconds=4))
    assert finish(service, record.id).status == Status.COMPLETED

    service.delete(bad.id)  # the damaged row can still be removed
    assert bad.id not in {r.id for r in service.list_records(RecordQuery(limit=100))}
    grid.close()


ROW: dict[str, Any] = {
    "id": "0b7c1f0e-5d7a-4c55-9a3e-2f6f5c1d9e01",
    "prompt": "a fox",
    "model": "sora-2",
    "size": "1280x720",
    "seconds": 8,
    "status": "completed",
    "progress": 100,
    "openai_job_id": "video_1",
    "video_url": "videos/0b7c1f0e-5d7a-4c55-9a3e-2f6f5c1d9e01.mp4",
    "thumbnail_url": None,
    "image_url": None,
    "image_filename": None,
    "error_message": None,
    "remixed_from": None,
    "metadata": {},
    "created_at": "2026-01-10T09:00:00+00:00",
    "updated_at": "2026-01-10T09:00:00+00:00",
    "tags": [],
    "favourite": False,
    "note": None,
    "lineage": None,  # 20261126090100_add_lineage.sql
}


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"status": "queued"}, "queued"),
        ({"video_url": "::not a url or key::"}, "video_url"),
        ({"image_url": "javascript:alert(1)"}, "image_url"),
        ({"seconds": None}, "int"),
        ({"metadata": "oops"}, "metadata"),
        ({"seconds": "__drop__"}, "missing column seconds"),
    ],
)
def test_a_damaged_supabase_row_becomes_a_failed_record_that_says_why(change: dict[str, Any], says: str) -> None:
    row = {**ROW, **change}
    row = {k: v for k, v in row.items() if v != "__drop__"}
    record = supabase_row(row)
    assert record.status == Status.FAILED and record.is_unreadable
    assert record.id == ROW["id"] and record.prompt == "a fox"
    assert says in (record.error_message or "")
    assert (record.video_key, record.image_key) == (None, None)
    good = supabase_row(ROW)
    assert not good.is_unreadable and good.video_key == ROW["video_url"]
    legacy = supabase_row({**ROW, "video_url": "https://old.example/v.mp4"})
    assert not legacy.is_unreadable  # an older app's full URL is still played as it is
