"""Provider job ids are opaque: a gateway's ~300-character base64 ids (LiteLLM's `video_` + base64, with
`+` and `=`) go through the whole flow, are quoted in every URL, never become a file name, and are shown
shortened; what could not be an id is refused, and a job made with such an id is never orphaned."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import httpx2
import pytest
from engine_helpers import FOX, drive, emulator_jobs
from netfaults import Tamper, rewrite_json

from soranb.cli import main
from soranb.debuglog import DebugLog
from soranb.emulator import EmulatorConfig
from soranb.errors import ProviderAnswerInvalid
from soranb.provider import VideoProvider, check_job_id, short_job_id
from soranb.records import Status

GATEWAY_ID = (
    "video_"
    + base64.b64encode(
        b"litellm:custom_llm_provider:openai;model_id:~~~a1b2;video_id:video_abc123;deployment_id:d-42"
    ).decode()
)


# -- what an id may be -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "job_id",
    [GATEWAY_ID, "video_" + "A" * 1018, "a?b#c%d&e=f+g", "video_abc", "x", "..a", "a..", "%2e%2e"],
)
def test_any_printable_id_up_to_1024_characters_is_accepted(job_id):
    assert check_job_id(job_id) == job_id


@pytest.mark.parametrize(
    ("job_id", "says"),
    [
        ("", "empty"),
        ("..", "'.' or '..'"),
        (".", "'.' or '..'"),
        ("video_a/b", "'/'"),
        ("video a", "space"),
        ("video_\na", "control"),
        ("video_\x00", "control"),
        ("vidéo", "printable ASCII"),
        ("v" * 1025, "1024"),
        (42, "not text"),
        (None, "not text"),
    ],
)
def test_what_could_not_be_an_id_is_refused_saying_why(job_id, says):
    with pytest.raises(ProviderAnswerInvalid, match="job id") as caught:
        check_job_id(job_id)
    assert says in str(caught.value)
    assert len(str(caught.value)) < 400  # a 10 000-character id is not echoed whole


def test_a_long_id_is_shown_as_its_first_12_and_last_6_characters():
    assert short_job_id(GATEWAY_ID) == GATEWAY_ID[:12] + "…" + GATEWAY_ID[-6:]
    assert short_job_id("video_abc") == "video_abc"
    openai_id = "video_" + "0123abcd" * 6  # OpenAI's own ids are shown whole, as its dashboard shows them
    assert short_job_id(openai_id) == openai_id


# -- every URL quotes it -----------------------------------------------------------------------------
async def test_every_path_soranb_calls_carries_the_id_percent_encoded(tmp_path):
    odd = "video_a?b#c%d+e="
    seen: list[bytes] = []

    def answer(request: httpx2.Request) -> httpx2.Response:
        seen.append(request.url.raw_path)
        if request.url.path.endswith("/content"):
            return httpx2.Response(200, content=b"mp4", headers={"content-length": "3"})
        if request.method == "DELETE":
            return httpx2.Response(200, json={"id": odd, "object": "video.deleted", "deleted": True})
        return httpx2.Response(200, json={"id": odd, "object": "video", "status": "completed", "progress": 100})

    provider = VideoProvider(
        api_key="k",
        base_url="http://gateway.test/v1",
        http_client=httpx2.AsyncClient(transport=httpx2.MockTransport(answer)),
        log=DebugLog([]),
        label="gateway",
        max_retries=0,
    )
    try:
        assert (await provider.retrieve(odd)).id == odd
        await provider.download(odd, "video", tmp_path / "v.mp4")
        await provider.remix(odd, "again")
        await provider.delete(odd)
    finally:
        await provider.aclose()
    quoted = b"/v1/videos/video_a%3Fb%23c%25d+e="
    assert seen == [quoted, quoted + b"/content?variant=video", quoted + b"/remix", quoted]


# -- the emulator hands out gateway-like ids ---------------------------------------------------------
def test_the_emulator_hands_out_gateway_ids_when_asked():
    assert EmulatorConfig.from_env({"SORANB_EMULATOR_ID_STYLE": "gateway"}).id_style == "gateway"
    assert EmulatorConfig().id_style == "openai"
    with pytest.raises(ValueError, match="openai, gateway"):
        EmulatorConfig(id_style="litellm")


def test_the_whole_flow_works_with_gateway_ids(make_service):
    service = make_service(id_style="gateway")
    record = service.generate(FOX)
    job_id = record.openai_job_id or ""
    assert job_id.startswith("video_") and 200 < len(job_id) <= 1024
    assert "+" in job_id and job_id.endswith("=")  # what a client must not mangle in a URL
    assert "litellm:" in base64.b64decode(job_id.removeprefix("video_")).decode()
    drive(service)
    done = service.get(record.id)
    assert done.status == Status.COMPLETED and done.openai_job_id == job_id
    path = service.media_path(done.video_key or "")
    assert path is not None and path.stat().st_size > 1000
    assert job_id not in (done.video_key or "") and record.id in (done.video_key or "")  # named by record id

    remixed = service.remix(record.id, "the fox, now at night")
    extended = service.extend(record.id, "it runs into the forest", 4)
    drive(service)
    for made in (remixed, extended):
        finished = service.get(made.id)
        assert finished.status == Status.COMPLETED, finished.error_message
        assert (finished.openai_job_id or "").endswith("=") and service.media_path(finished.video_key or "")
    assert len(emulator_jobs(service)) == 3
    service.delete(remixed.id)
    assert len(emulator_jobs(service)) == 2  # the provider's job is gone too
    assert all(job_id not in entry.message for entry in service.log.entries())  # logs show it shortened


def test_soranb_wait_finishes_a_job_with_a_gateway_id(cli_env, capsys, monkeypatch):
    monkeypatch.setenv("SORANB_EMULATOR_ID_STYLE", "gateway")
    assert main(["generate", "first light over the sea", "--json"]) == 0
    made = json.loads(capsys.readouterr().out)
    assert len(made["openai_job_id"]) > 128
    assert main(["wait", "--json"]) == 0
    (done,) = json.loads(capsys.readouterr().out)
    assert done["status"] == "completed" and done["openai_job_id"] == made["openai_job_id"]
    assert Path(done["video_path"]).is_file()


# -- a job the provider made is never orphaned -------------------------------------------------------
def test_a_job_whose_id_soranb_refuses_is_kept_on_the_record_and_never_sent_again(make_service):
    refused = "video_" + "b" * 2000  # longer than soranb accepts

    def wrap(inner: httpx2.AsyncBaseTransport) -> Tamper:
        def rule(request: httpx2.Request, response: httpx2.Response, body: bytes) -> httpx2.Response | None:
            if request.method == "POST" and request.url.path == "/v1/videos":
                return rewrite_json(request, body, lambda video: video.update(id=refused))
            return None

        return Tamper(inner, rule)

    service = make_service(wrap_transport=wrap)
    record = service.generate(FOX)
    record = service.get(record.id)
    assert record.openai_job_id == refused  # kept: the job exists (and is billed) at the provider
    assert record.status == Status.FAILED
    message = record.error_message or ""
    assert "1024" in message and "dashboard" in message and refused not in message
    service.poll_once()
    assert len(emulator_jobs(service)) == 1  # never sent a second time
