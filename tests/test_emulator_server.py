"""The emulator served by uvicorn on 127.0.0.1, through the official SDK: what a separate process sees."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import httpx2
import openai
import pytest
import uvicorn

from soranb.emulator import EmulatorConfig, create_app, uvicorn_config
from soranb.emulator.app import EmulatorState


@dataclass
class Served:
    base_url: str
    port: int
    state: EmulatorState

    def client(self) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(
            base_url=self.base_url,
            api_key="sk-test",
            http_client=httpx2.AsyncClient(timeout=30),
            max_retries=0,
        )


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    app = create_app(EmulatorConfig(speed=5000, state_dir=tmp_path / "state", seed=3))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn_config(app, port=port))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started, "uvicorn did not start"
    try:
        yield Served(f"http://127.0.0.1:{port}/v1", port, app.state.emulator)
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
        app.state.emulator.close()


def raw_exchange(port: int, request: bytes) -> bytes | None:
    """Send raw bytes and read until the server closes; None if it reset the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(request)
        received = b""
        try:
            while chunk := conn.recv(65536):
                received += chunk
        except ConnectionResetError:
            return None
        return received


async def test_sdk_against_uvicorn(served: Served, tmp_path: Path) -> None:
    async with served.client() as client:
        video = await client.videos.create_and_poll(prompt="served over a socket", size="1280x720")
        assert (video.status, video.progress) == ("completed", 100)
        assert [v.id for v in (await client.videos.list()).data] == [video.id]

        target = tmp_path / "download.mp4"
        async with client.videos.with_streaming_response.download_content(video.id) as response:
            assert response.headers["content-type"] == "video/mp4"
            with target.open("wb") as out:
                async for chunk in response.iter_bytes():
                    out.write(chunk)
        assert target.stat().st_size == int(response.headers["content-length"])
        with av.open(str(target)) as container:
            stream = container.streams.video[0]
            assert (stream.codec_context.name, stream.width, stream.height) == ("h264", 1280, 720)
            assert container.duration is not None
            assert container.duration / av.time_base == pytest.approx(4.0, abs=0.1)


async def test_reset_and_lost_response_drop_the_connection(served: Served, caplog: pytest.LogCaptureFixture) -> None:
    auth = "Authorization: Bearer sk-test\r\n"  # the real API's 401 without one
    request = f"GET /v1/videos HTTP/1.1\r\nHost: 127.0.0.1:{served.port}\r\n{auth}\r\n".encode()
    assert (raw_exchange(served.port, request + b"") or b"").startswith(b"HTTP/1.1 200")

    served.state.faults.set_faults({"reset": 1.0})
    assert raw_exchange(served.port, request) is None  # RST: not a 500, not any answer
    with caplog.at_level(logging.INFO, logger="soranb.emulator"):
        async with served.client() as client:
            with pytest.raises(openai.APIConnectionError) as caught:
                await client.videos.list()
    assert not isinstance(caught.value, openai.APITimeoutError)
    assert any("dropped (reset)" in r.getMessage() for r in caplog.records)

    served.state.faults.set_faults({"lost-response": 1.0})
    async with served.client() as client:
        with pytest.raises(openai.APIConnectionError):
            await client.videos.create(prompt="moderation-test lost on the way back")
        served.state.faults.set_faults({})
        listed = await client.videos.list()
    assert [v.prompt for v in listed.data] == ["moderation-test lost on the way back"]
    create = (
        f"POST /v1/videos HTTP/1.1\r\nHost: 127.0.0.1:{served.port}\r\n{auth}"
        "Content-Type: application/json\r\nContent-Length: 29\r\n\r\n"
        '{"prompt": "moderation-test"}'
    ).encode()
    served.state.faults.set_faults({"lost-response": 1.0})
    assert raw_exchange(served.port, create) == b""  # closed without a single byte of answer
    assert len(served.state.table.all()) == 2
