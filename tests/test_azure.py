"""Azure OpenAI: its v1 API (the /videos shape under /openai/v1/), `api-key` auth, and deployment names
that soranb maps to models through the user's catalog. The emulator plays Azure, so it runs offline."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import httpx2
import pytest
from engine_helpers import drive

from soranb import catalog
from soranb.config import Settings
from soranb.debuglog import DebugLog
from soranb.emulator import EmulatorConfig, EmulatorTransport, create_app
from soranb.errors import ProviderRejected
from soranb.provider import VideoProvider
from soranb.records import Status
from soranb.request import GenerationRequest
from soranb.service import VideoService

AZURE_KEY = "azure-0123456789abcdef0123456789abcdef"
ENDPOINT = "https://my-resource.openai.azure.com"


@pytest.fixture(autouse=True)
def _catalog_as_built(catalog_as_built):  # see conftest.py
    return catalog_as_built


def _azure(tmp_path: Path, seen: list[httpx2.Request]) -> VideoService:
    env = {
        "SORANB_DATA_DIR": str(tmp_path / "data"),
        "AZURE_OPENAI_ENDPOINT": ENDPOINT,
        "AZURE_OPENAI_API_KEY": AZURE_KEY,
    }
    settings = Settings.from_env(env, dotenv=False)
    deployment = {"my-sora": {"like": "sora-2", "price_per_second": 0.1}}
    settings = settings.with_overrides(models=tuple(catalog.models_from_table(deployment, "test")))
    config = EmulatorConfig(
        speed=240, api_key=AZURE_KEY, deployments={"my-sora": "sora-2"}, state_dir=tmp_path / "azure"
    )
    emulator = EmulatorTransport(create_app(config))

    class Recording(httpx2.AsyncBaseTransport):  # Azure's host is never reached: the emulator answers
        async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
            seen.append(request)
            return await emulator.handle_async_request(request)

    log = DebugLog(settings.secrets())
    provider = VideoProvider.from_settings(settings, log, wrap_transport=lambda _network: Recording())
    return VideoService(settings, provider=provider, autostart=False)


def test_azure_endpoint_and_key_make_a_video_of_a_deployment(tmp_path: Path) -> None:
    seen: list[httpx2.Request] = []
    service = _azure(tmp_path, seen)
    try:
        assert service.settings.provider == "azure" and service.provider.label.startswith("azure (my-resource")
        record = service.generate(GenerationRequest("a lighthouse at dawn", "my-sora", "1280x720", 4))
        drive(service)
        done = service.get(record.id)
        assert done.status == Status.COMPLETED and done.cost == Decimal("0.40")
        assert seen and all(str(r.url).startswith(f"{ENDPOINT}/openai/v1/videos") for r in seen)
        assert all(r.headers.get("api-key") == AZURE_KEY for r in seen)
        assert AZURE_KEY not in "\n".join(line.message for line in service.log.entries())
    finally:
        service.close()


def test_a_deployment_azure_does_not_have_is_named_as_such(tmp_path: Path) -> None:
    service = _azure(tmp_path, [])
    try:
        catalog.add_models(catalog.models_from_table({"typo-sora": {"like": "sora-2", "price_per_second": 0.1}}, "t"))
        with pytest.raises(ProviderRejected, match="no deployment of that name"):
            service.generate(GenerationRequest("a lighthouse at dawn", "typo-sora", "1280x720", 4))
        (record,) = service.list_records()
        assert record.status == Status.FAILED and "deployment" in (record.error_message or "")
    finally:
        service.close()


def test_azure_without_its_key_says_what_to_set(tmp_path: Path) -> None:
    from soranb.errors import ConfigError

    settings = Settings.from_env({"SORANB_DATA_DIR": str(tmp_path), "AZURE_OPENAI_ENDPOINT": ENDPOINT}, dotenv=False)
    with pytest.raises(ConfigError, match="AZURE_OPENAI_API_KEY"):
        settings.validate()
