"""The emulator's newer endpoints and its strictness, as a client of the Videos API sees them:
extensions, edits, characters, JSON input references, dated snapshots, 16/20 s and 1080p, and the
400s that name an unknown parameter, a wrong type or a wrong content type."""

from __future__ import annotations

import base64
import io
from typing import Any

import av
import httpx2
import openai
import pytest
import test_emulator
from PIL import Image, ImageChops, ImageStat

from soranb.catalog import MODELS, SECONDS, estimate_cost
from soranb.emulator import EMULATOR_BASE_URL, EmulatorTransport

BLOCKED = test_emulator.BLOCKED
MakeEmu = test_emulator.MakeEmu
make_emu = test_emulator.make_emu  # the in-process emulator fixture, shared
image_bytes = test_emulator.image_bytes
AUTH = {"Authorization": "Bearer sk-test"}


def streams(data: bytes) -> dict[str, Any]:
    """What a player finds in an MP4: its video size and length, its audio codec, the first frame."""
    with av.open(io.BytesIO(data)) as container:
        video = container.streams.video[0]
        frames = list(container.decode(video=0))
        audio = [s.codec_context.name for s in container.streams.audio]
        return {
            "size": f"{video.width}x{video.height}",
            "frames": len(frames),
            "audio": audio,
            "first": frames[0].to_image(),
            "last": frames[-1].to_image(),
        }


def difference(a: Image.Image, b: Image.Image) -> float:
    """Mean absolute pixel difference (0..255) of two frames: re-encoding moves it by a little only."""
    return sum(ImageStat.Stat(ImageChops.difference(a.convert("RGB"), b.convert("RGB"))).mean) / 3


async def raw(emu: test_emulator.Emu, method: str, path: str, **kwargs: Any) -> httpx2.Response:
    async with httpx2.AsyncClient(transport=EmulatorTransport(emu.app), base_url=EMULATOR_BASE_URL) as http:
        return await http.request(method, path, headers={**AUTH, **kwargs.pop("headers", {})}, **kwargs)


async def completed(emu: test_emulator.Emu, prompt: str = "a lighthouse", **args: Any) -> Any:
    video = await emu.client.videos.create(prompt=prompt, size=args.pop("size", "1280x720"), seconds="4", **args)
    return await emu.finish(video.id)


# -- extensions and edits ------------------------------------------------------------------------


async def test_an_extension_is_the_source_followed_by_a_new_segment(make_emu: MakeEmu) -> None:
    emu = await make_emu()
    source = await completed(emu, "a red fox in snow")
    answer = await raw(
        emu, "POST", "/videos/extensions", json={"prompt": "it runs off", "seconds": "8", "video": {"id": source.id}}
    )
    assert answer.status_code == 200, answer.text
    extended = answer.json()
    assert (extended["status"], extended["seconds"], extended["size"]) == ("queued", "12", "1280x720")
    video = await emu.finish(extended["id"])
    data = (await emu.client.videos.download_content(video.id)).content
    found = streams(data)
    assert found["frames"] == 12 * 24  # the stitched whole: 4 s of source, then 8 s new
    source_first = streams((await emu.client.videos.download_content(source.id)).content)["first"]
    assert difference(found["first"], source_first) < 4  # it starts with the source's frames
    assert difference(found["last"], source_first) > 4
    assert not (emu.state.table.media_dir(video.id) / "source.mp4").exists()  # the copy goes once rendered


async def test_extend_and_edit_through_the_sdk_with_an_uploaded_video(make_emu: MakeEmu) -> None:
    emu = await make_emu()
    source = await completed(emu)
    mp4 = (await emu.client.videos.download_content(source.id)).content
    extended = await emu.client.videos.extend(prompt="more", seconds="4", video=("clip.mp4", mp4, "video/mp4"))
    assert (extended.seconds, extended.size) == ("8", "1280x720")
    edited = await emu.client.videos.edit(prompt="make it night", video=("clip.mp4", mp4, "video/mp4"))
    assert (edited.seconds, edited.prompt) == ("4", "make it night")
    video = await emu.finish(edited.id)
    found = streams((await emu.client.videos.download_content(video.id)).content)
    assert found["frames"] == 4 * 24
    assert list(emu.state.uploads_dir.iterdir()) == []  # an uploaded source is not kept twice


async def test_an_edit_by_id_shows_the_edit_on_the_source(make_emu: MakeEmu) -> None:
    emu = await make_emu()
    source = await completed(emu, "a quiet harbour")
    answer = await raw(emu, "POST", "/videos/edits", json={"prompt": "add fireworks", "video": {"id": source.id}})
    assert answer.status_code == 200, answer.text
    video = await emu.finish(answer.json()["id"])
    edited = streams((await emu.client.videos.download_content(video.id)).content)["first"]
    original = streams((await emu.client.videos.download_content(source.id)).content)["first"]
    assert edited.size == original.size
    assert 0.3 < difference(edited, original) < 40  # the same picture, with the edit drawn in


async def test_only_a_completed_video_can_be_extended_or_edited(make_emu: MakeEmu) -> None:
    emu = await make_emu()
    running = await emu.client.videos.create(prompt="still going", size="1280x720")
    for path, extra in (("/videos/extensions", {"seconds": "4"}), ("/videos/edits", {})):
        answer = await raw(emu, "POST", path, json={"prompt": "p", "video": {"id": running.id}, **extra})
        assert answer.status_code == 400
        assert answer.json()["error"]["code"] == "invalid_state"
    missing = await raw(emu, "POST", "/videos/edits", json={"prompt": "p", "video": {"id": "video_" + "0" * 48}})
    assert missing.status_code == 404
    not_a_video = await raw(
        emu, "POST", "/videos/edits", files={"video": ("x.mp4", b"not a video")}, data={"prompt": "p"}
    )
    assert not_a_video.status_code == 400
    assert not_a_video.json()["error"]["param"] == "video"


async def test_extension_seconds_come_from_the_catalog(make_emu: MakeEmu) -> None:
    emu = await make_emu()
    source = await completed(emu)
    for seconds, status in (("20", 200), ("5", 400)):
        answer = await raw(
            emu, "POST", "/videos/extensions", json={"prompt": "p", "seconds": seconds, "video": {"id": source.id}}
        )
        assert answer.status_code == status, answer.text
    no_seconds = await raw(emu, "POST", "/videos/extensions", json={"prompt": "p", "video": {"id": source.id}})
    assert no_seconds.json()["error"]["param"] == "seconds"


# -- characters ------------------------------------------------------------------------------------


async def test_characters_are_created_fetched_and_shown_in_a_video(make_emu: MakeEmu) -> None:
    emu = await make_emu()
    source = await completed(emu)
    mp4 = (await emu.client.videos.download_content(source.id)).content
    character = await emu.client.videos.create_character(name="Captain Nova", video=("nova.mp4", mp4, "video/mp4"))
    assert character.name == "Captain Nova" and character.id and character.created_at
    fetched = await emu.client.videos.get_character(character.id)
    assert (fetched.id, fetched.name) == (character.id, "Captain Nova")

    plain = await completed(emu, "a hero lands")
    featured = await emu.client.videos.create(
        prompt="a hero lands", size="1280x720", seconds="4", extra_body={"characters": [{"id": character.id}]}
    )
    video = await emu.finish(featured.id)
    with_name = streams((await emu.client.videos.download_content(video.id)).content)["first"]
    without = streams((await emu.client.videos.download_content(plain.id)).content)["first"]
    assert difference(with_name, without) > 0.3  # the name is drawn in
    assert emu.state.table.get(video.id).characters == ("Captain Nova",)  # type: ignore[union-attr]


async def test_unknown_characters_and_bad_uploads_are_refused(make_emu: MakeEmu) -> None:
    emu = await make_emu()
    with pytest.raises(openai.NotFoundError):
        await emu.client.videos.get_character("char_" + "0" * 32)
    with pytest.raises(openai.NotFoundError):
        await emu.client.videos.get_character("../../jobs")
    with pytest.raises(openai.BadRequestError) as caught:
        await emu.client.videos.create_character(name="x", video=("x.mp4", b"not a video", "video/mp4"))
    assert caught.value.param == "video"
    with pytest.raises(openai.BadRequestError) as caught:
        await emu.client.videos.create(prompt="p", extra_body={"characters": [{"id": "char_" + "1" * 32}]})
    assert caught.value.param == "characters[0].id"
    three = [{"id": "char_" + "1" * 32}] * 3
    with pytest.raises(openai.BadRequestError) as caught:
        await emu.client.videos.create(prompt="p", extra_body={"characters": three})
    assert caught.value.param == "characters"


# -- strict like the API ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ({"prompt": "p", "seconds": 8}, "seconds", "invalid_type"),
        ({"prompt": "p", "fps": 60}, "fps", "unknown_parameter"),
        ({"prompt": 5}, "prompt", "invalid_type"),
        ({"prompt": "p", "input_reference": {"url": "x"}}, "input_reference.url", "unknown_parameter"),
        ({"prompt": "p", "characters": {"id": "x"}}, "characters", "invalid_type"),
    ],
)
async def test_unknown_or_wrongly_typed_parameters_are_named(
    make_emu: MakeEmu, body: dict[str, Any], param: str, code: str
) -> None:
    emu = await make_emu()
    answer = await raw(emu, "POST", "/videos", json=body)
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert (error["param"], error["code"]) == (param, code)
    assert f"'{param}'" in error["message"]
    assert emu.state.table.all() == []


async def test_sdk_extra_body_and_integer_seconds_are_refused(make_emu: MakeEmu) -> None:
    emu = await make_emu()
    with pytest.raises(openai.BadRequestError) as caught:
        await emu.client.videos.create(prompt="p", extra_body={"fps": 60})
    assert caught.value.param == "fps" and "Unknown parameter: 'fps'" in caught.value.message
    with pytest.raises(openai.BadRequestError) as caught:
        await emu.client.videos.remix("video_" + "0" * 48, prompt="p", extra_body={"seconds": "8"})
    assert (caught.value.param, caught.value.code) == ("seconds", "unknown_parameter")


async def test_a_wrong_content_type_says_so(make_emu: MakeEmu) -> None:
    emu = await make_emu()
    text = await raw(emu, "POST", "/videos", content=b"prompt=p", headers={"Content-Type": "text/plain"})
    assert text.status_code == 400
    assert "Content-Type" in text.json()["error"]["message"] and "text/plain" in text.json()["error"]["message"]
    form = await raw(emu, "POST", "/videos", data={"prompt": "p"})  # httpx sends form-urlencoded
    assert form.status_code == 400
    assert "urlencoded" in form.json()["error"]["message"]
    multipart_remix = await raw(emu, "POST", f"/videos/video_{'0' * 48}/remix", files={"prompt": (None, "p")})
    assert multipart_remix.status_code in (400, 404)
    assert emu.state.table.all() == []


async def test_every_response_carries_a_request_id(make_emu: MakeEmu) -> None:
    emu = await make_emu()
    listed = await emu.client.videos.with_raw_response.list()
    assert listed.headers["x-request-id"].startswith("req_")
    with pytest.raises(openai.NotFoundError) as caught:
        await emu.client.videos.retrieve("video_" + "0" * 48)
    assert caught.value.request_id and caught.value.request_id.startswith("req_")
    video = await emu.client.videos.create(prompt="p")
    assert video._request_id and video._request_id != caught.value.request_id  # type: ignore[attr-defined]
    unauthorised = await raw(emu, "GET", "/videos", headers={"Authorization": ""})
    assert unauthorised.status_code == 401 and unauthorised.headers["x-request-id"].startswith("req_")


async def test_the_old_paths_no_longer_answer_405(make_emu: MakeEmu) -> None:
    emu = await make_emu()
    for path in ("/videos/extensions", "/videos/edits", "/videos/characters"):
        answer = await raw(emu, "POST", path, json={})
        assert answer.status_code == 400, (path, answer.status_code)
        assert answer.json()["error"]["code"] in ("missing_required_parameter", "unsupported_content_type")


# -- sizes, lengths, snapshots, references -------------------------------------------------------------


async def test_16_and_20_seconds_and_1080p_for_sora_2_pro(make_emu: MakeEmu) -> None:
    emu = await make_emu()
    assert {16, 20} <= set(SECONDS)
    assert {"1920x1080", "1080x1920"} <= set(MODELS["sora-2-pro"].sizes)
    assert "1920x1080" not in MODELS["sora-2"].sizes
    assert estimate_cost("sora-2-pro", "1920x1080", 20) > estimate_cost("sora-2-pro", "1792x1024", 20)
    long = await emu.client.videos.create(prompt=BLOCKED, model="sora-2-pro", size="1920x1080", seconds="20")  # type: ignore[arg-type]
    assert (long.size, long.seconds) == ("1920x1080", "20")
    with pytest.raises(openai.BadRequestError) as caught:
        await emu.client.videos.create(prompt=BLOCKED, model="sora-2", size="1920x1080")  # type: ignore[arg-type]
    assert caught.value.param == "size"


async def test_a_20_second_1080p_video_renders_with_sound(make_emu: MakeEmu) -> None:
    emu = await make_emu()
    video = await emu.client.videos.create(prompt="a long shot", model="sora-2-pro", size="1080x1920", seconds="16")  # type: ignore[arg-type]
    video = await emu.finish(video.id)
    found = streams((await emu.client.videos.download_content(video.id)).content)
    assert (found["size"], found["frames"], found["audio"]) == ("1080x1920", 16 * 24, ["aac"])


@pytest.mark.parametrize("snapshot", ["sora-2-2025-10-06", "sora-2-pro-2025-10-06", "sora-2-2025-12-08"])
async def test_dated_snapshots_are_accepted_and_echoed(make_emu: MakeEmu, snapshot: str) -> None:
    emu = await make_emu()
    video = await emu.client.videos.create(prompt=BLOCKED, model=snapshot, size="1280x720")
    assert video.model == snapshot
    assert (await emu.client.videos.retrieve(video.id)).model == snapshot


async def test_input_reference_as_a_data_url_or_a_file_id(make_emu: MakeEmu) -> None:
    emu = await make_emu()
    png = image_bytes((1280, 720), color=(10, 200, 10))
    data_url = "data:image/png;base64," + base64.b64encode(png).decode()
    answer = await raw(
        emu, "POST", "/videos", json={"prompt": "p", "size": "1280x720", "input_reference": {"image_url": data_url}}
    )
    assert answer.status_code == 200, answer.text
    uploaded = await emu.client.files.create(file=("start.png", png, "image/png"), purpose="vision")
    answer = await raw(
        emu, "POST", "/videos", json={"prompt": "p", "size": "1280x720", "input_reference": {"file_id": uploaded.id}}
    )
    assert answer.status_code == 200, answer.text
    video = await emu.finish(answer.json()["id"])
    first = streams((await emu.client.videos.download_content(video.id)).content)["first"]
    red, green, blue = first.resize((1, 1)).getpixel((0, 0))  # type: ignore[misc]
    assert green > red and green > blue  # the green reference is the backdrop


async def test_an_https_image_url_is_never_fetched(make_emu: MakeEmu, monkeypatch: pytest.MonkeyPatch) -> None:
    emu = await make_emu()
    fetched: list[str] = []
    monkeypatch.setattr("socket.create_connection", lambda *a, **k: fetched.append(str(a)))
    monkeypatch.setattr("socket.getaddrinfo", lambda *a, **k: fetched.append(str(a)) or [])
    body = {"prompt": "p", "size": "1280x720", "input_reference": {"image_url": "https://169.254.169.254/latest/a.png"}}
    answer = await raw(emu, "POST", "/videos", json=body)
    assert answer.status_code == 400
    assert answer.json()["error"]["param"] == "input_reference.image_url"
    assert "could not be downloaded" in answer.json()["error"]["message"]
    assert fetched == []
    for bad in ("file:///etc/passwd", "http://127.0.0.1/a.png", "data:image/png,notbase64"):
        answer = await raw(emu, "POST", "/videos", json={**body, "input_reference": {"image_url": bad}})
        assert answer.status_code == 400, bad
    missing = await raw(emu, "POST", "/videos", json={**body, "input_reference": {"file_id": "file-" + "0" * 32}})
    assert missing.json()["error"]["param"] == "input_reference.file_id"
    assert emu.state.table.all() == []
