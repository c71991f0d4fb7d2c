"""The service's extend, edit and characters on the in-process emulator: what a user keeps in the store."""

from __future__ import annotations

import base64
import io
import sqlite3
from pathlib import Path

import av
import pytest
from PIL import Image
from widget_helpers import finish

from soranb.errors import JobNotFound, ModelRetired, RequestInvalid
from soranb.records import GenerationRecord, Status, parse_lineage
from soranb.request import GenerationRequest
from soranb.store.base import RecordQuery
from soranb.store.local import LocalStore


def video_facts(service, record: GenerationRecord) -> tuple[str, int, list[str]]:
    path = service.media_path(record.video_key)
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        assert container.duration is not None
        audio = [s.codec_context.name for s in container.streams.audio]
        return f"{video.width}x{video.height}", round(container.duration / av.time_base), audio


def completed(service, prompt: str = "a red fox in snow") -> GenerationRecord:
    record = service.generate(GenerationRequest(prompt, "sora-2", "1280x720", 4))
    return finish(service, record.id)


def test_extend_makes_a_longer_video_that_remembers_its_source(service) -> None:
    source = completed(service)
    record = service.extend(source.id, "it runs into the forest", 8)
    assert (record.status, record.seconds, record.lineage) == (Status.PROCESSING, 12, f"extend:{source.id}")
    done = finish(service, record.id)
    assert done.status == Status.COMPLETED
    assert video_facts(service, done) == ("1280x720", 12, ["aac"])
    stored = service.list_records()
    assert {r.id: r.lineage for r in stored}[record.id] == f"extend:{source.id}"
    assert parse_lineage(done.lineage) == ("extend", source.id)


def test_edit_keeps_the_length_and_says_what_it_was_made_from(service) -> None:
    source = completed(service)
    done = finish(service, service.edit(source.id, "make it night").id)
    assert (done.status, done.seconds, done.lineage) == (Status.COMPLETED, 4, f"edit:{source.id}")
    assert video_facts(service, done)[:2] == ("1280x720", 4)


def test_only_a_completed_video_can_be_extended_and_seconds_come_from_the_catalog(service) -> None:
    running = service.generate(GenerationRequest("still rendering", "sora-2", "1280x720", 4))
    with pytest.raises(RequestInvalid, match="only a completed video"):
        service.extend(running.id, "more", 4)
    source = completed(service)
    with pytest.raises(RequestInvalid, match="adds 4, 8, 12, 16, 20 seconds"):
        service.extend(source.id, "more", 5)
    assert len(service.list_records()) == 2  # nothing stored for a refused request


def test_characters_are_made_shown_and_featured(service, tmp_path: Path) -> None:
    source = completed(service)
    character = service.create_character("Captain Nova", service.media_path(source.video_key))
    assert character.name == "Captain Nova" and character.id.startswith("char_")
    assert service.get_character(character.id) == character
    record = service.generate(GenerationRequest("Nova lands", "sora-2", "1280x720", 4, characters=(character.id,)))
    done = finish(service, record.id)
    assert done.status == Status.COMPLETED and done.metadata["characters"] == [character.id]
    with pytest.raises(RequestInvalid, match="not a file"):
        service.create_character("x", tmp_path / "missing.mp4")


def test_looking_up_an_unknown_character_says_it_is_not_found_not_that_the_api_is_retired(service) -> None:
    missing = "char_" + "0" * 32
    with pytest.raises(JobNotFound, match=f"character {missing} not found") as raised:
        service.get_character(missing)
    assert not isinstance(raised.value, ModelRetired) and "retired" not in str(raised.value)


def test_an_unknown_character_fails_the_record_with_the_providers_reason(service) -> None:
    with pytest.raises(Exception, match="no character with id"):
        service.generate(GenerationRequest("p", "sora-2", "1280x720", 4, characters=("char_" + "0" * 32,)))
    (record,) = service.list_records()
    assert record.status == Status.FAILED and "no character" in (record.error_message or "")


def test_a_starting_image_as_a_data_url(service) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (1280, 720), (10, 200, 10)).save(buffer, format="PNG")
    url = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
    done = finish(service, service.generate(GenerationRequest("green", "sora-2", "1280x720", 4, image_url=url)).id)
    assert done.status == Status.COMPLETED
    with pytest.raises(RequestInvalid, match="https"):
        service.generate(GenerationRequest("p", "sora-2", "1280x720", 4, image_url="file:///etc/passwd"))


def test_a_request_that_gets_no_answer_is_never_left_for_the_poller(service, monkeypatch) -> None:
    """The poller would re-send a pending extension as a plain create (a different, billed video)."""
    from soranb.errors import ProviderUnreachable

    source = completed(service)

    async def no_answer(*args, **kwargs):
        raise ProviderUnreachable("no answer from the emulator")

    monkeypatch.setattr(service.provider, "_create_call", no_answer)
    record = service.extend(source.id, "lost", 4)
    assert record.status == Status.FAILED and "could not be sent" in (record.error_message or "")
    monkeypatch.undo()
    service.poll_once()
    jobs = service._run(service.provider.list_page(limit=50))
    assert len(jobs.jobs) == 1  # only the source: nothing was created for the lost extension


def test_a_poll_step_between_storing_and_sending_an_extension_leaves_it_to_its_call(service, monkeypatch) -> None:
    """The poller ends a `submit_once` record left pending by a stopped process; one that a call of this
    service has just stored and is about to send is not that, and must be sent, once."""
    source = completed(service)
    count = service.store.count
    stepped: list[bool] = []

    async def count_after_a_step(query: RecordQuery) -> int:
        if not stepped:  # the background poller's step lands right after the insert
            stepped.append(True)
            await service.runner.step()
        return await count(query)

    monkeypatch.setattr(service.store, "count", count_after_a_step)
    record = service.extend(source.id, "it runs into the forest", 4)
    assert stepped and record.status == Status.PROCESSING
    assert len(service._run(service.provider.list_page(limit=50)).jobs) == 2  # the source and the extension


def test_lineage_survives_in_the_local_store_and_a_damaged_one_is_refused(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "data")
    record = GenerationRecord(prompt="p", model="sora-2", size="1280x720", seconds=8, lineage="extend:abc-123")

    async def go() -> list[GenerationRecord]:
        await store.open()
        await store.insert(record)
        with sqlite3.connect(store.db_path) as conn:
            conn.execute("update video_generations set lineage = '../../etc' where id = ?", (record.id,))
        rows = await store.query(RecordQuery())
        await store.close()
        return rows

    import asyncio

    (read,) = asyncio.run(go())
    assert read.is_unreadable and "lineage" in (read.error_message or "")


def test_a_starting_image_file_and_a_character_together(service) -> None:
    from soranb.request import ImageInput

    source = completed(service)
    character = service.create_character("Nova", service.media_path(source.video_key))
    buffer = io.BytesIO()
    Image.new("RGB", (1280, 720), (200, 20, 20)).save(buffer, format="PNG")
    request = GenerationRequest(
        "Nova in red",
        "sora-2",
        "1280x720",
        4,
        image=ImageInput("red.png", buffer.getvalue()),
        characters=(character.id,),
    )
    done = finish(service, service.generate(request).id)
    assert done.status == Status.COMPLETED and done.image_key
    emulated = service.provider.emulator.table.get(done.openai_job_id)  # what the provider was sent
    assert emulated.characters == ("Nova",) and emulated.reference is not None
