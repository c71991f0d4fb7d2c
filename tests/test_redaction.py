"""One redactor for everything a person or a log sees: keys, tokens and credentials inside URLs."""

from __future__ import annotations

import os
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from soranb.config import Settings
from soranb.debuglog import DebugLog, redact
from soranb.diagnostics import run_check
from soranb.errors import ProviderUnreachable
from soranb.provider import VideoProvider
from soranb.service import VideoService
from soranb.store.supabase import SupabaseStore
from soranb.widgets.toasts import describe_exception

PASSWORD = "hunter2-Sekret"
BASE_URL = f"https://ada:{PASSWORD}@gateway.example/v1"


@pytest.mark.parametrize(
    "text",
    [
        f"no answer from openai at {BASE_URL} (ConnectError)",
        f"GET http://ada:{PASSWORD}@127.0.0.1:9/v1/videos failed",
        f"https://{PASSWORD}@gateway.example/v1",
        f"https://ada:{PASSWORD}@x@gateway.example/v1",  # an @ inside the password
    ],
)
def test_credentials_inside_a_url_are_masked(text: str) -> None:
    masked = redact(text)
    assert PASSWORD not in masked and "ada:" not in masked
    assert "[redacted]@" in masked


def test_keys_tokens_and_known_secrets_are_masked_everywhere_alike() -> None:
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY.abcdefghij"
    text = f"sk-live-abcdef123456 sb_secret_abcdefghij Bearer abcdefghijkl {jwt} x"
    assert redact(text).count("[redacted]") == 4
    assert "mysecretvalue" not in redact("echo mysecretvalue back", ["mysecretvalue"])
    # the debug log and the notebook's toasts use this very function
    log = DebugLog()
    log.info(f"calling {BASE_URL}")
    assert PASSWORD not in log.entries()[0].message
    assert PASSWORD not in describe_exception(RuntimeError(f"boom at {BASE_URL}"))
    assert "sk-live" not in describe_exception(RuntimeError("bad key sk-live-abcdef123456"))


async def test_an_unreachable_gateway_never_shows_its_credentials() -> None:
    provider = VideoProvider(
        api_key="sk-live-abcdef123456",
        base_url=f"http://ada:{PASSWORD}@127.0.0.1:9/v1",
        http_client=httpx.AsyncClient(transport=httpx.MockTransport(_refuse)),
        log=DebugLog(),
        label="openai (127.0.0.1)",
        max_retries=0,
    )
    with pytest.raises(ProviderUnreachable) as caught:
        await provider.list_page(limit=1)
    assert PASSWORD not in str(caught.value) and "[redacted]@127.0.0.1" in str(caught.value)


def _refuse(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError(f"cannot connect to {request.url}", request=request)


async def test_doctor_and_the_panel_never_show_the_credentials(tmp_path: Any) -> None:
    async def list_page(limit: int) -> Any:
        return SimpleNamespace(jobs=[])

    settings = Settings.from_env(
        {"OPENAI_API_KEY": "sk-live-abcdef123456", "OPENAI_BASE_URL": BASE_URL}, cwd=tmp_path, dotenv=False
    )
    service: Any = SimpleNamespace(
        settings=settings,
        log=DebugLog(settings.secrets()),
        provider=SimpleNamespace(label="openai (gateway.example)", base_url=BASE_URL, list_page=list_page),
    )
    result = await run_check(service, "provider")
    assert result.status == "ok" and "gateway.example" in result.summary
    assert PASSWORD not in result.summary + result.detail


def test_store_errors_use_the_same_redactor() -> None:
    store = SupabaseStore(
        "https://project.supabase.co", "sb_publishable_anonkey0000", password="pw-12345678", email="a@b.c"
    )
    scrubbed = store._scrub(f"echo pw-12345678 sb_publishable_anonkey0000 at {BASE_URL} sk-live-abcdef123456")
    assert "pw-12345678" not in scrubbed and "anonkey" not in scrubbed
    assert PASSWORD not in scrubbed and "sk-live" not in scrubbed


def test_describe_and_doctor_name_the_env_file_that_was_read(tmp_path: Any) -> None:
    (tmp_path / ".git").mkdir()
    env = tmp_path / ".env"
    env.write_text(f"SORANB_DATA_DIR={tmp_path / 'data'}\nSORANB_EMULATOR_SPEED=240\n")
    os.chmod(env, 0o600)
    service = VideoService(Settings.from_env({}, cwd=tmp_path), autostart=False)
    try:
        assert service.describe().endswith(f" · settings from {env}")
        assert str(env) in service.run_check("configuration").summary
    finally:
        service.close()
