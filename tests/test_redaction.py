"""One redactor for everything a person or a log sees: keys, tokens and credentials inside URLs."""

from __future__ import annotations

import base64
import http.server
import json
import logging
import os
import threading
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from soranb.cli import main
from soranb.config import Settings
from soranb.debuglog import DebugLog, redact
from soranb.diagnostics import run_check
from soranb.errors import ConfigError, ProviderUnreachable, SoranbError
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
        provider=SimpleNamespace(
            label="openai (gateway.example)",
            base_url=BASE_URL,
            list_page=list_page,
            describe_capabilities=lambda: "list yes",
        ),
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


# -- secrets in every form (issue 17, item 5) ------------------------------------------------------
API_KEY = "sk-live-abcdef123456"
USERINFO = f"ada:{PASSWORD}"
BASIC = base64.b64encode(USERINFO.encode()).decode()


def _forms_of_secrets() -> list[str]:
    """Every form in which the key or the gateway password could reach the user: raw, Basic, base64."""
    return [API_KEY, PASSWORD, BASIC, base64.b64encode(API_KEY.encode()).decode()[2:-2]]


@pytest.mark.parametrize(
    "text",
    [
        f"Authorization: Basic {BASIC}",
        f"{{'authorization': 'Digest username=\"ada\", response=\"{PASSWORD}\"', 'host': 'x'}}",
        f'{{"api-key": "{PASSWORD}", "x-api-key": "{PASSWORD}"}}',
        f"headers were Proxy-Authorization=Token {PASSWORD}",
        f"the provider said: {BASIC}",  # the base64 of user:password, without its header
        f"embedded: {base64.b64encode(b'xy' + API_KEY.encode() + b'!').decode()}",  # a key's base64, any offset
        f"urlsafe: {base64.urlsafe_b64encode(b'?' + API_KEY.encode()).decode()}",
    ],
)
def test_headers_of_any_scheme_and_the_base64_of_secrets_are_masked(text: str) -> None:
    settings = Settings.from_env({"OPENAI_API_KEY": API_KEY, "OPENAI_BASE_URL": BASE_URL}, dotenv=False)
    masked = redact(text, settings.secrets())
    assert "[redacted]" in masked
    for secret in _forms_of_secrets():
        assert secret not in masked, masked


@pytest.mark.parametrize(
    "text",
    [
        "{'Authorization': 'Digest username=\"ada\", response=\"6629fae49393a05397450978507c4ef1\"'}",
        '{"api-key": "unknown-to-soranb", "apikey": "also-unknown"}',
        "Authorization: Token q\n",
    ],
)
def test_a_credential_header_is_masked_even_when_its_value_is_no_known_secret(text: str) -> None:
    masked = redact(text)  # as the notebook's toasts call it: no list of secrets at hand
    assert "6629fae4" not in masked and "unknown-to-soranb" not in masked and "also-unknown" not in masked
    assert "Token q" not in masked and "[redacted]" in masked


def test_settings_count_the_base_urls_credentials_as_secrets_also_percent_encoded() -> None:
    url = "https://ada:p%40ss%3Aword@gateway.example/v1"
    settings = Settings.from_env({"OPENAI_API_KEY": API_KEY, "OPENAI_BASE_URL": url}, dotenv=False)
    basic = base64.b64encode(b"ada:p@ss:word").decode()
    masked = redact(f"sent p@ss:word and p%40ss%3Aword as {basic}", settings.secrets())
    assert "p@ss" not in masked and "p%40ss" not in masked and basic not in masked


@pytest.mark.parametrize("url", ["http://gateway.example:99999/v1", "http://gateway.example:port/v1", "gateway/v1"])
def test_a_malformed_base_url_is_a_settings_error_before_anything_is_stored(
    url: str, cli_env: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ConfigError, match="OPENAI_BASE_URL"):
        Settings.from_env({"OPENAI_API_KEY": API_KEY, "OPENAI_BASE_URL": url}, dotenv=False)
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", url.replace("gateway.example", f"{USERINFO}@gateway.example"))
    assert main(["generate", "a fox", "--json"]) == 2
    err = capsys.readouterr().err
    assert "OPENAI_BASE_URL" in err and PASSWORD not in err and "Traceback" not in err
    assert not (cli_env / "soranb-data").exists()  # no record was left pending


class _EchoingProvider(http.server.BaseHTTPRequestHandler):
    """A hostile provider: every request gets a 400 whose message repeats the request's headers."""

    def _answer(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        token = self.headers.get("Authorization", "").rpartition(" ")[2]
        message = f"bad request; you sent {dict(self.headers)!r}; credentials {token}"
        body = json.dumps({"error": {"message": message, "type": "invalid_request_error", "code": token}}).encode()
        self.send_response(400)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def echoing_provider() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _EchoingProvider)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_a_provider_echoing_the_headers_gets_no_secret_into_any_output_the_store_or_the_log(
    echoing_provider: int,
    cli_env: Any,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://{USERINFO}@127.0.0.1:{echoing_provider}/v1")
    seen = []
    with caplog.at_level(logging.DEBUG, logger="soranb"):
        for argv in (["generate", "a fox", "--json"], ["list", "--json"], ["list"], ["doctor"], ["doctor", "--json"]):
            main(argv)
            out, err = capsys.readouterr()
            seen.append(out + err)
    assert "credentials [redacted]" in seen[0]  # the provider's message is shown, its echo masked
    stored = b"".join(p.read_bytes() for p in (cli_env / "soranb-data").rglob("*") if p.is_file())
    shown = "\n".join(seen) + caplog.text
    for secret in _forms_of_secrets():
        assert secret not in shown
        assert secret.encode() not in stored


def _echo_headers(request: httpx.Request) -> httpx.Response:
    message = f"you sent {dict(request.headers)!r}"
    token = request.headers.get("authorization", "").rpartition(" ")[2]
    return httpx.Response(400, json={"error": {"message": message, "type": "invalid_request_error", "code": token}})


@pytest.mark.parametrize("answer", [_echo_headers, _refuse])
async def test_soranb_errors_keep_no_lower_layer_exception_in_their_chain(answer: Any) -> None:
    """An SDK or httpx exception holds the raw key and URL: it must not ride along as the context."""
    provider = VideoProvider(
        api_key=API_KEY,
        base_url=f"http://{USERINFO}@127.0.0.1:9/v1",
        http_client=httpx.AsyncClient(transport=httpx.MockTransport(answer)),
        log=DebugLog(),
        label="openai (127.0.0.1)",
        max_retries=0,
    )
    with pytest.raises(SoranbError) as caught:
        await provider.list_page(limit=1)
    chain: list[BaseException] = []
    error: BaseException | None = caught.value
    while error is not None and len(chain) < 10:
        chain.append(error)
        error = error.__cause__ or error.__context__
    assert all(isinstance(e, SoranbError) for e in chain), [type(e) for e in chain]
    for e in chain:
        assert not any(secret in f"{e} {e.args!r} {vars(e)!r}" for secret in _forms_of_secrets())
