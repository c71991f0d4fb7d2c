"""The provider's new calls against a hostile or broken provider: what it sends is validated like a video
object, and nothing becomes a path or a URL; extend and edit send the API's JSON shape, once."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx2
import pytest

from soranb.debuglog import DebugLog
from soranb.errors import ProviderAnswerInvalid, ProviderUnreachable
from soranb.provider import VideoProvider

VIDEO = {"id": "video_1", "object": "video", "model": "sora-2", "status": "queued", "progress": 0, "created_at": 1,
         "size": "1280x720", "seconds": "8"}  # fmt: skip


def provider_answering(answer: Any, seen: list[httpx2.Request]) -> VideoProvider:
    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        if isinstance(answer, Exception):
            raise answer
        return httpx2.Response(200, json=answer)

    return VideoProvider(
        api_key="sk-test",
        base_url="http://provider.test/v1",
        http_client=httpx2.AsyncClient(transport=httpx2.MockTransport(handler)),
        log=DebugLog(),
        label="test provider",
        max_retries=2,
    )


async def test_extend_and_edit_send_the_apis_json_once() -> None:
    seen: list[httpx2.Request] = []
    provider = provider_answering(VIDEO, seen)
    job = await provider.extend("video_src", "more", 4)
    assert job.id == "video_1"
    await provider.edit("video_src", "at night")
    assert [(r.url.path, json.loads(r.content)) for r in seen] == [
        ("/v1/videos/extensions", {"prompt": "more", "seconds": "4", "video": {"id": "video_src"}}),
        ("/v1/videos/edits", {"prompt": "at night", "video": {"id": "video_src"}}),
    ]
    seen.clear()
    broken = provider_answering(httpx2.ReadError("reset"), seen)
    with pytest.raises(ProviderUnreachable):
        await broken.extend("video_src", "more", 4)
    assert len(seen) == 1  # a lost answer is never re-sent blindly (it could bill twice)
    await provider.aclose()
    await broken.aclose()


@pytest.mark.parametrize(
    "answer",
    [
        {"id": "../../etc", "name": "x", "created_at": 1},
        {"id": "", "name": "x", "created_at": 1},
        {"id": "char_1", "name": ["<b>"], "created_at": 1},
        ["not", "an", "object"],
    ],
)
async def test_a_hostile_character_answer_is_refused(answer: Any, tmp_path: Path) -> None:
    provider = provider_answering(answer, [])
    with pytest.raises(ProviderAnswerInvalid):
        await provider.get_character("char_1")
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(bytes(100))
    with pytest.raises(ProviderAnswerInvalid):
        await provider.create_character("x", clip)
    await provider.aclose()


async def test_a_source_id_that_is_not_an_id_is_never_sent() -> None:
    seen: list[httpx2.Request] = []
    provider = provider_answering(VIDEO, seen)
    with pytest.raises(ProviderAnswerInvalid):
        await provider.extend("../videos", "more", 4)
    with pytest.raises(ProviderAnswerInvalid):
        await provider.get_character("a/b")
    assert seen == []
    await provider.aclose()
