"""The local store's own failure modes: a damaged file, an unusable folder, hostile keys."""

from __future__ import annotations

import pytest

from soranb.errors import StoreCorrupt, StoreUnavailable
from soranb.records import GenerationRecord
from soranb.store.base import RecordQuery, media_key
from soranb.store.local import LocalStore


async def test_a_corrupt_database_is_reported_and_left_untouched(tmp_path):
    store = LocalStore(tmp_path)
    await store.open()
    await store.insert(GenerationRecord(prompt="keep me", model="sora-2", size="1280x720", seconds=4))
    await store.close()
    damaged = b"this is not a database" * 100
    store.db_path.write_bytes(damaged)
    for suffix in ("-wal", "-shm"):
        store.db_path.with_name(store.db_path.name + suffix).unlink(missing_ok=True)

    with pytest.raises(StoreCorrupt) as caught:
        await LocalStore(tmp_path).open()
    assert "move it aside" in str(caught.value) and "soranb.db" in str(caught.value)
    assert store.db_path.read_bytes() == damaged


async def test_an_unusable_data_folder_names_the_setting(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(StoreUnavailable) as caught:
        await LocalStore(blocker / "data").open()
    assert "SORANB_DATA_DIR" in str(caught.value)


async def test_media_keys_never_escape_the_media_folder(tmp_path):
    store = LocalStore(tmp_path)
    await store.open()
    for hostile in ("../soranb.db", "/etc/passwd", "videos/../../x.mp4", "videos/a b.mp4", "other/x.mp4"):
        with pytest.raises(ValueError):
            store.local_path(hostile)
    assert media_key("videos", "abc") == "videos/abc.mp4"
    with pytest.raises(ValueError):
        media_key("images", "abc", "../png")
    await store.close()


async def test_two_stores_on_one_file_see_each_others_writes(tmp_path):
    first, second = LocalStore(tmp_path), LocalStore(tmp_path)
    await first.open()
    await second.open()
    record = await first.insert(GenerationRecord(prompt="shared", model="sora-2", size="1280x720", seconds=4))
    assert (await second.get(record.id)).prompt == "shared"
    await first.close()
    await second.close()


async def test_a_full_disk_a_read_only_file_and_damage_are_told_apart_by_error_code(tmp_path):
    """Real SQLite errors, classified by their code: only damage says 'move it aside'."""
    import sqlite3

    from soranb.errors import StoreWriteFailed

    store = LocalStore(tmp_path / "data")
    await store.open()
    await store.insert(GenerationRecord(prompt="keep me", model="sora-2", size="1280x720", seconds=4))

    full = sqlite3.connect(tmp_path / "full.db")
    full.execute("create table t (x text)")
    full.execute(f"pragma max_page_count = {full.execute('pragma page_count').fetchone()[0]}")
    with pytest.raises(sqlite3.DatabaseError) as disk_full:
        full.execute("insert into t values (?)", ("x" * 100_000,))
    readonly = sqlite3.connect(f"file:{tmp_path / 'full.db'}?mode=ro", uri=True)
    with pytest.raises(sqlite3.DatabaseError) as read_only:
        readonly.execute("insert into t values ('x')")
    (tmp_path / "junk.db").write_bytes(b"this is not a database" * 100)
    with pytest.raises(sqlite3.DatabaseError) as damaged:
        sqlite3.connect(tmp_path / "junk.db").execute("select * from sqlite_master")

    for caught, kind, words in (
        (disk_full, StoreWriteFailed, "the disk is full"),
        (read_only, StoreWriteFailed, "cannot be written"),
        (damaged, StoreCorrupt, "move it aside"),
    ):
        translated = store._translate(caught.value, opening=True)
        assert type(translated) is kind and words in str(translated)
        if kind is StoreWriteFailed:
            assert "damaged" not in str(translated) and "move it aside" not in str(translated)
    assert [r.prompt for r in await store.query(RecordQuery())] == ["keep me"]
    await store.close()


async def test_a_really_full_disk_is_called_full_never_damaged_and_nothing_is_lost(small_disk):
    from soranb.errors import StoreWriteFailed

    data = small_disk / "data"
    store = LocalStore(data)
    await store.open()
    await store.insert(GenerationRecord(prompt="keep me", model="sora-2", size="1280x720", seconds=4))
    filler = small_disk / "filler"
    with filler.open("wb") as out, pytest.raises(OSError):
        while True:
            out.write(b"\0" * 65536)
            out.flush()
    with pytest.raises(StoreWriteFailed) as caught:
        for i in range(200):
            await store.insert(
                GenerationRecord(prompt=f"more {i} " + "x" * 4000, model="sora-2", size="1280x720", seconds=4)
            )
    assert "disk is full" in str(caught.value) and "damaged" not in str(caught.value)
    await store.close()
    try:
        reopened = LocalStore(data)
        await reopened.open()  # a full disk at start-up is not damage either
        await reopened.close()
    except StoreWriteFailed as exc:
        assert "damaged" not in str(exc)
    filler.unlink()
    again = LocalStore(data)
    await again.open()
    assert "keep me" in [r.prompt for r in await again.query(RecordQuery())]
    await again.close()


async def test_a_database_made_by_the_first_release_is_upgraded_in_place(tmp_path):
    """`tests/data/soranb-0.1.0.db` was written by soranb 0.1.0 (main at 457ec68): one completed and
    one pending record. Opening it upgrades the table in place and keeps every row as it was."""
    import shutil
    import sqlite3
    from pathlib import Path

    from soranb.records import Status
    from soranb.store.local import _MIGRATIONS

    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(Path(__file__).parent / "data" / "soranb-0.1.0.db", data / "soranb.db")
    (data / "soranb.db").chmod(0o600)  # as its owner keeps it (a checkout under umask 002 makes it 664, refused)
    for _ in range(2):  # the second open finds nothing left to do
        store = LocalStore(data)
        await store.open()
        done = await store.get("11111111-1111-4111-8111-111111111111")
        assert done.status == Status.COMPLETED and done.prompt == "a fox from the first release"
        assert done.video_key == f"videos/{done.id}.mp4" and done.metadata["completed_at"] == 1
        waiting = await store.get("22222222-2222-4222-8222-222222222222")
        assert waiting.status == Status.PENDING and waiting.model == "sora-2-pro" and waiting.seconds == 8
        for record in (done, waiting):  # migration 1: tags, favourite and note read back with their defaults
            assert (record.tags, record.favourite, record.note) == ((), False, None)
        assert await store.check_schema() == []
        await store.close()
    version = sqlite3.connect(data / "soranb.db").execute("pragma user_version").fetchone()[0]
    assert version == len(_MIGRATIONS)


@pytest.mark.parametrize("how", ["emptied", "missing"])
async def test_an_empty_or_missing_database_beside_stored_videos_is_not_a_new_empty_history(tmp_path, how):
    """A zero-length (or deleted) soranb.db while media/ holds videos: opening it as an empty history
    would hide every video and let the next record start a history that no longer knows them."""
    store = LocalStore(tmp_path)
    await store.open()
    record = await store.insert(GenerationRecord(prompt="keep me", model="sora-2", size="1280x720", seconds=4))
    video = store.local_path(f"videos/{record.id}.mp4")
    video.write_bytes(b"a stored video")
    await store.close()
    for suffix in ("-wal", "-shm"):
        store.db_path.with_name(store.db_path.name + suffix).unlink(missing_ok=True)
    if how == "emptied":
        store.db_path.write_bytes(b"")
    else:
        store.db_path.unlink()

    with pytest.raises(StoreCorrupt) as caught:
        await LocalStore(tmp_path).open()
    message = str(caught.value)
    assert str(store.db_path) in message and str(store.media_dir / "videos") in message and "1 video" in message
    assert "backup" in message and "move" in message
    assert video.read_bytes() == b"a stored video"  # nothing touched: not the videos, not the file
    assert store.db_path.exists() == (how == "emptied") and (how == "missing" or store.db_path.stat().st_size == 0)


async def test_a_new_data_folder_and_one_without_videos_open_as_an_empty_history(tmp_path):
    (tmp_path / "old" / "media" / "videos").mkdir(parents=True)
    (tmp_path / "old" / "soranb.db").write_bytes(b"")
    for folder in (tmp_path / "new", tmp_path / "old"):
        store = LocalStore(folder)
        await store.open()
        assert await store.query(RecordQuery()) == []
        await store.close()
