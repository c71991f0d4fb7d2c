"""Tags, favourites and notes: set from code and the CLI, kept by the store, used as filters."""

from __future__ import annotations

import json

import pytest
from engine_helpers import FOX

from soranb.cli import main
from soranb.errors import RequestInvalid
from soranb.events import ServiceEvent
from soranb.records import GenerationRecord
from soranb.store.base import RecordQuery


async def _stored(service, prompt: str) -> GenerationRecord:
    return await service.store.insert(GenerationRecord(prompt, "sora-2", "1280x720", 4))


def test_tag_untag_favourite_and_note_from_code(service):
    record = service._run(_stored(service, "a fox"))
    events: list[ServiceEvent] = []
    service.subscribe(events.append)
    tagged = service.tag(record.id, "  night   shots ", "fox", "fox")
    assert tagged.tags == ("night shots", "fox")
    assert service.untag(record.id, "fox", "never there").tags == ("night shots",)
    assert service.set_favourite(record.id).favourite is True
    assert service.set_note(record.id, "  the best light so far ").note == "the best light so far"
    assert service.set_note(record.id, "").note is None
    assert [e.kind for e in events] == ["updated"] * 5  # views refresh the one card
    assert service.get(record.id).tags == ("night shots",) and service.get(record.id).favourite
    assert [r.id for r in service.list_records(RecordQuery(tags=frozenset({"night shots"}), favourite=True))] == [
        record.id
    ]


@pytest.mark.parametrize("bad", ["", "-leading", "a,b", "x" * 41, "bell\x07", "<script>"])
def test_a_bad_tag_is_refused_saying_what_a_tag_may_be(service, bad):
    record = service._run(_stored(service, "a fox"))
    with pytest.raises(RequestInvalid, match="letters, digits, spaces"):
        service.tag(record.id, bad)
    assert service.get(record.id).tags == ()


def test_a_note_too_long_is_refused_and_the_old_one_kept(service):
    record = service._run(_stored(service, "a fox"))
    service.set_note(record.id, "keep me")
    with pytest.raises(RequestInvalid, match="shorten it to 2,000"):
        service.set_note(record.id, "x" * 2001)
    assert service.get(record.id).note == "keep me"


def test_tag_favourite_note_and_list_filters_from_the_cli(cli_env, capsys):
    ids = []
    for prompt in ("a fox at dawn", "a wolf at night"):
        assert main(["generate", prompt, "--json"]) == 0
        ids.append(json.loads(capsys.readouterr().out)["id"])
    fox, wolf = ids
    assert main(["tag", fox, "fox", "dawn"]) == 0
    assert "tags: fox, dawn" in capsys.readouterr().out
    assert main(["tag", wolf, "night"]) == 0 and main(["favourite", wolf]) == 0
    assert main(["note", wolf, "use this one"]) == 0
    out = capsys.readouterr().out
    assert "★ favourite" in out and "note: use this one" in out
    assert main(["untag", fox, "dawn"]) == 0
    capsys.readouterr()

    def listed(*argv: str) -> list[str]:
        assert main(["list", "--json", *argv]) == 0
        return [r["prompt"] for r in json.loads(capsys.readouterr().out)]

    assert listed("--tag", "fox") == ["a fox at dawn"]
    assert listed("--tag", "dawn") == []
    assert listed("--favourite") == ["a wolf at night"]
    assert listed("--favourite", "--tag", "fox") == []
    assert main(["list", "--json"]) == 0
    rows = {r["prompt"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["a wolf at night"]["tags"] == ["night"] and rows["a wolf at night"]["note"] == "use this one"
    assert main(["favourite", wolf, "--off"]) == 0
    capsys.readouterr()
    assert listed("--favourite") == []

    assert main(["tag", fox, "a,b"]) == 2
    assert "not allowed" in capsys.readouterr().err
    assert main(["tag", "00000000-0000-4000-8000-000000000000", "fox"]) == 1
    assert "no record" in capsys.readouterr().err


def test_tags_survive_the_generation_finishing(make_service):
    """The poller writes status and progress only: a tag set while the job runs is kept."""
    from engine_helpers import drive

    service = make_service()
    record = service.generate(FOX)
    service.tag(record.id, "keeper")
    drive(service)
    done = service.get(record.id)
    assert done.status.value == "completed" and done.tags == ("keeper",)
