"""The emulator through the official SDK, in-process: shapes, statuses, media, errors and faults."""

from __future__ import annotations

import asyncio
import io
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import httpx2
import openai
import pytest
from PIL import Image

from soranb.emulator import (
    EMULATOR_BASE_URL,
    IN_PROCESS_SPEED,
    EmulatorConfig,
    EmulatorTransport,
    create_app,
)
from soranb.emulator.app import EmulatorState

ID_PATTERN = re.compile(r"^video_[0-9a-f]{48}$")
BLOCKED = "moderation-test"  # a prompt with it never renders: cheap jobs for list and paging tests


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, start: float = 1_900_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Emu:
    app: Any
    client: openai.AsyncOpenAI
    clock: FakeClock
    config: EmulatorConfig

    @property
    def state(self) -> EmulatorState:
        emulator: EmulatorState = self.app.state.emulator
        return emulator

    def duration(self, video_id: str) -> float:
        job = self.state.table.get(video_id)
        assert job is not None
        return job.duration

    async def renders_done(self) -> None:
        await asyncio.to_thread(self.state.table.wait_for_renders)

    async def finish(self, video_id: str) -> Any:
        """Move the clock past the job's end and wait for its render: the job is then completed."""
        self.clock.advance(self.duration(video_id) + 1)
        await self.client.videos.retrieve(video_id)  # a look starts a render that is not running yet
        await self.renders_done()
        video = await self.client.videos.retrieve(video_id)
        assert video.status == "completed", video
        return video


MakeEmu = Callable[..., Awaitable[Emu]]


@pytest.fixture
async def make_emu(tmp_path: Path) -> AsyncIterator[MakeEmu]:
    opened: list[Emu] = []

    async def make(client_key: str = "sk-test-key", max_retries: int = 0, **overrides: Any) -> Emu:
        clock = overrides.pop("clock", None) or FakeClock()
        overrides.setdefault("state_dir", tmp_path / "state")
        overrides.setdefault("seed", 7)
        config = EmulatorConfig(clock=clock, **overrides)
        app = create_app(config)
        http = httpx2.AsyncClient(transport=EmulatorTransport(app))
        client = openai.AsyncOpenAI(
            base_url=EMULATOR_BASE_URL, api_key=client_key, http_client=http, max_retries=max_retries
        )
        emu = Emu(app, client, clock, config)
        opened.append(emu)
        return emu

    yield make
    for emu in opened:
        await emu.client.close()
        emu.state.close()


def image_bytes(size: tuple[int, int], fmt: str = "PNG", color: tuple[int, int, int] = (220, 20, 20)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format=fmt)
    return buffer.getvalue()


def probe_mp4(data: bytes) -> dict[str, Any]:
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        frames = list(container.decode(stream))
        assert container.duration is not None
        return {
            "codec": stream.codec_context.name,
            "width": stream.width,
            "height": stream.height,
            "pix_fmt": stream.format.name,
            "duration": container.duration / av.time_base,
            "frames": len(frames),
            "first": frames[0].to_image(),
        }


# -- create, retrieve, content -------------------------------------------------------------------


async def test_create_retrieve_and_download_every_variant(make_emu: MakeEmu) -> None:
    emu = await make_emu()
    video = await emu.client.videos.create(prompt="a lighthouse in a storm", size="1280x720", seconds="4")
    assert ID_PATTERN.match(video.id)
    assert (video.object, video.status, video.progress) == ("video", "queued", 0)
    assert (video.model, video.size, video.seconds, video.prompt) == ("sora-2", "1280x720", "4", video.prompt)
    assert video.created_at == int(emu.clock.now)
    assert video.completed_at is None and video.expires_at is None and video.error is None

    assert (await emu.client.videos.retrieve(video.id)).id == video.id
    done = await emu.finish(video.id)
    assert done.progress == 100
    assert done.completed_at is not None and done.expires_at == done.completed_at + 3600

    content = await emu.client.videos.download_content(video.id)
    assert content.response.headers["content-type"] == "video/mp4"
    assert int(content.response.headers["content-length"]) == len(content.content)
    mp4 = probe_mp4(content.content)
    assert (mp4["codec"], mp4["width"], mp4["height"], mp4["pix_fmt"]) == ("h264", 1280, 720, "yuv420p")
    assert mp4["duration"] == pytest.approx(4.0, abs=0.1)
    assert mp4["frames"] == 4 * 24
    assert content.content.index(b"moov") < content.content.index(b"mdat")  # faststart: streamable

    thumbnail = await emu.client.videos.download_content(video.id, variant="thumbnail")
    assert thumbnail.response.headers["content-type"] == "image/webp"
    assert Image.open(io.BytesIO(thumbnail.content)).format == "WEBP"
    sheet = await emu.client.videos.download_content(video.id, variant="spritesheet")
    assert sheet.response.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(sheet.content)).format == "JPEG"


async def test_input_reference_becomes_the_backdrop(make_emu: MakeEmu) -> None:
    emu = await make_emu()
    reference = ("ref.png", image_bytes((720, 1280)), "image/png")
    video = await emu.client.videos.create(prompt="red room", size="720x1280", input_reference=reference)
    assert video.status == "queued"
    await emu.finish(video.id)
    mp4 = probe_mp4((await emu.client.videos.download_content(video.id)).content)
    assert (mp4["width"], mp4["height"]) == (720, 1280)
    red, green, blue = mp4["first"].getpixel((20, 900))
    assert red > 150 and green < 80 and blue < 80  # the reference shows through


@pytest.mark.parametrize("fmt", ["JPEG", "WEBP"])
async def test_input_reference_formats(make_emu: MakeEmu, fmt: str) -> None:
    emu = await make_emu()
    emu.state.table.ensure_render = lambda job: None  # type: ignore[method-assign]  # no media needed
    reference = ("ref", image_bytes((1280, 720), fmt), f"image/{fmt.lower()}")
    video = await emu.client.videos.create(prompt="p", size="1280x720", input_reference=reference)
    assert video.status == "queued"


async def test_input_reference_of_the_wrong_size_or_kind_is_rejected(make_emu: MakeEmu) -> None:
    emu = await make_emu()
    wrong = ("ref.png", image_bytes((1024, 1024)), "image/png")
    with pytest.raises(openai.BadRequestError) as caught:
        await emu.client.videos.create(prompt="p", size="720x1280", input_reference=wrong)
    assert caught.value.param == "input_reference"
    assert "1024x1024" in caught.value.message and "720x1280" in caught.value.message
    gif = ("ref.gif", image_bytes((720, 1280), "GIF"), "image/gif")
    with pytest.raises(openai.BadRequestError) as caught:
        await emu.client.videos.create(prompt="p", size="720x1280", input_reference=gif)
    assert caught.value.param == "input_reference"
    with pytest.raises(openai.BadRequestError):
        await emu.client.videos.create(prompt="p", input_reference=("x.png", b"not an image", "image/png"))
    assert emu.state.table.all() == []


@pytest.mark.parametrize(
    ("overrides", "param"),
    [
        ({"model": "sora-3"}, "model"),
        ({"model": "sora-2", "size": "1792x1024"}, "size"),
        ({"size": "640x480"}, "size"),
        ({"seconds": "5"}, "seconds"),
        ({"prompt": ""}, "prompt"),
        ({"prompt": "x" * 32_001}, "prompt"),
    ],
)
async def test_validation_errors_name_the_param(make_emu: MakeEmu, overrides: dict[str, str], param: str) -> None:
    emu = await make_emu()
    request = {"prompt": "a valid prompt", **overrides}
    with pytest.raises(openai.BadRequestError) as caught:
        await emu.client.videos.create(**request)  # type: ignore[arg-type]
    assert caught.value.status_code == 400
    assert caught.value.param == param
    assert caught.value.type == "invalid_request_error"
    assert emu.state.table.all() == []


async def test_limits_and_defaults_that_are_allowed(make_emu: MakeEmu) -> None:
    emu = await make_emu()
    longest = await emu.client.videos.create(prompt=BLOCKED + " " + "x" * (32_000 - len(BLOCKED) - 1))
    assert len(longest.prompt or "") == 32_000
    assert (longest.model, longest.size, longest.seconds) == ("sora-2", "720x1280", "4")  # the API's defaults
    pro = await emu.client.videos.create(prompt=BLOCKED, model="sora-2-pro", size="1792x1024", seconds="12")
    assert (pro.size, pro.seconds) == ("1792x1024", "12")
    # sora-2-pro at 1024p is slower than sora-2 at 720p, as the real service was
    assert emu.duration(pro.id) > emu.duration(longest.id) * 3


async def test_unknown_video_is_404_and_unfinished_content_is_400(make_emu: MakeEmu) -> None:
    emu = await make_emu()
    with pytest.raises(openai.NotFoundError):
        await emu.client.videos.retrieve("video_" + "0" * 48)
    with pytest.raises(openai.NotFoundError):
        await emu.client.videos.download_content("video_" + "0" * 48)
    with pytest.raises(openai.NotFoundError):
        await emu.client.videos.retrieve("../../etc/passwd")
    emu.state.table.ensure_render = lambda job: None  # type: ignore[method-assign]
    video = await emu.client.videos.create(prompt="not yet")
    with pytest.raises(openai.BadRequestError):
        await emu.client.videos.download_content(video.id)
    with pytest.raises(openai.BadRequestError) as caught:
        await emu.client.videos.download_content(video.id, variant="poster")  # type: ignore[arg-type]
    assert caught.value.param == "variant"


async def test_unknown_route_answers_an_openai_error_body(make_emu: MakeEmu) -> None:
    emu = await make_emu()
    async with httpx2.AsyncClient(transport=EmulatorTransport(emu.app)) as http:
        response = await http.get("http://emulator.soranb/v1/nothing-here", headers={"Authorization": "Bearer sk-x"})
    assert response.status_code == 404
    assert set(response.json()["error"]) == {"message", "type", "param", "code"}


# -- statuses --------------------------------------------------------------------------------------


async def test_statuses_move_forward_and_wait_for_the_render(
    make_emu: MakeEmu, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    from soranb.emulator import jobs

    release = threading.Event()
    real_render = jobs.render_media

    def slow_render(*args: Any, **kwargs: Any) -> None:
        release.wait(30)
        real_render(*args, **kwargs)

    monkeypatch.setattr(jobs, "render_media", slow_render)
    emu = await make_emu()
    video = await emu.client.videos.create(prompt="a slow sunrise")
    duration = emu.duration(video.id)
    seen = [(video.status, video.progress)]
    for _ in range(25):
        emu.clock.advance(duration / 20)
        current = await emu.client.videos.retrieve(video.id)
        seen.append((current.status, current.progress))
    rank = {"queued": 0, "in_progress": 1, "completed": 2}
    assert [rank[s] for s, _ in seen] == sorted(rank[s] for s, _ in seen)
    assert [p for _, p in seen] == sorted(p for _, p in seen)
    assert {"queued", "in_progress"} <= {s for s, _ in seen}
    assert seen[-1] == ("in_progress", 99)  # the time is up, the video is not rendered yet

    release.set()
    await emu.renders_done()
    done = await emu.client.videos.retrieve(video.id)
    assert (done.status, done.progress) == ("completed", 100)
    assert done.completed_at is not None and done.completed_at >= video.created_at + int(duration)


async def test_poll_hint_header(make_emu: MakeEmu) -> None:
    emu = await make_emu(speed=IN_PROCESS_SPEED)
    emu.state.table.ensure_render = lambda job: None  # type: ignore[method-assign]
    video = await emu.client.videos.create(prompt="hint")
    raw = await emu.client.videos.with_raw_response.retrieve(video.id)
    assert int(raw.headers["openai-poll-after-ms"]) == 10_000  # 10 s to go at 6x, clamped to 10 s
    emu.clock.advance(emu.duration(video.id) - 0.1)
    raw = await emu.client.videos.with_raw_response.retrieve(video.id)
    assert int(raw.headers["openai-poll-after-ms"]) == 250
    listed = await emu.client.videos.with_raw_response.list()
    assert 250 <= int(listed.headers["openai-poll-after-ms"]) <= 10_000


async def test_create_and_poll_at_high_speed(make_emu: MakeEmu) -> None:
    import time

    emu = await make_emu(speed=5000, clock=time.time)
    video = await emu.client.videos.create_and_poll(prompt="quick", size="1280x720")
    assert (video.status, video.progress) == ("completed", 100)


async def test_moderation_blocked_job_fails_partway(make_emu: MakeEmu) -> None:
    emu = await make_emu()
    video = await emu.client.videos.create(prompt="A scene with the word MODERATION-TEST in it")
    assert video.status == "queued"
    emu.clock.advance(emu.duration(video.id) * 0.2)
    assert (await emu.client.videos.retrieve(video.id)).status == "in_progress"
    emu.clock.advance(emu.duration(video.id) * 0.2)
    failed = await emu.client.videos.retrieve(video.id)
    assert failed.status == "failed"
    assert failed.error is not None and failed.error.code == "moderation_blocked"
    assert 0 < failed.progress < 100
    with pytest.raises(openai.BadRequestError):
        await emu.client.videos.download_content(video.id)


async def test_content_expires(make_emu: MakeEmu) -> None:
    emu = await make_emu(expires_after_s=60)
    video = await emu.client.videos.create(prompt="short-lived")
    done = await emu.finish(video.id)
    assert done.expires_at == done.completed_at + 60
    assert (await emu.client.videos.download_content(video.id, variant="thumbnail")).content
    emu.clock.advance(61)
    with pytest.raises(openai.APIStatusError) as caught:
        await emu.client.videos.download_content(video.id)
    assert caught.value.status_code == 410
    assert (await emu.client.videos.retrieve(video.id)).status == "completed"


# -- list, delete, remix ---------------------------------------------------------------------------


async def test_list_pages_in_both_orders(make_emu: MakeEmu) -> None:
    emu = await make_emu()
    ids = []
    for n in range(5):
        ids.append((await emu.client.videos.create(prompt=f"{BLOCKED} clip {n}")).id)
        emu.clock.advance(1)

    page = await emu.client.videos.list(limit=2, order="asc")
    assert [v.id for v in page.data] == ids[:2]
    assert page.has_more is True
    page = await emu.client.videos.list(limit=2, order="asc", after=ids[1])
    assert [v.id for v in page.data] == ids[2:4]
    page = await emu.client.videos.list(limit=2, order="asc", after=ids[3])
    assert [v.id for v in page.data] == ids[4:]
    assert page.has_more is False

    newest_first = [v.id async for v in emu.client.videos.list(limit=2)]  # the SDK follows the cursor
    assert newest_first == ids[::-1]
    raw = await emu.client.videos.with_raw_response.list(limit=3)
    body = raw.http_response.json()
    assert body["object"] == "list"
    assert (body["first_id"], body["last_id"], body["has_more"]) == (ids[4], ids[2], True)

    empty = (await emu.client.videos.with_raw_response.list(limit=0)).http_response.json()
    assert (empty["data"], empty["first_id"], empty["has_more"]) == ([], None, True)
    with pytest.raises(openai.BadRequestError) as caught:
        await emu.client.videos.list(limit=101)
    assert caught.value.param == "limit"
    with pytest.raises(openai.BadRequestError) as caught:
        await emu.client.videos.list(order="sideways")  # type: ignore[arg-type]
    assert caught.value.param == "order"


async def test_delete(make_emu: MakeEmu) -> None:
    emu = await make_emu()
    keep = await emu.client.videos.create(prompt=f"{BLOCKED} keep")
    gone = await emu.client.videos.create(prompt=f"{BLOCKED} gone")
    deleted = await emu.client.videos.delete(gone.id)
    assert (deleted.id, deleted.object, deleted.deleted) == (gone.id, "video.deleted", True)
    with pytest.raises(openai.NotFoundError):
        await emu.client.videos.retrieve(gone.id)
    with pytest.raises(openai.NotFoundError):
        await emu.client.videos.delete(gone.id)
    assert [v.id for v in (await emu.client.videos.list()).data] == [keep.id]


async def test_remix(make_emu: MakeEmu) -> None:
    emu = await make_emu()
    source = await emu.client.videos.create(prompt="a cat on a skateboard", size="1280x720", seconds="4")
    with pytest.raises(openai.BadRequestError):  # not completed yet
        await emu.client.videos.remix(source.id, prompt="now in the rain")
    await emu.finish(source.id)
    remix = await emu.client.videos.remix(source.id, prompt="now in the rain")
    assert remix.remixed_from_video_id == source.id
    assert (remix.status, remix.size, remix.seconds, remix.model) == ("queued", "1280x720", "4", "sora-2")
    assert remix.prompt == "now in the rain"
    await emu.finish(remix.id)
    mp4 = probe_mp4((await emu.client.videos.download_content(remix.id)).content)
    assert (mp4["width"], mp4["height"]) == (1280, 720)
    with pytest.raises(openai.NotFoundError):
        await emu.client.videos.remix("video_" + "1" * 48, prompt="x")
    with pytest.raises(openai.BadRequestError) as caught:
        await emu.client.videos.remix(source.id, prompt="")
    assert caught.value.param == "prompt"


# -- persistence, logging --------------------------------------------------------------------------


async def test_jobs_survive_a_restart_and_render_lazily(make_emu: MakeEmu, tmp_path: Path) -> None:
    clock = FakeClock()
    first = await make_emu(clock=clock)
    first.state.table.ensure_render = lambda job: None  # type: ignore[method-assign]  # "dies" before rendering
    video = await first.client.videos.create(prompt="survives restarts", size="1280x720")
    first.state.close()

    second = await make_emu(clock=clock)
    again = await second.client.videos.retrieve(video.id)
    assert (again.id, again.created_at, again.prompt) == (video.id, video.created_at, video.prompt)
    done = await second.finish(video.id)  # the second process renders what the first never did
    assert done.status == "completed"
    assert probe_mp4((await second.client.videos.download_content(video.id)).content)["width"] == 1280
    third = await make_emu(clock=clock)
    assert [v.id for v in (await third.client.videos.list()).data] == [video.id]
    assert (await third.client.videos.retrieve(video.id)).completed_at == done.completed_at


HOLD_RENDER_LOCK = """
import sys
from filelock import FileLock
lock = FileLock(sys.argv[1])
lock.acquire()
print("locked", flush=True)
sys.stdin.read()  # hold it until killed
"""


def _hold_render_lock(media: Path) -> Any:
    """Another process (a second kernel) holding the job's render lock; returns the running process."""
    import subprocess
    import sys

    media.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_RENDER_LOCK, str(media / ".render.lock")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    return holder


async def test_a_job_another_process_renders_is_not_rendered_twice(make_emu: MakeEmu) -> None:
    first = await make_emu()
    first.state.table.ensure_render = lambda job: None  # type: ignore[method-assign]
    video = await first.client.videos.create(prompt="one render, two kernels", size="1280x720")
    media = first.state.table.media_dir(video.id)
    holder = _hold_render_lock(media)
    try:
        second = await make_emu(clock=first.clock)
        second.clock.advance(second.duration(video.id) + 1)
        await second.client.videos.retrieve(video.id)
        await second.renders_done()
        waiting = await second.client.videos.retrieve(video.id)
        assert (waiting.status, waiting.progress) == ("in_progress", 99)  # the holder is still rendering
        assert not (media / "rendered.json").exists() and not (media / "video.mp4").exists()
    finally:
        holder.kill()
        holder.wait(timeout=10)
    done = await second.finish(video.id)  # the holder died: its lock went with it, this process renders
    assert done.status == "completed"
    assert probe_mp4((await second.client.videos.download_content(video.id)).content)["width"] == 1280


async def test_a_render_lock_left_by_a_killed_process_is_taken_over_at_once(make_emu: MakeEmu) -> None:
    first = await make_emu()
    first.state.table.ensure_render = lambda job: None  # type: ignore[method-assign]
    video = await first.client.videos.create(prompt="the old kernel died mid-render", size="1280x720")
    media = first.state.table.media_dir(video.id)
    holder = _hold_render_lock(media)
    holder.kill()  # kill -9 while holding the lock: the lock file stays behind
    holder.wait(timeout=10)
    assert (media / ".render.lock").exists()
    first.state.close()

    second = await make_emu(clock=first.clock)
    done = await second.finish(video.id)
    assert done.status == "completed"


async def test_a_render_finished_while_waiting_for_the_lock_is_not_redone(
    make_emu: MakeEmu, monkeypatch: pytest.MonkeyPatch
) -> None:
    emu = await make_emu()
    emu.state.table.ensure_render = lambda job: None  # type: ignore[method-assign]
    video = await emu.client.videos.create(prompt="rendered by the other kernel", size="1280x720")
    table = emu.state.table
    job = table.get(video.id)
    assert job is not None
    media = table.media_dir(video.id)
    media.mkdir(parents=True)
    (media / "rendered.json").write_text('{"rendered_at": 1}')  # the other process has just finished
    real_marker = table._render_marker
    looks: list[str] = []

    def marker(job: Any) -> dict[str, Any] | None:
        looks.append(job.id)
        return None if len(looks) == 1 else real_marker(job)  # our first look came before that

    monkeypatch.setattr(table, "_render_marker", marker)
    rendered: list[Any] = []
    monkeypatch.setattr("soranb.emulator.jobs.render_media", lambda spec, folder: rendered.append(spec))
    table._render(job)
    assert len(looks) == 2 and rendered == []
    assert (media / "rendered.json").read_text() == '{"rendered_at": 1}'


async def test_deeply_nested_json_is_a_400_in_the_api_error_shape(make_emu: MakeEmu) -> None:
    emu = await make_emu()
    async with httpx2.AsyncClient(transport=EmulatorTransport(emu.app)) as http:
        response = await http.post(
            "http://emulator.soranb/v1/videos",
            content=b"[" * 100_000,
            headers={"Authorization": "Bearer sk-x", "Content-Type": "application/json"},
        )
    assert response.status_code == 400
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and "nested" in error["message"]


async def test_a_line_break_in_the_path_cannot_forge_a_log_line(
    make_emu: MakeEmu, caplog: pytest.LogCaptureFixture
) -> None:
    emu = await make_emu()
    forged = "/v1/videos/x%0a12:00:00 soranb.emulator POST /v1/videos 200%0d%1b[2J"
    with caplog.at_level(logging.INFO, logger="soranb.emulator"):
        async with httpx2.AsyncClient(transport=EmulatorTransport(emu.app)) as http:
            await http.get(f"http://emulator.soranb{forged}", headers={"Authorization": "Bearer sk-x"})
    (line,) = [r.getMessage() for r in caplog.records if "/v1/videos/x" in r.getMessage()]
    assert not any(c in line for c in "\n\r\x1b")
    assert "x%0A12:00:00" in line  # still readable: the character is shown as it was sent
