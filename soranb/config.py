"""Settings: the one place the environment and a `.env` file are read.

Everything else receives a `Settings` object. Secrets are wrapped in `Secret`,
whose repr never shows the value, so a settings object can be printed, logged
or displayed in a notebook without leaking a key.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from dotenv import dotenv_values

from .errors import ConfigError

__all__ = ["DEFAULT_DATA_DIR_NAME", "Secret", "Settings", "find_project_root"]

DEFAULT_DATA_DIR_NAME = "soranb-data"
_ROOT_MARKERS = ("pyproject.toml", ".git", ".env", DEFAULT_DATA_DIR_NAME)

ProviderKind = Literal["emulator", "openai"]
StoreKind = Literal["local", "supabase"]


class Secret:
    """A string that never shows itself: `str()`, `repr()` and f-strings print a mask."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)


def find_project_root(start: Path | None = None) -> Path:
    """The folder whose `soranb-data` is the default history.

    The CLI runs from the project root and a notebook kernel from `notebooks/`:
    both walk up to the nearest folder holding a project marker, so they share
    one history. Without any marker, the starting folder is used.
    """
    start = (start or Path.cwd()).resolve()
    for folder in (start, *start.parents):
        if any((folder / marker).exists() for marker in _ROOT_MARKERS):
            return folder
    return start


def _number(env: Mapping[str, str], name: str, default: float, *, minimum: float = 0.0) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number; set it to e.g. {default:g}") from None
    if value < minimum:
        raise ConfigError(f"{name}={raw!r} must be at least {minimum:g}")
    return value


@dataclass(frozen=True)
class Settings:
    """Which provider and store soranb talks to, and how patiently."""

    provider: ProviderKind = "emulator"
    openai_api_key: Secret | None = None
    openai_base_url: str | None = None
    store_kind: StoreKind = "local"
    data_dir: Path = field(default_factory=lambda: Path(DEFAULT_DATA_DIR_NAME).resolve())
    supabase_url: str | None = None
    supabase_key: Secret | None = None
    supabase_email: str | None = None
    supabase_password: Secret | None = None
    supabase_access_token: Secret | None = None
    request_timeout_s: float = 60.0
    poll_interval_max_s: float = 15.0  # the longest the poller waits between refreshes of open jobs
    max_concurrent_jobs: int = 4
    emulator_speed: float | None = None  # None: the emulator's in-process default
    emulator_url: str | None = None  # an emulator served elsewhere (`soranb emulator`)
    sources: Mapping[str, str] = field(default_factory=dict, compare=False)

    # -- construction ----------------------------------------------------------
    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        dotenv: Path | Literal[False] | None = None,
        cwd: Path | None = None,
    ) -> Settings:
        """Read settings: process environment first, then `.env` at the project root, then defaults.

        `environ` replaces `os.environ` (tests); `dotenv=False` skips the `.env` file.
        """
        root = find_project_root(cwd)
        env_file = root / ".env" if dotenv is None else dotenv
        file_values: dict[str, str] = {}
        if env_file and Path(env_file).is_file():
            file_values = {k: v for k, v in dotenv_values(env_file).items() if v is not None}
        process = dict(os.environ if environ is None else environ)
        sources: dict[str, str] = {}

        def get(name: str) -> str | None:
            if process.get(name):
                sources[name] = "environment"
                return process[name]
            if file_values.get(name):
                sources[name] = f".env file ({env_file})"
                return file_values[name]
            return None

        key = get("OPENAI_API_KEY")
        base_url = get("OPENAI_BASE_URL")
        provider_raw = (get("SORANB_PROVIDER") or "").lower()
        if provider_raw and provider_raw not in ("emulator", "openai"):
            raise ConfigError(f"SORANB_PROVIDER={provider_raw!r}: use 'emulator' or 'openai'")
        if provider_raw:
            provider: ProviderKind = provider_raw  # type: ignore[assignment]
        else:
            provider = "openai" if key else "emulator"
            sources["SORANB_PROVIDER"] = "default: OPENAI_API_KEY is set" if key else "default: no OPENAI_API_KEY set"

        supabase_url = get("SUPABASE_URL")
        store_raw = (get("SORANB_STORE") or "").lower()
        if store_raw and store_raw not in ("local", "supabase"):
            raise ConfigError(f"SORANB_STORE={store_raw!r}: use 'local' or 'supabase'")
        if store_raw:
            store_kind: StoreKind = store_raw  # type: ignore[assignment]
        else:
            store_kind = "supabase" if supabase_url else "local"
            sources["SORANB_STORE"] = "default: SUPABASE_URL is set" if supabase_url else "default"

        data_raw = get("SORANB_DATA_DIR")
        if data_raw:
            data_dir = Path(data_raw).expanduser()
            data_dir = data_dir if data_dir.is_absolute() else (root / data_dir)
        else:
            data_dir = root / DEFAULT_DATA_DIR_NAME
            sources["SORANB_DATA_DIR"] = f"default: {DEFAULT_DATA_DIR_NAME} in the project root {root}"

        merged = {**file_values, **{k: v for k, v in process.items() if v}}
        speed_raw = get("SORANB_EMULATOR_SPEED")
        settings = cls(
            provider=provider,
            openai_api_key=Secret(key) if key else None,
            openai_base_url=base_url,
            store_kind=store_kind,
            data_dir=data_dir.resolve(),
            supabase_url=supabase_url,
            supabase_key=_secret(get("SUPABASE_KEY") or get("SUPABASE_ANON_KEY")),
            supabase_email=get("SUPABASE_EMAIL"),
            supabase_password=_secret(get("SUPABASE_PASSWORD")),
            supabase_access_token=_secret(get("SUPABASE_ACCESS_TOKEN")),
            request_timeout_s=_number(merged, "SORANB_TIMEOUT", 60.0, minimum=1),
            poll_interval_max_s=_number(merged, "SORANB_POLL_INTERVAL_MAX", 15.0, minimum=0.05),
            max_concurrent_jobs=int(_number(merged, "SORANB_MAX_CONCURRENT_JOBS", 4, minimum=1)),
            emulator_speed=_number(merged, "SORANB_EMULATOR_SPEED", 0, minimum=0.001) if speed_raw else None,
            emulator_url=get("SORANB_EMULATOR_URL"),
            sources=sources,
        )
        for name in ("SORANB_TIMEOUT", "SORANB_POLL_INTERVAL_MAX", "SORANB_MAX_CONCURRENT_JOBS"):
            get(name)
        return settings

    def with_overrides(self, **changes: Any) -> Settings:
        """A copy with some settings changed (e.g. a key typed into a password field)."""
        sources = dict(self.sources)
        for name, value in list(changes.items()):
            if name in _SECRET_FIELDS and isinstance(value, str):
                changes[name] = Secret(value) if value else None
            sources[name] = "set in this session"
        if "openai_api_key" in changes and "provider" not in changes and changes["openai_api_key"]:
            changes["provider"] = "openai"
        return dataclasses.replace(self, sources=sources, **changes)

    # -- questions the views ask --------------------------------------------------
    @property
    def is_paid_provider(self) -> bool:
        """True when a job may cost money (anything but the built-in emulator)."""
        return self.provider != "emulator"

    def missing_secrets(self) -> list[str]:
        """Environment names of the secrets the chosen provider and store still need."""
        missing = []
        if self.provider == "openai" and not self.openai_api_key:
            missing.append("OPENAI_API_KEY")
        if self.store_kind == "supabase":
            if not self.supabase_url:
                missing.append("SUPABASE_URL")
            if not self.supabase_key:
                missing.append("SUPABASE_KEY")
        return missing

    def validate(self) -> None:
        """Raise ConfigError naming every missing setting."""
        missing = self.missing_secrets()
        if missing:
            raise ConfigError(f"missing {', '.join(missing)}: set it in the environment or in .env at the project root")

    def secrets(self) -> list[str]:
        """The secret values, for redaction in logs (never for display)."""
        values = [getattr(self, name) for name in _SECRET_FIELDS]
        return [v.reveal() for v in values if v]


_SECRET_FIELDS = ("openai_api_key", "supabase_key", "supabase_password", "supabase_access_token")


def _secret(value: str | None) -> Secret | None:
    return Secret(value) if value else None
