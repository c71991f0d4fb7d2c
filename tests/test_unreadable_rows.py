"""One damaged row never stops the history: it becomes a failed record that says why, shows as an
error card, can be deleted, and `list`, the grid and `generate` keep working."""

from __future__ import annotations

import asyncio
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
    "progress that is text": "update video_generations set progress = 'half' where id = ?",
    "created_at that is a number": "update video_generations set created_at = 5 where id = ?",
    "tags that is no JSON": "update video_generations set tags = '[oops' where id = ?",
    "a note that is a blob": "update video_generations set note = x'00ff' where id = ?",
}
NOT_UTF8 = "update video_generations set prompt = cast(x'66ff6f' as text) where id = ?"  # as a scribbled page leaves it


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


async def _read_every_way(data_dir: Path) -> dict[str, Any]:
    """What each read of the store API gives on a folder with one damaged row."""
    from soranb.store.local import LocalStore

    store = LocalStore(data_dir)
    await store.open()
    try:
        listed = await store.query(RecordQuery(limit=100))
        return {
            "listed": {r.id: r for r in listed},
            "count": await store.count(RecordQuery()),
            "search": [r.id for r in await store.query(RecordQuery(search="CLIP"))],
            "tagged": [r.id for r in await store.query(RecordQuery(tags=frozenset({"kept"})))],
            "open": [r.id for r in await store.query(RecordQuery(statuses=frozenset({Status.PENDING})))],
            "get": {r.id: await store.get(r.id) for r in listed},
        }
    finally:
        await store.close()


@pytest.mark.parametrize("damage", ["prompt that is not UTF-8", *DAMAGE])
def test_every_read_of_the_local_store_survives_one_damaged_row(tmp_path, damage) -> None:
    good, bad = insert_records(tmp_path, make_records(2, tags=("kept",)))
    _damage(tmp_path, bad.id, {**DAMAGE, "prompt that is not UTF-8": NOT_UTF8}[damage])

    read = asyncio.run(_read_every_way(tmp_path))
    assert read["listed"][good.id] == good and read["get"][good.id] == good
    assert read["count"] == 2 and good.id in read["search"] and good.id in read["tagged"]
    for broken in (read["listed"][bad.id], read["get"][bad.id]):
        assert broken.is_unreadable and broken.status == Status.FAILED and broken.id == bad.id
        assert all(isinstance(getattr(broken, name), str) for name in ("prompt", "model", "size"))
        assert isinstance(broken.progress, int) and broken.created_at.tzinfo is not None
        assert broken.note is None or isinstance(broken.note, str)


def test_a_prompt_that_is_not_utf8_is_one_error_row_for_every_command(cli_env, settings, capsys, monkeypatch) -> None:
    """The issue's damage exactly: a scribbled page leaves a prompt that is not UTF-8. Before, `list`,
    `generate`, `wait`, `budget` and `report` all failed with "Could not decode to UTF-8"."""
    good, bad = insert_records(settings.data_dir, make_records(2))
    _damage(settings.data_dir, bad.id, NOT_UTF8)
    monkeypatch.setenv("SORANB_DATA_DIR", str(settings.data_dir))

    def run(*argv: str) -> str:
        code = main(list(argv))
        out, err = capsys.readouterr()
        assert code == 0, err
        assert "decode" not in err
        return out

    listed = {r["id"]: r for r in json.loads(run("list", "--json"))}
    assert set(listed) == {good.id, bad.id} and listed[good.id]["prompt"] == good.prompt
    assert listed[bad.id]["status"] == "failed" and "not valid UTF-8" in listed[bad.id]["error_message"]
    assert listed[bad.id]["prompt"] == "f\ufffdo"  # what could be read is shown, the bad byte marked
    assert bad.id in run("list")
    made = json.loads(run("generate", "still works", "--seconds", "4", "--json"))
    assert [r["id"] for r in json.loads(run("wait", "--json"))] == [made["id"]]
    assert json.loads(run("list", "--json", "--status", "completed"))[0]["id"] == made["id"]
    assert json.loads(run("budget", "--json"))["spent_usd"] is not None
    run("report", str(cli_env / "report.html"))
    page = (cli_env / "report.html").read_text(encoding="utf-8")
    assert good.prompt in page and "still works" in page and "not valid UTF-8" in page
    run("delete", bad.id)  # and the damaged row can be removed
    assert bad.id not in {r["id"] for r in json.loads(run("list", "--json"))}
