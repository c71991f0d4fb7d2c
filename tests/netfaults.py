"""A network between soranb and the emulator that misbehaves on purpose: it rewrites, cuts and throttles.

`Tamper(inner, rule)` passes every request to `inner`; `rule(request, response, body)` may return a
replacement response. Helpers build the usual replacements.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx2

__all__ = ["Tamper", "cut_body", "json_answer", "rewrite_json", "trickle_body"]

Rule = Callable[[httpx2.Request, httpx2.Response, bytes], Awaitable[httpx2.Response | None] | httpx2.Response | None]


class Tamper(httpx2.AsyncBaseTransport):
    """Forwards to `inner`, then lets `rule` replace the answer; counts what passed by path.

    `refuse(request)` may answer instead of the provider: the request never reaches it.
    """

    def __init__(
        self,
        inner: httpx2.AsyncBaseTransport,
        rule: Rule,
        refuse: Callable[[httpx2.Request], httpx2.Response | None] | None = None,
    ) -> None:
        self.inner = inner
        self.rule = rule
        self.refuse = refuse
        self.requests: list[str] = []

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(f"{request.method} {request.url.path}?{request.url.query.decode()}")
        refusal = self.refuse(request) if self.refuse else None
        if refusal is not None:
            return refusal
        response = await self.inner.handle_async_request(request)
        body = await response.aread()
        replaced = self.rule(request, response, body)
        if asyncio.iscoroutine(replaced):
            replaced = await replaced
        if replaced is None:
            return httpx2.Response(response.status_code, headers=response.headers, content=body, request=request)
        return replaced

    def count(self, text: str) -> int:
        return sum(text in line for line in self.requests)

    async def aclose(self) -> None:
        await self.inner.aclose()


def json_answer(request: httpx2.Request, data: Any, status: int = 200, headers: dict[str, str] | None = None):
    return httpx2.Response(status, json=data, headers=headers or {}, request=request)


def rewrite_json(request: httpx2.Request, body: bytes, change: Callable[[dict[str, Any]], None]) -> httpx2.Response:
    """The answer with `change` applied to the video object (or to every object of a list)."""
    data = json.loads(body)
    for video in data["data"] if data.get("object") == "list" else [data]:
        change(video)
    return json_answer(request, data)


class _Chunks(httpx2.AsyncByteStream):
    def __init__(self, chunks: list[bytes], pause_s: float) -> None:
        self.chunks = chunks
        self.pause_s = pause_s

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            if self.pause_s:
                await asyncio.sleep(self.pause_s)
            yield chunk


def cut_body(request: httpx2.Request, body: bytes, *, keep: float, announce: bool) -> httpx2.Response:
    """The first `keep` share of the body, then a clean end: with or without the whole Content-Length."""
    headers = {"content-type": "video/mp4"}
    if announce:
        headers["content-length"] = str(len(body))
    return httpx2.Response(200, headers=headers, stream=_Chunks([body[: int(len(body) * keep)]], 0), request=request)


def trickle_body(request: httpx2.Request, body: bytes, *, seconds: float, pieces: int = 10) -> httpx2.Response:
    """The whole body, sent in `pieces` spread over `seconds`."""
    size = -(-len(body) // pieces)
    chunks = [body[i : i + size] for i in range(0, len(body), size)]
    headers = {"content-type": "video/mp4", "content-length": str(len(body))}
    return httpx2.Response(200, headers=headers, stream=_Chunks(chunks, seconds / len(chunks)), request=request)
