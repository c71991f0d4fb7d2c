"""Every method of the official SDK's `client.videos` (sync and async), against the emulator served by uvicorn
on 127.0.0.1, as an outside client would use it; plus the Files upload that `input_reference={"file_id"}`
names and the webhook signature check. One scenario, run through both clients."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import av
import httpx2
import openai
import pytest
import test_emulator_server
from PIL import Image
from test_emulator_server import Served

served = test_emulator_server.served  # the uvicorn fixture, shared


def png(size: tuple[int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (30, 90, 200)).save(buffer, format="PNG")
    return buffer.getvalue()


def mp4_facts(data: bytes) -> tuple[str, float, list[str]]:
    with av.open(io.BytesIO(data)) as container:
        video = container.streams.video[0]
        assert container.duration is not None
        return (
            f"{video.width}x{video.height}",
            round(container.duration / av.time_base),
            [s.codec_context.name for s in container.streams.audio],
        )


@pytest.fixture(params=["sync", "async"])
def client(request: pytest.FixtureRequest, served: Served) -> Iterator[tuple[Any, Callable[[Any], Any]]]:
    """(client, run): `run(x)` returns a sync call's result, or runs an async call's coroutine to its end."""
    if request.param == "sync":
        sdk = openai.OpenAI(
            base_url=served.base_url, api_key="sk-test", http_client=httpx2.Client(timeout=30), max_retries=0
        )
        yield sdk, lambda value: value
        sdk.close()
        return
    loop = asyncio.new_event_loop()
    asdk = openai.AsyncOpenAI(
        base_url=served.base_url, api_key="sk-test", http_client=httpx2.AsyncClient(timeout=30), max_retries=0
    )
    yield asdk, loop.run_until_complete
    loop.run_until_complete(asdk.close())
    loop.close()


def test_every_videos_method(client: tuple[Any, Callable[[Any], Any]], tmp_path: Path) -> None:
    sdk, run = client
    videos = sdk.videos

    # create (multipart, with a file), retrieve, poll, create_and_poll
    created = run(
        videos.create(
            prompt="a blue room", size="1280x720", seconds="4", input_reference=("a.png", png((1280, 720)), "image/png")
        )
    )
    assert (created.object, created.size, created.seconds) == ("video", "1280x720", "4")
    assert created.status in ("queued", "in_progress")  # the served emulator runs at 5000x
    assert created._request_id.startswith("req_")
    assert run(videos.retrieve(created.id)).id == created.id
    done = run(videos.poll(created.id))
    assert (done.status, done.progress) == ("completed", 100)
    other = run(videos.create_and_poll(prompt="a dated snapshot", model="sora-2-2025-12-08", size="720x1280"))
    assert (other.status, other.model) == ("completed", "sora-2-2025-12-08")

    # list with cursors
    page = run(videos.list(limit=1, order="asc"))
    assert [v.id for v in page.data] == [created.id] and page.has_more
    assert [v.id for v in run(videos.list(after=created.id, order="asc")).data] == [other.id]

    # the three download variants, buffered and streamed
    data = run(videos.download_content(done.id)).content
    assert mp4_facts(data) == ("1280x720", 4, ["aac"])
    assert run(videos.download_content(done.id, variant="thumbnail")).content[8:12] == b"WEBP"
    assert run(videos.download_content(done.id, variant="spritesheet")).content[:2] == b"\xff\xd8"
    raw = run(videos.with_raw_response.retrieve(done.id))
    assert raw.headers["x-request-id"].startswith("req_")

    # remix, extend and edit (the SDK sends the source video as a file), characters
    remix = run(videos.remix(done.id, prompt="the same room, at night"))
    assert remix.remixed_from_video_id == done.id
    extended = run(videos.extend(prompt="the camera pulls back", seconds="4", video=("src.mp4", data, "video/mp4")))
    assert (extended.seconds, extended.size) == ("8", "1280x720")
    edited = run(videos.edit(prompt="paint it red", video=("src.mp4", data, "video/mp4")))
    assert (edited.seconds, edited.prompt) == ("4", "paint it red")
    character = run(videos.create_character(name="Nova", video=("nova.mp4", data, "video/mp4")))
    assert character.name == "Nova" and character.created_at > 0
    assert run(videos.get_character(character.id)).name == "Nova"
    featured = run(
        videos.create(prompt="Nova waves", size="1280x720", extra_body={"characters": [{"id": character.id}]})
    )
    extended = run(videos.poll(extended.id))
    assert mp4_facts(run(videos.download_content(extended.id)).content) == ("1280x720", 8, ["aac"])

    # the JSON shapes the SDK's typed methods cannot send yet: by id, and input_reference as an object
    by_id = run(
        sdk.post(
            "/videos/extensions",
            body={"prompt": "on", "seconds": "4", "video": {"id": done.id}},
            cast_to=openai.types.Video,
        )
    )
    assert by_id.seconds == "8"
    run(sdk.post("/videos/edits", body={"prompt": "blur", "video": {"id": done.id}}, cast_to=openai.types.Video))
    uploaded = run(sdk.files.create(file=("start.png", png((1280, 720)), "image/png"), purpose="vision"))
    from_file = run(
        sdk.post(
            "/videos",
            body={"prompt": "from a file id", "size": "1280x720", "input_reference": {"file_id": uploaded.id}},
            cast_to=openai.types.Video,
        )
    )
    assert from_file.status in ("queued", "in_progress")

    # errors carry the API's shape and a request id
    with pytest.raises(openai.BadRequestError) as caught:
        run(videos.create(prompt="p", extra_body={"fps": 60}))
    assert caught.value.param == "fps" and caught.value.request_id
    with pytest.raises(openai.NotFoundError):
        run(videos.get_character("char_" + "0" * 32))

    # delete
    for video in (featured, remix, edited, from_file):
        run(videos.poll(video.id))
    deleted = run(videos.delete(featured.id))
    assert (deleted.id, deleted.object, deleted.deleted) == (featured.id, "video.deleted", True)
    with pytest.raises(openai.NotFoundError):
        run(videos.retrieve(featured.id))


def test_streamed_download_sync_and_async(served: Served, tmp_path: Path) -> None:
    with openai.OpenAI(base_url=served.base_url, api_key="sk-test", http_client=httpx2.Client(), max_retries=0) as sdk:
        video = sdk.videos.create_and_poll(prompt="streamed", size="1280x720")
        with sdk.videos.with_streaming_response.download_content(video.id) as response:
            response.stream_to_file(tmp_path / "sync.mp4")

    async def streamed() -> None:
        async with (
            openai.AsyncOpenAI(
                base_url=served.base_url, api_key="sk-test", http_client=httpx2.AsyncClient(), max_retries=0
            ) as asdk,
            asdk.videos.with_streaming_response.download_content(video.id) as response,
        ):
            await response.stream_to_file(tmp_path / "async.mp4")

    asyncio.run(streamed())
    assert (tmp_path / "sync.mp4").read_bytes() == (tmp_path / "async.mp4").read_bytes()
    assert mp4_facts((tmp_path / "sync.mp4").read_bytes()) == ("1280x720", 4, ["aac"])
