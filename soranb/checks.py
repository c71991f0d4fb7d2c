"""Diagnostics results: what `soranb doctor` prints and the diagnostics panel shows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["CHECKS", "CheckResult", "CheckStatus"]

CheckStatus = Literal["ok", "failed", "skipped"]
CHECKS: tuple[str, ...] = ("configuration", "provider", "store", "schema", "generation")


@dataclass(frozen=True)
class CheckResult:
    name: str
    status: CheckStatus
    summary: str  # one line: what was found, or what to change
    detail: str = ""
    duration_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status != "failed"
