"""The option tables of the Videos API: models, sizes, durations and prices.

They are data, kept in one place, so that when a provider adds a size or a
duration it is one edit here and every form, validator and price follows.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

__all__ = [
    "DEFAULT_MODEL",
    "DEFAULT_SECONDS",
    "DEFAULT_SIZE",
    "MAX_PROMPT_CHARS",
    "MODELS",
    "SECONDS",
    "ModelSpec",
    "estimate_cost",
    "model_spec",
    "parse_size",
]

MAX_PROMPT_CHARS = 32_000
SECONDS: tuple[int, ...] = (4, 8, 12)


@dataclass(frozen=True)
class ModelSpec:
    """What one model accepts and what a second of its video costs, per size."""

    name: str
    label: str
    price_per_second: dict[str, Decimal]  # size -> USD per second of video
    seconds: tuple[int, ...] = SECONDS
    render_seconds_per_clip_second: float = 15.0  # how slow the real service was

    @property
    def sizes(self) -> tuple[str, ...]:
        return tuple(self.price_per_second)


_SORA2_720 = Decimal("0.10")
_PRO_720 = Decimal("0.30")
_PRO_1024 = Decimal("0.50")

MODELS: dict[str, ModelSpec] = {
    "sora-2": ModelSpec(
        name="sora-2",
        label="Sora 2 (fast)",
        price_per_second={"1280x720": _SORA2_720, "720x1280": _SORA2_720},
        render_seconds_per_clip_second=15.0,
    ),
    "sora-2-pro": ModelSpec(
        name="sora-2-pro",
        label="Sora 2 Pro (high quality)",
        price_per_second={
            "1280x720": _PRO_720,
            "720x1280": _PRO_720,
            "1792x1024": _PRO_1024,
            "1024x1792": _PRO_1024,
        },
        render_seconds_per_clip_second=30.0,
    ),
}

DEFAULT_MODEL = "sora-2"
DEFAULT_SIZE = "1280x720"
DEFAULT_SECONDS = 4


def model_spec(model: str) -> ModelSpec:
    """The spec of a known model; KeyError names the ones that exist."""
    try:
        return MODELS[model]
    except KeyError:
        raise KeyError(f"unknown model {model!r}; choose one of {', '.join(MODELS)}") from None


def parse_size(size: str) -> tuple[int, int]:
    """'1280x720' -> (1280, 720)."""
    width, _, height = size.partition("x")
    return int(width), int(height)


def estimate_cost(model: str, size: str, seconds: int) -> Decimal:
    """The list price in USD of one video; raises KeyError for an unknown model or size."""
    spec = model_spec(model)
    try:
        per_second = spec.price_per_second[size]
    except KeyError:
        raise KeyError(f"{model} does not offer size {size}; choose one of {', '.join(spec.sizes)}") from None
    return per_second * seconds
