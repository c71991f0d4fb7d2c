"""The request pipeline around the emulator's routes: request log, request id, latency, API key.

They are plain ASGI wrappers rather than Starlette middleware so that they sit
outside Starlette's error handling: the log must see a dropped connection leave
as an exception, and the key check must answer before any route runs.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import re
import secrets
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from soranb.emulator.wire import error_response, mask_key

__all__ = ["ApiKeyCheck", "Latency", "RequestId", "RequestLog"]

log = logging.getLogger("soranb.emulator")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # C0, DEL and C1 (a terminal reads \x9b as ESC [)


class ApiKeyCheck:
    """401 with OpenAI's body for a missing bearer key, as the real API answers; with `api_key` set
    (`--api-key`, `SORANB_EMULATOR_API_KEY`) a wrong key is refused too, else any key is accepted."""

    def __init__(self, app: ASGIApp, api_key: str | None) -> None:
        self.app = app
        self.api_key = api_key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        scheme, _, key = headers.get(b"authorization", b"").decode("latin-1").partition(" ")
        key = key.strip()
        if not (scheme.lower() == "bearer" and key) and (azure_key := headers.get(b"api-key", b"").strip()):
            scheme, key = "bearer", azure_key.decode("latin-1")  # Azure OpenAI's header
        if scheme.lower() != "bearer" or not key:
            message = (
                "You didn't provide an API key. You need to provide your API key in an Authorization header "
                "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
            )
            await error_response(401, message)(scope, receive, send)
        elif self.api_key is not None and not hmac.compare_digest(key.encode(), self.api_key.encode()):
            message = f"Incorrect API key provided: {mask_key(key)}."
            await error_response(401, message, code="invalid_api_key")(scope, receive, send)
        else:
            await self.app(scope, receive, send)


class RequestId:
    """An `x-request-id` on every answer (errors and injected faults included), as the API sends; the SDK
    shows it as `_request_id`, and the request log names it so one can find a client's request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = "req_" + secrets.token_hex(16)
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)

        await self.app(scope, receive, send_with_id)


class Latency:
    def __init__(self, app: ASGIApp, latency_ms: int) -> None:
        self.app = app
        self.delay = latency_ms / 1000

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.delay and scope["type"] == "http":
            await asyncio.sleep(self.delay)
        await self.app(scope, receive, send)


class RequestLog:
    """One line per request: method, path, status (or how the connection ended), duration. No headers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = "-"

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = str(message["status"])
            await send(message)

        path = _escaped(
            scope["path"] + (f"?{scope['query_string'].decode('latin-1')}" if scope.get("query_string") else "")
        )
        try:
            await self.app(scope, receive, send_and_note)
        except BaseException as exc:
            status = f"dropped ({getattr(exc, 'fault', type(exc).__name__)})"
            raise
        finally:
            ms = (time.perf_counter() - started) * 1000
            request_id = scope.get("state", {}).get("request_id", "-")
            log.info("%s %s %s %.1f ms %s", scope["method"], path, status, ms, request_id)


def _escaped(text: str) -> str:
    """`text` with control characters shown percent-encoded, as they were sent: a `%0a` in a path
    must not start a forged line in the log, nor an escape sequence repaint a terminal."""
    return _CONTROL.sub(lambda m: f"%{ord(m.group()):02X}", text)
