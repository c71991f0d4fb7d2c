"""Serving the emulator over a real socket with uvicorn, dropped connections included.

uvicorn answers 500 when an app raises before it starts a response, but a
`reset` or `lost-response` fault must look like a dead connection: no status
line at all. `DroppingH11Protocol` is uvicorn's h11 protocol with the app
wrapped so that `ConnectionDropped` aborts the TCP transport instead (with
SO_LINGER 0 for a reset, so the client gets an RST) and marks the cycle
disconnected, which keeps uvicorn from writing its 500.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import struct
from typing import Any

import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from soranb.emulator.app import create_app
from soranb.emulator.config import EmulatorConfig
from soranb.emulator.faults import ConnectionDropped

__all__ = ["DroppingH11Protocol", "exposure_warning", "serve", "uvicorn_config"]

log = logging.getLogger("soranb.emulator")


class DroppingH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, except that `ConnectionDropped` from the app drops the connection."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.app = _DropOnSignal(self.app, self)


class _DropOnSignal:
    def __init__(self, app: ASGIApp, protocol: DroppingH11Protocol) -> None:
        self.app = app
        self.protocol = protocol

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        except ConnectionDropped as dropped:
            transport = self.protocol.transport
            if dropped.reset:
                sock = transport.get_extra_info("socket")
                if sock is not None:  # linger 0: close() sends RST instead of FIN
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            if self.protocol.cycle is not None:
                self.protocol.cycle.disconnected = True  # no 500 from uvicorn after we return
            transport.abort()
            await asyncio.sleep(0)  # let connection_lost run before uvicorn looks at the cycle


def exposure_warning(host: str, api_key: str | None) -> str | None:
    """A warning when `host` lets other machines reach the emulator (anything but loopback), or None."""
    name = host.strip("[]")
    if name == "localhost":
        return None
    try:
        if ipaddress.ip_address(name).is_loopback:
            return None
    except ValueError:
        pass  # a host name: it may resolve to any interface
    key = (
        "only requests with that API key are served"
        if api_key
        else "any bearer key is accepted; set --api-key or SORANB_EMULATOR_API_KEY to require one"
    )
    return (
        f"warning: the emulator listens on {host}, so other machines on the network can reach it "
        f"(it renders on this machine's CPU and disk); {key}. Use --host 127.0.0.1 to keep it local."
    )


def uvicorn_config(app: ASGIApp, host: str = "127.0.0.1", port: int = 8000, **kwargs: Any) -> uvicorn.Config:
    """A uvicorn.Config serving an emulator app with dropping connections and soranb's own request log."""
    options: dict[str, Any] = {"http": DroppingH11Protocol, "access_log": False, "log_level": "warning"}
    options.update(kwargs)
    return uvicorn.Config(app, host=host, port=port, **options)


def serve(config: EmulatorConfig | None = None, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Run the emulator until interrupted (blocking); one log line per request on `soranb.emulator`."""
    config = config or EmulatorConfig()
    if not log.handlers and not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    log.setLevel(logging.INFO)
    app = create_app(config)
    log.info("soranb emulator on http://%s:%d/v1 (speed %gx)", host, port, config.speed)
    try:
        uvicorn.Server(uvicorn_config(app, host, port)).run()
    finally:
        app.state.emulator.close()
