"""In-process transport: the emulator app behind an httpx2 client, no socket needed.

`httpx2.ASGITransport` would let an app's exception escape as itself; a dropped
connection in the emulator must instead look exactly like one on the network,
so the SDK classifies it as `APIConnectionError` and retries it (or not) as it
would for real.
"""

from __future__ import annotations

import httpx2
from starlette.types import ASGIApp

from soranb.emulator.faults import ConnectionDropped

__all__ = ["EMULATOR_BASE_URL", "EmulatorTransport"]

EMULATOR_BASE_URL = "http://emulator.soranb/v1"


class EmulatorTransport(httpx2.AsyncBaseTransport):
    """An httpx2 transport that runs requests through the emulator app in the caller's event loop.

    Note: like `httpx2.ASGITransport`, it collects a whole response body before returning it, so
    memory measurements of streamed downloads need the emulator served over a socket (`serve`).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._inner = httpx2.ASGITransport(app=app)

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        try:
            return await self._inner.handle_async_request(request)
        except ConnectionDropped as dropped:
            if dropped.reset:
                raise httpx2.ReadError("[Errno 104] Connection reset by peer", request=request) from None
            raise httpx2.RemoteProtocolError(
                "Server disconnected without sending a response.", request=request
            ) from None

    async def aclose(self) -> None:
        await self._inner.aclose()
