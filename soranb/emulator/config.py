"""How an emulator behaves: speed, latency, faults, moderation, keys, retired models.

One frozen dataclass, built in code or from `SORANB_EMULATOR_*` variables, so
the notebook, the command line and the tests configure the emulator the same way.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from soranb.catalog import render_seconds
from soranb.config import parse_number
from soranb.emulator.faults import check_faults, parse_faults
from soranb.emulator.webhooks import check_webhook_secret, check_webhook_urls
from soranb.errors import ConfigError

__all__ = ["ENV_PREFIX", "IN_PROCESS_SPEED", "EmulatorConfig"]

ENV_PREFIX = "SORANB_EMULATOR_"

# In a notebook nobody wants to wait a real minute: at 6x a 4 s sora-2 clip (60 s at 1x) is ready in 10 s.
IN_PROCESS_SPEED = 6.0
ID_STYLES = ("openai", "gateway")  # gateway: ids as LiteLLM's proxy makes them (`video_` + base64, ~340 chars)


@dataclass(frozen=True)
class EmulatorConfig:
    """Knobs of one emulator. `speed` divides every job's duration; 1.0 is as slow as the real service."""

    speed: float = 1.0
    latency_ms: int = 0
    faults: Mapping[str, float] = field(default_factory=dict)
    moderation_words: tuple[str, ...] = ("moderation-test",)
    expires_after_s: float = 3600
    state_dir: Path | None = None
    api_key: str | None = None
    retired_models: frozenset[str] = frozenset()
    seed: int | None = None
    clock: Callable[[], float] = time.time
    webhook_urls: tuple[str, ...] = ()  # endpoints that get signed video.completed / video.failed events
    webhook_secret: str | None = field(default=None, repr=False)
    webhook_retry_delays: tuple[float, ...] = (5.0, 30.0, 120.0, 600.0)  # seconds between delivery attempts
    id_style: str = "openai"  # one of ID_STYLES: the shape of the job ids it hands out
    variants: bool = True  # False: every content variant answers the MP4, as a gateway that ignores `variant` does
    # Azure OpenAI's v1 API when set: deployment name -> model, served under /openai/v1/ with `api-key` auth
    deployments: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.speed > 0:
            raise ValueError(f"speed must be greater than 0, got {self.speed}")
        if self.latency_ms < 0:
            raise ValueError(f"latency_ms must be 0 or more, got {self.latency_ms}")
        if self.expires_after_s <= 0:
            raise ValueError(f"expires_after_s must be greater than 0, got {self.expires_after_s}")
        if self.id_style not in ID_STYLES:
            raise ValueError(f"id_style must be one of {', '.join(ID_STYLES)}, got {self.id_style!r}")
        object.__setattr__(self, "faults", check_faults(self.faults))
        object.__setattr__(self, "moderation_words", tuple(w.lower() for w in self.moderation_words if w))
        object.__setattr__(self, "retired_models", frozenset(self.retired_models))
        if self.state_dir is not None:
            object.__setattr__(self, "state_dir", Path(self.state_dir))
        object.__setattr__(self, "webhook_urls", check_webhook_urls(self.webhook_urls))
        if self.webhook_secret is not None:
            check_webhook_secret(self.webhook_secret)
        if self.webhook_urls and self.webhook_secret is None:
            raise ValueError(
                f"webhook URLs need a secret to sign with: set --webhook-secret or {ENV_PREFIX}WEBHOOK_SECRET"
            )

    def job_duration(self, model: str, size: str, seconds: int) -> float:
        """Wall seconds a job takes at this speed: the catalog's render time (`catalog.render_seconds`)."""
        return render_seconds(model, size, seconds) / self.speed

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> EmulatorConfig:
        """Read SORANB_EMULATOR_SPEED, _LATENCY_MS, _FAULTS, _MODERATION_WORDS, _API_KEY, _RETIRED_MODELS,
        _WEBHOOK_URLS (comma-separated), _WEBHOOK_SECRET, _ID_STYLE (and _STATE_DIR, _SEED, _EXPIRES_AFTER_S); unset
        ones keep their defaults, `overrides` win."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}

        def get(name: str) -> str | None:
            raw = env.get(ENV_PREFIX + name)
            return raw.strip() if raw is not None and raw.strip() else None

        for name, key, kind in (
            ("SPEED", "speed", float),
            ("LATENCY_MS", "latency_ms", int),
            ("SEED", "seed", int),
            ("EXPIRES_AFTER_S", "expires_after_s", float),
        ):
            if (raw := get(name)) is not None:
                try:
                    values[key] = parse_number(ENV_PREFIX + name, raw, kind)
                except ConfigError as exc:  # the emulator's settings errors are ValueErrors, as its others
                    raise ValueError(str(exc)) from None
        if (faults := get("FAULTS")) is not None:
            try:
                values["faults"] = parse_faults(faults)
            except ValueError as exc:
                raise ValueError(f"{ENV_PREFIX}FAULTS: {exc}") from None
        if (words := env.get(ENV_PREFIX + "MODERATION_WORDS")) is not None:
            values["moderation_words"] = _split(words)
        if (api_key := get("API_KEY")) is not None:
            values["api_key"] = api_key
        if (retired := get("RETIRED_MODELS")) is not None:
            values["retired_models"] = frozenset(_split(retired))
        if (urls := get("WEBHOOK_URLS")) is not None:
            values["webhook_urls"] = _split(urls)
        if (secret := get("WEBHOOK_SECRET")) is not None:
            values["webhook_secret"] = secret
        if (id_style := get("ID_STYLE")) is not None:
            values["id_style"] = id_style
        if (deployments := get("DEPLOYMENTS")) is not None:
            pairs = [item.partition("=") for item in _split(deployments)]
            if not all(name and sep and model for name, sep, model in pairs):
                raise ValueError(f"{ENV_PREFIX}DEPLOYMENTS: give deployments as NAME=MODEL, e.g. my-sora=sora-2")
            values["deployments"] = {name.strip(): model.strip() for name, _, model in pairs}
        if (variants := get("VARIANTS")) is not None:
            if variants.lower() not in ("0", "1", "true", "false"):
                raise ValueError(f"{ENV_PREFIX}VARIANTS must be 1 (serve each variant) or 0 (the MP4 for all)")
            values["variants"] = variants.lower() in ("1", "true")
        if (state_dir := get("STATE_DIR")) is not None:
            values["state_dir"] = Path(state_dir).expanduser()
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]


def _split(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())
