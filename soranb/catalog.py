"""The option tables of the Videos API: models, sizes, durations and prices.

They are data, kept in one place, so that when a provider adds a size or a
duration it is one edit here and every form, validator and price follows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

__all__ = [
    "DEFAULT_MODEL",
    "DEFAULT_SECONDS",
    "DEFAULT_SIZE",
    "EXTENSION_SECONDS",
    "MAX_CHARACTERS",
    "MAX_PROMPT_CHARS",
    "MODELS",
    "SECONDS",
    "SNAPSHOTS",
    "ModelSpec",
    "add_models",
    "base_model",
    "estimate_cost",
    "model_spec",
    "models_from_table",
    "parse_size",
    "render_seconds",
]

MAX_PROMPT_CHARS = 32_000
# The lengths a new video may have. The SDK's types (3.57) list 4, 8 and 12; OpenAI's later guide and
# its own `sora` command line add 16 and 20.
SECONDS: tuple[int, ...] = (4, 8, 12, 16, 20)
EXTENSION_SECONDS: tuple[int, ...] = (4, 8, 12, 16, 20)  # the length of the segment an extension adds
MAX_CHARACTERS = 2  # characters one video may feature
UNKNOWN_RENDER_SECONDS_PER_CLIP_SECOND = 15.0  # the pace assumed for a model the catalog does not know
LARGE_SIZE_RENDER_FACTOR = 1.5  # sizes above 720p (the 1024p and 1080p ones) took this much longer


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
_PRO_1080 = Decimal("0.70")

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
            "1920x1080": _PRO_1080,
            "1080x1920": _PRO_1080,
        },
        render_seconds_per_clip_second=30.0,
    ),
}

# Dated snapshots the API accepts under their own name (and echoes back): what each one is a version of.
SNAPSHOTS: dict[str, str] = {
    "sora-2-2025-10-06": "sora-2",
    "sora-2-pro-2025-10-06": "sora-2-pro",
    "sora-2-2025-12-08": "sora-2",
}

DEFAULT_MODEL = "sora-2"
DEFAULT_SIZE = "1280x720"
DEFAULT_SECONDS = 4


def model_spec(model: str) -> ModelSpec:
    """The spec of a known model (or of the model a dated snapshot is a version of); KeyError names them."""
    try:
        return MODELS[base_model(model)]
    except KeyError:
        raise KeyError(f"unknown model {model!r}; choose one of {', '.join(MODELS)}") from None


def base_model(model: str) -> str:
    """The model a dated snapshot is a version of ('sora-2-2025-10-06' -> 'sora-2'); other names unchanged."""
    return SNAPSHOTS.get(model, model)


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


def render_seconds(model: str, size: str, seconds: int) -> float:
    """How long the real service took to render a video: the model's pace per clip second, times the
    clip's seconds, 1.5x for sizes above 720p. The one job-duration model: the emulator renders at this
    pace (divided by its speed) and the poll schedule expects it until it has learned the provider's."""
    spec = MODELS.get(base_model(model))
    pace = spec.render_seconds_per_clip_second if spec is not None else UNKNOWN_RENDER_SECONDS_PER_CLIP_SECOND
    large = bool(size) and max(parse_size(size)) > 1280
    return seconds * pace * (LARGE_SIZE_RENDER_FACTOR if large else 1.0)


def models_from_table(table: Mapping[str, Any], where: str) -> list[ModelSpec]:
    """The models a user's TOML table describes (a `soranb-models.toml`'s `[models.NAME]`, or
    `[tool.soranb.models.NAME]` in pyproject.toml), for names a gateway or deployment serves:

        [models.studio-cam]
        like = "sora-2"                    # its sizes, seconds and pace (optional)
        sizes = ["1280x720", "720x1280"]   # else `like`'s
        seconds = [4, 8, 12]               # else `like`'s, else 4 to 20
        price_per_second = 0.25            # USD, every size; or a table: { "1280x720" = 0.25 }

    `ValueError` names the entry and what to change.
    """
    specs: list[ModelSpec] = []
    for name, entry in table.items():
        here = f"{where}: model {name!r}"
        if not isinstance(entry, Mapping) or not name.strip() or any(c.isspace() for c in name):
            raise ValueError(f"{here}: give a table like `[models.{name.strip() or 'NAME'}]` and a name without spaces")
        like = entry.get("like")
        base = MODELS.get(base_model(like)) if isinstance(like, str) else None
        if like is not None and base is None:
            raise ValueError(f"{here}: like = {like!r} is not a known model; use one of {', '.join(MODELS)}")
        sizes = entry.get("sizes", list(base.sizes) if base else None)
        if not (isinstance(sizes, list) and sizes and all(isinstance(x, str) and _is_size(x) for x in sizes)):
            raise ValueError(f'{here}: sizes must be a list like ["1280x720", "720x1280"] (or give `like`)')
        seconds = entry.get("seconds", list(base.seconds) if base else list(SECONDS))
        if not (isinstance(seconds, list) and seconds and all(_is_whole(x) and 0 < x <= 60 for x in seconds)):
            raise ValueError(f"{here}: seconds must be a list of whole seconds like [4, 8, 12]")
        price = entry.get("price_per_second")
        prices = price if isinstance(price, Mapping) else dict.fromkeys(sizes, price)
        try:
            per_size = {size: Decimal(str(prices[size])) for size in sizes}
        except (KeyError, InvalidOperation):
            raise ValueError(
                f"{here}: price_per_second must be USD per second of video, one number (0.25) or one per size"
            ) from None
        if any(not (value.is_finite() and value >= 0) for value in per_size.values()):
            raise ValueError(f"{here}: price_per_second must be 0 or more")
        pace = base.render_seconds_per_clip_second if base else UNKNOWN_RENDER_SECONDS_PER_CLIP_SECOND
        specs.append(ModelSpec(name, f"{name} (your catalog)", per_size, tuple(seconds), pace))
    return specs


def add_models(specs: Iterable[ModelSpec]) -> None:
    """Put a user's models into the one catalog every form, validator, price and budget reads."""
    for spec in specs:
        MODELS[spec.name] = spec


def _is_size(value: str) -> bool:
    width, _, height = value.partition("x")
    return width.isdigit() and height.isdigit() and int(width) > 0 and int(height) > 0


def _is_whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
