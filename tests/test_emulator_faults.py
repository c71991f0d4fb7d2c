"""The emulator's failure modes through the official SDK: keys, retired models, faults, config, logs."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import httpx2
import openai
import pytest
import test_emulator

from soranb.emulator import (
    EMULATOR_BASE_URL,
    FAULT_NAMES,
    IN_PROCESS_SPEED,
    EmulatorConfig,
    EmulatorTransport,
    parse_fault,
)
from soranb.emulator.app import MAX_JSON_BYTES
from soranb.emulator.faults import FaultPicker, parse_faults
from soranb.emulator.server import exposure_warning

BLOCKED = test_emulator.BLOCKED
MakeEmu = test_emulator.MakeEmu
make_emu = test_emulator.make_emu  # the in-process emulator fixture, shared

# -- keys, retired models ----------------------------------------------------------------------------


async def test_wrong_api_key_is_401_without_echoing_the_key(make_emu: MakeEmu) -> None:
    wrong = "sk-wrong-key-abcdefgh-1234"
    emu = await make_emu(api_key="sk-emulator-secret-9876", client_key=wrong)
    with pytest.raises(openai.AuthenticationError) as caught:
        await emu.client.videos.list()
    body = caught.value.response.text
    assert caught.value.code == "invalid_api_key"
    assert "sk-...1234" in caught.value.message
    assert wrong not in body and "sk-emulator-secret-9876" not in body
    assert "abcdefgh" not in body

    right = openai.AsyncOpenAI(
        base_url=EMULATOR_BASE_URL,
        api_key="sk-emulator-secret-9876",
        http_client=httpx2.AsyncClient(transport=EmulatorTransport(emu.app)),
        max_retries=0,
    )
    async with right:
        assert (await right.videos.list()).data == []


async def test_retired_model_is_404_model_not_found(make_emu: MakeEmu) -> None:
    emu = await make_emu(retired_models=frozenset({"sora-2"}))
    with pytest.raises(openai.NotFoundError) as caught:
        await emu.client.videos.create(prompt="p", model="sora-2")
    assert caught.value.code == "model_not_found"
    assert caught.value.param == "model"
    assert caught.value.body == {
        "message": "The model `sora-2` does not exist or you do not have access to it.",
        "type": "invalid_request_error",
        "param": "model",
        "code": "model_not_found",
    }
    pro = await emu.client.videos.create(prompt=BLOCKED, model="sora-2-pro")
    assert pro.model == "sora-2-pro"


# -- faults ----------------------------------------------------------------------------------------


async def test_rate_limit_fault(make_emu: MakeEmu) -> None:
    emu = await make_emu(faults={"rate-limit": 1.0})
    with pytest.raises(openai.RateLimitError) as caught:
        await emu.client.videos.create(prompt="p")
    assert caught.value.response.headers["retry-after"] == "1"
    assert caught.value.response.headers["retry-after-ms"] == "1000"
    assert caught.value.code == "rate_limit_exceeded"
    assert emu.state.table.all() == []


async def test_server_error_fault(make_emu: MakeEmu) -> None:
    emu = await make_emu(faults={"server-error": 1.0})
    statuses = set()
    for _ in range(6):
        with pytest.raises(openai.InternalServerError) as caught:
            await emu.client.videos.list()
        statuses.add(caught.value.status_code)
        assert caught.value.type == "server_error"
    assert statuses <= {500, 503}


async def test_reset_fault_is_a_connection_error_and_does_nothing(make_emu: MakeEmu) -> None:
    emu = await make_emu(faults={"reset": 1.0})
    with pytest.raises(openai.APIConnectionError) as caught:
        await emu.client.videos.create(prompt="p")
    assert not isinstance(caught.value, openai.APITimeoutError)
    assert isinstance(caught.value.__cause__, httpx2.ReadError)
    assert emu.state.table.all() == []


async def test_lost_response_creates_the_job_but_loses_the_answer(make_emu: MakeEmu) -> None:
    emu = await make_emu(faults={"lost-response": 1.0})
    with pytest.raises(openai.APIConnectionError):
        await emu.client.videos.create(prompt=f"{BLOCKED} lost answer")
    listed = await emu.client.videos.list(order="desc")  # a GET: never lost
    assert [v.prompt for v in listed.data] == [f"{BLOCKED} lost answer"]


async def test_faults_change_at_runtime_and_are_seeded(make_emu: MakeEmu) -> None:
    emu = await make_emu()
    assert (await emu.client.videos.list()).data == []
    emu.state.faults.set_faults({"rate-limit": 1.0})
    with pytest.raises(openai.RateLimitError):
        await emu.client.videos.list()
    emu.state.faults.set_faults({})
    assert (await emu.client.videos.list()).data == []

    def sequence() -> list[str | None]:
        picker = FaultPicker({"rate-limit": 0.3, "server-error": 0.3, "lost-response": 0.5}, seed=42)
        return [picker.pick("POST", "/v1/videos") for _ in range(40)]

    first = sequence()
    assert first == sequence()
    assert {"rate-limit", "server-error", "lost-response", None} <= set(first)
    picker = FaultPicker({"lost-response": 1.0}, seed=1)
    assert picker.pick("GET", "/v1/videos") is None
    assert picker.pick("POST", "/v1/videos/video_x/remix") == "lost-response"


def test_parse_fault() -> None:
    assert parse_fault("rate-limit=0.2") == ("rate-limit", 0.2)
    assert parse_fault(" reset = 1 ") == ("reset", 1.0)
    assert parse_faults("rate-limit=0.2,reset=0.1") == {"rate-limit": 0.2, "reset": 0.1}
    with pytest.raises(ValueError, match="one of rate-limit, server-error, reset, lost-response and RATE between 0"):
        parse_fault("meteor=0.1")
    with pytest.raises(ValueError, match="between 0 and 1"):
        parse_fault("reset=1.5")
    with pytest.raises(ValueError, match="between 0 and 1"):
        parse_fault("reset=often")
    with pytest.raises(ValueError, match="between 0 and 1"):
        parse_fault("reset")
    assert set(FAULT_NAMES) == {"rate-limit", "server-error", "reset", "lost-response"}
    with pytest.raises(ValueError, match="between 0 and 1"):
        EmulatorConfig(faults={"reset": 2.0})


def test_config_from_env(tmp_path: Path) -> None:
    config = EmulatorConfig.from_env(
        {
            "SORANB_EMULATOR_SPEED": "6",
            "SORANB_EMULATOR_LATENCY_MS": "25",
            "SORANB_EMULATOR_FAULTS": "rate-limit=0.2,reset=0.1",
            "SORANB_EMULATOR_MODERATION_WORDS": "forbidden, Banned",
            "SORANB_EMULATOR_API_KEY": "sk-abc",
            "SORANB_EMULATOR_RETIRED_MODELS": "sora-2,sora-2-pro",
            "SORANB_EMULATOR_STATE_DIR": str(tmp_path),
        }
    )
    assert config.speed == 6.0 and config.latency_ms == 25
    assert config.faults == {"rate-limit": 0.2, "reset": 0.1}
    assert config.moderation_words == ("forbidden", "banned")
    assert config.api_key == "sk-abc"
    assert config.retired_models == frozenset({"sora-2", "sora-2-pro"})
    assert config.state_dir == tmp_path
    assert EmulatorConfig.from_env({}) == EmulatorConfig()
    with pytest.raises(ValueError, match="SORANB_EMULATOR_FAULTS"):
        EmulatorConfig.from_env({"SORANB_EMULATOR_FAULTS": "reset=9"})
    with pytest.raises(ValueError, match="SORANB_EMULATOR_SPEED"):
        EmulatorConfig.from_env({"SORANB_EMULATOR_SPEED": "fast"})
    # at 1x a 4 s sora-2 clip takes about a minute; at the in-process speed about 10 s
    assert EmulatorConfig().job_duration("sora-2", "1280x720", 4) == pytest.approx(60)
    assert EmulatorConfig(speed=IN_PROCESS_SPEED).job_duration("sora-2", "1280x720", 4) == pytest.approx(10)


# -- logs, latency, raw requests ---------------------------------------------------------------


async def test_one_log_line_per_request_without_secrets(make_emu: MakeEmu, caplog: pytest.LogCaptureFixture) -> None:
    emu = await make_emu(api_key="sk-emulator-secret-9876", client_key="sk-emulator-secret-9876")
    with caplog.at_level(logging.INFO, logger="soranb.emulator"):
        await emu.client.videos.list(limit=5)
        with pytest.raises(openai.NotFoundError):
            await emu.client.videos.retrieve("video_" + "2" * 48)
    lines = [r.getMessage() for r in caplog.records if r.name == "soranb.emulator"]
    assert len(lines) == 2
    assert re.match(r"GET /v1/videos\?limit=5 200 [\d.]+ ms req_[0-9a-f]{32}$", lines[0])
    assert re.match(r"GET /v1/videos/video_2{48} 404 [\d.]+ ms req_[0-9a-f]{32}$", lines[1])
    assert "secret" not in caplog.text and "Bearer" not in caplog.text


async def test_latency_is_added_before_every_request(make_emu: MakeEmu, monkeypatch: pytest.MonkeyPatch) -> None:
    import types

    from soranb.emulator import pipeline

    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr(pipeline, "asyncio", types.SimpleNamespace(sleep=fake_sleep))
    emu = await make_emu(latency_ms=250)
    await emu.client.videos.list()
    with pytest.raises(openai.NotFoundError):
        await emu.client.videos.retrieve("video_" + "3" * 48)
    assert slept == [0.25, 0.25]


async def test_raw_requests_json_body_and_missing_key(make_emu: MakeEmu) -> None:
    emu = await make_emu(api_key="sk-emulator-secret-9876")
    async with httpx2.AsyncClient(transport=EmulatorTransport(emu.app), base_url=EMULATOR_BASE_URL) as http:
        missing = await http.get("/videos")
        assert missing.status_code == 401
        assert missing.json()["error"]["type"] == "invalid_request_error"
        auth = {"Authorization": "Bearer sk-emulator-secret-9876"}
        no_prompt = await http.post("/videos", json={"model": "sora-2"}, headers=auth)
        assert no_prompt.status_code == 400
        assert no_prompt.json()["error"]["param"] == "prompt"
        assert no_prompt.json()["error"]["code"] == "missing_required_parameter"
        created = await http.post("/videos", json={"prompt": BLOCKED, "seconds": "8"}, headers=auth)
        assert created.status_code == 200
        assert created.json()["seconds"] == "8"
        assert set(created.json()) == {
            "id",
            "object",
            "model",
            "status",
            "progress",
            "created_at",
            "completed_at",
            "expires_at",
            "prompt",
            "size",
            "seconds",
            "remixed_from_video_id",
            "error",
        }


# -- exposed to a network: a key is always needed, bodies are bounded, a warning names the risk ----------


async def test_without_a_key_every_request_is_401_even_when_any_key_is_accepted(make_emu: MakeEmu) -> None:
    emu = await make_emu()  # no api_key configured: any bearer key works, none does not
    async with httpx2.AsyncClient(transport=EmulatorTransport(emu.app), base_url=EMULATOR_BASE_URL) as http:
        for request in (http.get("/videos"), http.post("/videos", json={"prompt": "on someone's CPU"})):
            missing = await request
            assert missing.status_code == 401
            assert "You didn't provide an API key" in missing.json()["error"]["message"]
        assert (await http.get("/videos", headers={"Authorization": "Basic abc"})).status_code == 401
        listed = await http.get("/videos", headers={"Authorization": "Bearer any-key"})
        assert listed.status_code == 200
        assert listed.json()["data"] == []  # the unauthenticated create made no job


async def _post_streamed(app: object, total: int, *, declare: bool) -> tuple[int, int]:
    """POST a JSON body of `total` bytes in 64 KB chunks straight into the ASGI app:
    (status, bytes the app pulled from the client)."""
    chunk = 64 * 1024
    pulled = 0
    sent: dict[str, int] = {}

    async def receive() -> dict[str, object]:
        nonlocal pulled
        size = min(chunk, total - pulled)
        pulled += size
        return {"type": "http.request", "body": b" " * size, "more_body": pulled < total}

    async def send(message: dict[str, object]) -> None:
        if message["type"] == "http.response.start":
            sent["status"] = int(message["status"])  # type: ignore[call-overload]

    headers = [(b"authorization", b"Bearer sk-x"), (b"content-type", b"application/json")]
    if declare:
        headers.append((b"content-length", str(total).encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/videos",
        "raw_path": b"/v1/videos",
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }
    await app(scope, receive, send)  # type: ignore[operator]
    return sent["status"], pulled


@pytest.mark.parametrize("declare", [True, False])
async def test_a_huge_json_body_is_refused_while_it_streams_in(make_emu: MakeEmu, declare: bool) -> None:
    """A 200 MB JSON body is answered 413 after at most the limit was read, with or without Content-Length."""
    emu = await make_emu()
    status, pulled = await _post_streamed(emu.app, 200 * 1024 * 1024, declare=declare)
    assert status == 413
    assert pulled <= MAX_JSON_BYTES + 64 * 1024


async def test_a_json_body_under_the_limit_still_works(make_emu: MakeEmu) -> None:
    emu = await make_emu()
    padded = b'{"prompt": "a calm sea", "model": "sora-2"' + b" " * (MAX_JSON_BYTES // 2) + b"}"
    headers = {"Authorization": "Bearer sk-x", "Content-Type": "application/json"}
    async with httpx2.AsyncClient(transport=EmulatorTransport(emu.app), base_url=EMULATOR_BASE_URL) as http:
        created = await http.post("/videos", content=padded, headers=headers)
    assert created.status_code == 200


@pytest.mark.parametrize(
    ("host", "warns"),
    [
        ("127.0.0.1", False),
        ("localhost", False),
        ("::1", False),
        ("[::1]", False),
        ("127.0.0.2", False),
        ("0.0.0.0", True),
        ("::", True),
        ("192.168.1.20", True),
        ("myhost.lan", True),
    ],
)
def test_a_host_other_than_loopback_warns(host: str, warns: bool) -> None:
    warning = exposure_warning(host, None)
    assert (warning is not None) == warns
    if warning:
        assert host in warning and "--api-key" in warning and "127.0.0.1" in warning


def test_the_emulator_command_takes_an_api_key_and_warns_on_a_network_host(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import soranb.emulator
    from soranb.cli import main

    served: dict[str, object] = {}
    monkeypatch.setattr(soranb.emulator, "serve", lambda config, host, port: served.update(config=config, host=host))
    monkeypatch.delenv("SORANB_EMULATOR_API_KEY", raising=False)
    assert main(["emulator", "--host", "0.0.0.0", "--api-key", "sk-mine-123456"]) == 0
    err = capsys.readouterr().err
    assert "warning: the emulator listens on 0.0.0.0" in err and "only requests with that API key" in err
    assert "sk-mine-123456" not in err
    assert served["config"].api_key == "sk-mine-123456"  # type: ignore[attr-defined]
    assert main(["emulator"]) == 0
    assert "warning" not in capsys.readouterr().err
