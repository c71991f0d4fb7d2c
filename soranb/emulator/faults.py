"""Fault injection: the failures a client of the Videos API must survive, on demand.

A seeded RNG decides per request whether one of FAULT_NAMES strikes, so a test
that sets `seed` sees the same sequence every run. A dropped connection is
signalled by raising `ConnectionDropped` out of the ASGI app; the two places
that carry requests (`EmulatorTransport` in-process, the uvicorn protocol in
`server.py`) turn it into what a client sees from a real dropped connection.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Mapping

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from soranb.emulator.wire import error_response

__all__ = [
    "FAULT_NAMES",
    "ConnectionDropped",
    "FaultMiddleware",
    "FaultPicker",
    "check_faults",
    "parse_fault",
    "parse_faults",
]

FAULT_NAMES: tuple[str, ...] = ("rate-limit", "server-error", "reset", "lost-response")


class ConnectionDropped(Exception):  # an event, not an error of the app
    """The emulator wants the connection gone without any response.

    `reset` asks for a TCP reset (RST) rather than an orderly close, the way a
    crashed proxy looks to the client.
    """

    def __init__(self, fault: str, *, reset: bool) -> None:
        super().__init__(f"soranb emulator dropped the connection ({fault})")
        self.fault = fault
        self.reset = reset


def parse_fault(text: str) -> tuple[str, float]:
    """'rate-limit=0.2' -> ('rate-limit', 0.2); the ValueError says what is allowed."""
    rule = f"write NAME=RATE with NAME one of {', '.join(FAULT_NAMES)} and RATE between 0 and 1"
    name, sep, rate_text = text.strip().partition("=")
    name = name.strip()
    if name not in FAULT_NAMES:
        raise ValueError(f"unknown fault {name!r} in {text!r}: {rule}")
    if not sep:
        raise ValueError(f"fault {text!r} has no rate: {rule}")
    try:
        rate = float(rate_text)
    except ValueError:
        raise ValueError(f"fault {text!r}: the rate {rate_text.strip()!r} is not a number; {rule}") from None
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"fault {text!r}: the rate {rate} is out of range; {rule}")
    return name, rate


def parse_faults(text: str) -> dict[str, float]:
    """'rate-limit=0.2,reset=0.1' -> {'rate-limit': 0.2, 'reset': 0.1}; empty text -> {}."""
    return dict(parse_fault(part) for part in text.split(",") if part.strip())


def check_faults(faults: Mapping[str, float]) -> dict[str, float]:
    """Validate a fault table given as a mapping (the same rules as `parse_fault`)."""
    return dict(parse_fault(f"{name}={rate}") for name, rate in faults.items())


def is_create_request(method: str, path: str) -> bool:
    """POST /v1/videos or POST /v1/videos/{id}/remix: the calls that make a job."""
    if method != "POST":
        return False
    parts = path.rstrip("/").split("/")
    return parts[1:] == ["v1", "videos"] or (len(parts) == 5 and parts[1:3] == ["v1", "videos"] and parts[4] == "remix")


class FaultPicker:
    """Draws, per request, which fault (if any) strikes; thread-safe and seeded.

    One draw per configured fault in FAULT_NAMES order, whether or not it can apply to
    this request, so the sequence of decisions depends only on the seed and the
    number of requests.
    """

    def __init__(self, faults: Mapping[str, float], seed: int | None) -> None:
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self.set_faults(faults)

    def set_faults(self, faults: Mapping[str, float]) -> None:
        """Change the rates on a running emulator (a diagnostics panel, a test that breaks things midway)."""
        checked = check_faults(faults)
        with self._lock:
            self._faults = [(name, checked[name]) for name in FAULT_NAMES if checked.get(name, 0.0) > 0.0]

    @property
    def faults(self) -> dict[str, float]:
        return dict(self._faults)

    def pick(self, method: str, path: str) -> str | None:
        if not self._faults or not path.startswith("/v1/"):
            return None
        with self._lock:
            draws = [(name, self._rng.random() < rate) for name, rate in self._faults]
        for name, hit in draws:
            if not hit:
                continue
            if name == "lost-response" and not is_create_request(method, path):
                continue
            return name
        return None

    def server_error_status(self) -> int:
        """500 or 503, as the real service answered either."""
        with self._lock:
            return 503 if self._rng.random() < 0.5 else 500


class FaultMiddleware:
    """ASGI middleware that lets the picked fault strike before (or after) the app runs."""

    def __init__(self, app: ASGIApp, picker: FaultPicker) -> None:
        self.app = app
        self.picker = picker

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        fault = self.picker.pick(scope["method"], scope["path"]) if scope["type"] == "http" else None
        if fault is None:
            await self.app(scope, receive, send)
        elif fault == "rate-limit":
            response = error_response(
                429,
                "Rate limit reached for requests to the soranb emulator. Please try again in 1s.",
                type_="requests",
                code="rate_limit_exceeded",
                headers={"Retry-After": "1", "retry-after-ms": "1000"},
            )
            await response(scope, receive, send)
        elif fault == "server-error":
            status = self.picker.server_error_status()
            message = (
                "The server is overloaded, please try again later."
                if status == 503
                else "The server had an error while processing your request. Sorry about that!"
            )
            await error_response(status, message, type_="server_error")(scope, receive, send)
        elif fault == "reset":
            raise ConnectionDropped(fault, reset=True)
        else:  # lost-response: do the work, then lose the answer

            async def discard(message: Message) -> None:
                return None

            await self.app(scope, receive, discard)
            raise ConnectionDropped(fault, reset=False)
