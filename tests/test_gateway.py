"""soranb through a real LiteLLM proxy (a gateway people use today) in front of the emulator.

The gateway rewrites job ids (~350 characters of base64), answers 400 to a list, 405 to a delete and
the MP4 for every content variant: soranb must make, keep and show real videos through it anyway.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from gateway import Gateway, gateway  # noqa: F401 - the session fixture

from soranb.config import Settings
from soranb.records import Status
from soranb.request import GenerationRequest
from soranb.service import VideoService
from soranb.stills import is_image
from soranb.store.base import RecordQuery

pytestmark = pytest.mark.gateway


@pytest.fixture
def through_gateway(gateway: Gateway, tmp_path: Path):  # noqa: F811
    service = VideoService(Settings.from_env(gateway.env(tmp_path / "data"), dotenv=False), autostart=False)
    yield service
    service.close()


def _finish(service: VideoService, limit_s: float = 120) -> None:
    import time

    deadline = time.monotonic() + limit_s
    while service.count_records(RecordQuery.open_jobs()):
        assert time.monotonic() < deadline, service.list_records()
        service.poll_once()
        time.sleep(0.2)


def test_a_video_made_through_the_gateway_is_kept_whole_with_real_stills(
    through_gateway: VideoService,
    gateway: Gateway,  # noqa: F811
) -> None:
    service = through_gateway
    record = service.generate(GenerationRequest("a fox at the gateway", "sora-2", "1280x720", 4))
    assert record.status == Status.PROCESSING and len(record.openai_job_id or "") > 128  # the gateway's own id
    _finish(service)
    done = service.get(record.id)
    assert done.status == Status.COMPLETED, done.error_message
    video = service.media_path(done.video_key)
    assert video is not None and b"ftyp" in video.read_bytes()[:16]
    thumbnail = service.media_path(done.thumbnail_key)
    assert thumbnail is not None and is_image(thumbnail.read_bytes())  # the gateway sent the MP4 for it

    remix = service.remix(done.id, "the same fox, at night")
    _finish(service)
    assert service.get(remix.id).status == Status.COMPLETED

    kept = service.delete(done.id)  # the gateway answers 405: the record goes, the provider keeps its copy
    assert kept is not None and "keeps its copy until it expires" in kept
    assert [r.id for r in service.list_records()] == [remix.id]

    check = service.run_check("provider")  # `soranb doctor` through a gateway without a list
    assert check.status == "ok", check.summary
    assert "no job list" in check.summary and "delete no" in check.summary
    assert "stills made from the video" in check.summary and gateway.key not in check.summary + check.detail


def test_the_cli_waits_for_a_job_through_the_gateway(gateway: Gateway, tmp_path: Path, monkeypatch, capsys):  # noqa: F811
    import json

    from soranb.cli import main

    for name, value in gateway.env(tmp_path / "data").items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("SORANB_EMULATOR_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    code = main(["generate", "a heron in the reeds", "--seconds", "4", "--wait", "--timeout", "120", "--json"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert json.loads(out)["status"] == "completed"
    assert gateway.key not in out


def test_a_name_that_exists_only_at_the_gateway_is_made_and_priced_from_the_users_table(
    gateway: Gateway,  # noqa: F811
    tmp_path: Path,
    catalog_as_built,
) -> None:
    from decimal import Decimal

    catalog = catalog_as_built
    table = {"studio-cam": {"like": "sora-2", "price_per_second": 0.25}}
    settings = Settings.from_env(gateway.env(tmp_path / "data"), dotenv=False)
    settings = settings.with_overrides(models=tuple(catalog.models_from_table(table, "test")))
    service = VideoService(settings, autostart=False)
    try:
        record = service.generate(GenerationRequest("a crane shot over a harbour", "studio-cam", "1280x720", 4))
        _finish(service)
        done = service.get(record.id)
        assert done.status == Status.COMPLETED, done.error_message
        assert done.cost == Decimal("1.00") and service.budget().spent == Decimal("1.00")
    finally:
        service.close()
