"""Webhooks from the emulator: signed events the SDK's `webhooks.unwrap` accepts, retried until the endpoint
answers 2xx, sent once per job, and only ever to the URLs the operator configured."""

from __future__ import annotations

import asyncio
import base64
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import openai
import pytest
import test_emulator

from soranb.cli import main
from soranb.emulator import EmulatorConfig
from soranb.emulator.webhooks import WebhookNotifier

BLOCKED = test_emulator.BLOCKED
MakeEmu = test_emulator.MakeEmu
make_emu = test_emulator.make_emu
SECRET = "whsec_" + base64.b64encode(b"soranb-webhook-test-secret-32b!!").decode()
FAST = (0.05, 0.05, 0.05)


@dataclass
class Receiver:
    """A webhook endpoint on 127.0.0.1 that records what arrives and answers the statuses it is told to."""

    url: str
    statuses: list[int]
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    redirect_to: str | None = None


def _serve(statuses: list[int]) -> Iterator[Receiver]:
    receiver: Receiver

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            receiver.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
            status = receiver.statuses.pop(0) if receiver.statuses else 200
            self.send_response(status)
            if receiver.redirect_to:
                self.send_header("Location", receiver.redirect_to)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver = Receiver(f"http://127.0.0.1:{server.server_address[1]}/hooks/soranb", statuses)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    yield from _serve([])


@pytest.fixture
def other() -> Iterator[Receiver]:
    yield from _serve([])


async def settled(emu: test_emulator.Emu, looks: int = 1) -> WebhookNotifier:
    """Take `looks` looks at the jobs as the watcher would, then wait (off the loop) until every event they
    sent has been delivered or given up: what arrived by then is all that will arrive."""
    notifier = emu.state.webhooks
    assert notifier is not None
    for _ in range(looks):
        notifier.scan()
    assert await asyncio.to_thread(notifier.settle), "deliveries still under way after 30 s"
    return notifier


def unwrap(headers: dict[str, str], body: bytes) -> object:
    """The event as the SDK's sync and async clients unwrap it (each raises on a bad signature)."""
    asdk = openai.AsyncOpenAI(api_key="x", webhook_secret=SECRET)
    via_async = asdk.webhooks.unwrap(body, headers)
    with openai.OpenAI(api_key="x", webhook_secret=SECRET) as sdk:
        event = sdk.webhooks.unwrap(body, headers)
    assert via_async == event
    return event


async def test_completed_and_failed_jobs_send_signed_events(make_emu: MakeEmu, receiver: Receiver) -> None:
    emu = await make_emu(webhook_urls=(receiver.url,), webhook_secret=SECRET, webhook_retry_delays=FAST)
    done = await emu.client.videos.create(prompt="a finished clip", size="1280x720")
    blocked = await emu.client.videos.create(prompt=BLOCKED, size="1280x720")
    await emu.finish(done.id)
    emu.clock.advance(emu.duration(blocked.id))
    await settled(emu)
    got = list(receiver.received)
    assert len(got) == 2
    events = {}
    for headers, body in got:
        event = unwrap(headers, body)  # raises InvalidWebhookSignatureError on a bad signature
        events[event.data.id] = event.type  # type: ignore[attr-defined]
        assert headers["webhook-id"] == event.id  # type: ignore[attr-defined]
    assert events == {done.id: "video.completed", blocked.id: "video.failed"}
    with openai.OpenAI(api_key="x") as sdk, pytest.raises(openai.InvalidWebhookSignatureError):
        sdk.webhooks.verify_signature(got[0][1], got[0][0], secret="whsec_" + base64.b64encode(b"x" * 32).decode())
    await settled(emu, looks=3)  # several more looks: each event goes out once
    assert len(receiver.received) == 2


async def test_a_failing_endpoint_gets_the_same_event_again(make_emu: MakeEmu, receiver: Receiver) -> None:
    receiver.statuses[:] = [500, 503]
    emu = await make_emu(webhook_urls=(receiver.url,), webhook_secret=SECRET, webhook_retry_delays=FAST)
    video = await emu.client.videos.create(prompt="retried", size="1280x720")
    await emu.finish(video.id)
    await settled(emu)  # the third attempt is answered 200
    got = list(receiver.received)
    assert len(got) == 3  # delivered: no more attempts (a fourth was allowed)
    assert len({headers["webhook-id"] for headers, _ in got}) == 1  # one event, three attempts
    assert all(unwrap(headers, body) for headers, body in got)


async def test_redirects_are_not_followed(make_emu: MakeEmu, receiver: Receiver, other: Receiver) -> None:
    receiver.statuses[:] = [307] * 4
    receiver.redirect_to = other.url
    emu = await make_emu(webhook_urls=(receiver.url,), webhook_secret=SECRET, webhook_retry_delays=FAST)
    video = await emu.client.videos.create(prompt="redirected", size="1280x720")
    await emu.finish(video.id)
    await settled(emu)  # all four attempts made and answered 307
    assert len(receiver.received) == 4  # every attempt ends at the configured URL
    assert other.received == []


def test_webhook_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="secret"):
        EmulatorConfig(webhook_urls=("http://127.0.0.1:9/hook",))
    with pytest.raises(ValueError, match="http or https"):
        EmulatorConfig(webhook_urls=("file:///etc/passwd",), webhook_secret=SECRET)
    with pytest.raises(ValueError, match="whsec_"):
        EmulatorConfig(webhook_urls=("http://127.0.0.1:9/hook",), webhook_secret="hunter2")
    config = EmulatorConfig.from_env(
        {
            "SORANB_EMULATOR_WEBHOOK_URLS": "http://127.0.0.1:9/a, https://example.test/b",
            "SORANB_EMULATOR_WEBHOOK_SECRET": SECRET,
        }
    )
    assert config.webhook_urls == ("http://127.0.0.1:9/a", "https://example.test/b")
    assert SECRET not in repr(config)


def test_the_cli_refuses_webhooks_without_a_secret(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SORANB_EMULATOR_WEBHOOK_SECRET", raising=False)
    code = main(["emulator", "--port", "1", "--webhook-url", "http://127.0.0.1:9/hook"])
    assert code == 2
    assert "SORANB_EMULATOR_WEBHOOK_SECRET" in capsys.readouterr().err


async def test_a_restarted_emulator_does_not_send_an_event_twice(make_emu: MakeEmu, receiver: Receiver) -> None:
    first = await make_emu(webhook_urls=(receiver.url,), webhook_secret=SECRET, webhook_retry_delays=FAST)
    video = await first.client.videos.create(prompt="sent once", size="1280x720")
    await first.finish(video.id)
    await settled(first)
    assert len(receiver.received) == 1
    first.state.close()
    again = await make_emu(webhook_urls=(receiver.url,), webhook_secret=SECRET, clock=first.clock)  # same folder
    assert (await again.client.videos.retrieve(video.id)).status == "completed"
    await settled(again, looks=3)
    assert len(receiver.received) == 1
