"""soranb's offline Videos API: real MP4s, real status transitions, real errors.

    from soranb.emulator import EmulatorConfig, EmulatorTransport, create_app
    app = create_app(EmulatorConfig(speed=IN_PROCESS_SPEED))
    client = openai.AsyncOpenAI(base_url=EMULATOR_BASE_URL, api_key="x",
                                http_client=httpx2.AsyncClient(transport=EmulatorTransport(app)))

or over a socket: `serve(EmulatorConfig.from_env(), port=8000)`. uvicorn is
imported only by `serve` and `uvicorn_config` (from `soranb.emulator.server`).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from soranb.emulator.app import EmulatorState, create_app
from soranb.emulator.config import IN_PROCESS_SPEED, EmulatorConfig
from soranb.emulator.faults import FAULT_NAMES, ConnectionDropped, parse_fault, parse_faults
from soranb.emulator.transport import EMULATOR_BASE_URL, EmulatorTransport

if TYPE_CHECKING:
    from soranb.emulator.server import serve, uvicorn_config

__all__ = [
    "EMULATOR_BASE_URL",
    "FAULT_NAMES",
    "IN_PROCESS_SPEED",
    "ConnectionDropped",
    "EmulatorConfig",
    "EmulatorState",
    "EmulatorTransport",
    "create_app",
    "parse_fault",
    "parse_faults",
    "serve",
    "uvicorn_config",
]


def __getattr__(name: str) -> Any:
    """`serve` and `uvicorn_config` load uvicorn on first use: the in-process emulator never needs it."""
    if name in ("serve", "uvicorn_config"):
        return getattr(importlib.import_module("soranb.emulator.server"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
