"""What the engine tests share: services on the in-process emulator, and driving them without timers."""

from __future__ import annotations

import io
import time
from collections.abc import Callable

import httpx2
import pytest
from PIL import Image

from soranb.debuglog import DebugLog
from soranb.emulator import EmulatorConfig
from soranb.provider import VideoProvider
from soranb.request import GenerationRequest
from soranb.service import VideoService
from soranb.store.base import RecordQuery

__all__ = ["FOX", "SPEED", "drive", "emulator_jobs", "make_service", "png", "wait_at_provider"]

SPEED = 240.0
FOX = GenerationRequest("a red fox running through snow", "sora-2", "1280x720", 4)


@pytest.fixture
def make_service(settings):
    """Build services for a test and close them all after it.

    By default the provider is an in-process emulator with the given knobs (faults, api_key, ...),
    no SDK retries and a seeded fault sequence; `from_settings=True` builds it from the settings.
    """
    made: list[VideoService] = []

    def make(
        *,
        using=None,
        from_settings: bool = False,
        max_retries: int = 0,
        wrap_transport: Callable[[httpx2.AsyncBaseTransport], httpx2.AsyncBaseTransport] | None = None,
        **knobs,
    ) -> VideoService:
        chosen = using or settings
        provider = None
        if not from_settings:
            knobs.setdefault("speed", SPEED)
            config = EmulatorConfig(state_dir=chosen.data_dir / "emulator", seed=7, **knobs)
            log = DebugLog([knobs["api_key"]] if knobs.get("api_key") else [])
            provider = VideoProvider.in_process(config, log, max_retries=max_retries, wrap_transport=wrap_transport)
        service = VideoService(chosen, provider=provider, autostart=False)
        made.append(service)
        return service

    yield make
    for service in made:
        service.close()


def drive(service: VideoService, *, until: Callable[[], bool] | None = None, limit_s: float = 60) -> None:
    """Poll until no job is open (or `until()`), like the background loop would, but in the test's hands."""
    deadline = time.monotonic() + limit_s
    done = until or (lambda: service.count_records(RecordQuery.open_jobs()) == 0)
    while not done():
        assert time.monotonic() < deadline, "jobs did not finish: " + repr(service.list_records())
        service.poll_once()
        time.sleep(0.05)


def wait_at_provider(service: VideoService, record_id: str, limit_s: float = 60) -> None:
    """Wait until the provider has finished the job, without polling (so nothing is downloaded yet)."""
    deadline = time.monotonic() + limit_s
    while service.check_status(record_id)["status"] != "completed":
        assert time.monotonic() < deadline
        time.sleep(0.05)


def emulator_jobs(service: VideoService) -> list:
    return service.provider.emulator.table.all()


def png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 40, 40)).save(out, format="PNG")
    return out.getvalue()
