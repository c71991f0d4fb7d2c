"""The local store's own failure modes: a damaged file, an unusable folder, hostile keys."""

from __future__ import annotations

import pytest

from soranb.errors import StoreCorrupt, StoreUnavailable
from soranb.records import GenerationRecord
from soranb.store.base import media_key
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
            store.media_path(hostile)
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
