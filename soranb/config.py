"""Settings: where soranb's settings are read, from the environment and a `.env` file.

Everything else receives a `Settings` object. Two readers keep to their own variables: the
emulator's knobs (`SORANB_EMULATOR_FAULTS` and the other `EmulatorConfig.from_env` names) and the
Jupyter server's base URL that `jupyter.media_src` reads in a kernel. Every number, theirs too,
goes through `parse_number`. Secrets are wrapped in `Secret`,
whose repr never shows the value, so a settings object can be printed, logged
or displayed in a notebook without leaking a key.
"""

from __future__ import annotations

import dataclasses
import os
import re
import stat
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

from dotenv import dotenv_values

from .catalog import ModelSpec, models_from_table
from .debuglog import url_secrets
from .errors import ConfigError

__all__ = [
    "DEFAULT_DATA_DIR_NAME",
    "KEYRING_SERVICE",
    "Secret",
    "Settings",
    "data_dir_problem",
    "env_file_problem",
    "find_project_root",
    "make_data_dir",
    "parse_number",
]

DEFAULT_DATA_DIR_NAME = "soranb-data"
KEYRING_SERVICE = "soranb"  # where the notebook's credentials field saves a key when asked to
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

Number = TypeVar("Number", int, float, Decimal)
ProviderKind = Literal["emulator", "openai", "azure"]
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
    """The folder whose `soranb-data` is the default history and whose `.env` is read.

    The CLI runs from the project root and a notebook kernel from `notebooks/`: both walk up to
    the nearest real project marker, so they share one history. Only a `.git` or a `pyproject.toml`
    that names soranb (`name = "soranb"` or a `[tool.soranb]` table), owned by this user, is a
    marker: a `.env` or `soranb-data` planted in a shared parent folder never makes that folder the
    root. Without a marker, the starting folder is the root.
    """
    start = (start or Path.cwd()).resolve()
    for folder in (start, *start.parents):
        if _is_project_marker(folder):
            return folder
    return start


def _is_project_marker(folder: Path) -> bool:
    git = folder / ".git"
    if _owned_by_this_user(git):
        return True
    pyproject = folder / "pyproject.toml"
    if not pyproject.is_file() or not _owned_by_this_user(pyproject):
        return False
    try:
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return False
    project = data.get("project")
    tool = data.get("tool")
    return (isinstance(project, dict) and project.get("name") == "soranb") or (
        isinstance(tool, dict) and "soranb" in tool
    )


def _owned_by_this_user(path: Path) -> bool:
    try:
        owner = path.lstat().st_uid
    except OSError:
        return False
    return not hasattr(os, "getuid") or owner in (os.getuid(), 0)


def env_file_problem(path: Path) -> str | None:
    """Why the `.env` at `path` must not be trusted with keys, or None when it may be read.

    Another user who can write it could point `OPENAI_BASE_URL` at their own server and receive
    the key, so it must belong to this user and be writable by nobody else.
    """
    try:
        info = path.stat()
    except OSError as exc:
        return f"it cannot be read ({exc.strerror or exc})"
    if hasattr(os, "getuid") and info.st_uid != os.getuid():
        return f"it belongs to another user (uid {info.st_uid}); use a .env of your own"
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"other users can change it (group- or world-writable); run: chmod 600 {path}"
    return None


# What in the data folder decides what is sent on this user's key: the records, and the key that signs them.
_DATA_FILES = ("soranb.db", "soranb.db-wal", "installation.key", "sends.db", "sends.db-journal", "sends.db.made")


def data_dir_problem(folder: Path) -> str | None:
    """Why the data folder must not be used, or None (also when it does not exist yet).

    Whoever can write the folder, its database or its signing key can plant pending records that
    soranb would send, and bill, on this user's key: it is trusted only as a `.env` is.
    """
    for path in (folder, *(folder / name for name in _DATA_FILES)):
        what = "it" if path == folder else str(path)
        try:
            info = path.stat()
        except FileNotFoundError:
            continue
        except OSError as exc:
            return f"{what} cannot be checked ({exc.strerror or exc}); set SORANB_DATA_DIR to a folder of your own"
        if hasattr(os, "getuid") and info.st_uid != os.getuid():
            return (
                f"{what} belongs to another user (uid {info.st_uid}), who could plant records that soranb "
                "would send on your key; set SORANB_DATA_DIR to a folder of your own"
            )
        if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            return (
                f"other users can change {what} (group- or world-writable) and plant records that soranb would "
                f"send on your key; run: chmod {'700' if path == folder else '600'} {path}, "
                "or set SORANB_DATA_DIR to a folder of your own"
            )
    return None


def make_data_dir(folder: Path) -> None:
    """Create the data folder for this user only (0o700, whatever the umask), then refuse it with a
    ConfigError if another user owns it or could change it (see `data_dir_problem`). OSError when it
    cannot be made."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    problem = data_dir_problem(folder)
    if problem is not None:
        raise ConfigError(f"the data folder {folder} is not used: {problem}")


def _check_secret(name: str, value: str) -> str:
    """A key with a control character (a pasted line break, a tab) would be refused deep inside the
    HTTP library with the key in the message: refuse it here, without showing it."""
    if _CONTROL.search(value):
        raise ConfigError(
            f"{name} contains a control character (a line break, tab or similar, often pasted along with "
            "the key): set it again without it"
        )
    return value


def parse_number(name: str, raw: str, kind: type[Number], *, minimum: float | None = None, example: str = "") -> Number:
    """The one parser of numeric settings (soranb's and the emulator's): a finite `kind` of at least
    `minimum`, or a `ConfigError` that names the setting and says what to set instead.

    A whole number is required for `int` (`4`, not `2.5`); a `Decimal` (an amount of money) may
    start with `$`.
    """
    hint = f"; set it to e.g. {example}" if example else ""
    text = raw.strip().removeprefix("$") if kind is Decimal else raw.strip()
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ConfigError(f"{name}={raw!r} is not a number{hint}") from None
    if not value.is_finite():
        raise ConfigError(f"{name}={raw!r} is not a finite number{hint}")
    if kind is int and value != value.to_integral_value():
        raise ConfigError(f"{name}={raw!r} must be a whole number{hint}")
    if minimum is not None and value < Decimal(str(minimum)):
        raise ConfigError(f"{name}={raw!r} must be at least {minimum:g}{hint}")
    return kind(value)


class _Reader:
    """Reads settings from the process environment, then a `.env` file, and notes where each came from."""

    def __init__(
        self,
        process: Mapping[str, str],
        file_values: Mapping[str, str],
        env_file: Path | None,
        *,
        use_keyring: bool,
    ) -> None:
        self._process = process
        self._file = file_values
        self._env_file = env_file
        self._use_keyring = use_keyring
        self.sources: dict[str, str] = {}

    def get(self, name: str) -> str | None:
        if self._process.get(name):
            self.sources[name] = "environment"
            return self._process[name]
        if self._file.get(name):
            self.sources[name] = f".env file ({self._env_file})"
            return self._file[name]
        return None

    def choice(self, name: str, options: tuple[str, ...], *, default_when: bool, why: str) -> str:
        """`options[1]` when `default_when`, else `options[0]`, unless the setting names one."""
        raw = (self.get(name) or "").lower()
        if raw:
            if raw not in options:
                raise ConfigError(f"{name}={raw!r}: use {', '.join(map(repr, options[:-1]))} or {options[-1]!r}")
            return raw
        self.sources[name] = f"default: {why}"
        return options[1] if default_when else options[0]

    def number(self, name: str, default: Number, *, minimum: float) -> Number:
        raw = self.get(name)
        if raw is None:
            return default
        return parse_number(name, raw, type(default), minimum=minimum, example=f"{default:g}")

    def provider(self, *, ask_keyring: bool) -> tuple[str, Secret | None]:
        """SORANB_PROVIDER and the OpenAI key; without a choice, `azure` when AZURE_OPENAI_ENDPOINT is set,
        else `openai` exactly when there is a key.

        The keyring is asked for the key when `ask_keyring`, or when SORANB_PROVIDER names openai.
        """
        named = (self.get("SORANB_PROVIDER") or "").lower()
        if not named and self.get("AZURE_OPENAI_ENDPOINT"):
            self.sources["SORANB_PROVIDER"] = "default: AZURE_OPENAI_ENDPOINT is set"
            return "azure", None
        key = self.secret("OPENAI_API_KEY", keyring=ask_keyring or named == "openai")
        why = "OPENAI_API_KEY is set" if key else "no OPENAI_API_KEY set"
        return self.choice("SORANB_PROVIDER", ("emulator", "openai", "azure"), default_when=bool(key), why=why), key

    def data_dir(self, root: Path) -> Path:
        """SORANB_DATA_DIR (relative to the project root), else `soranb-data` in the project root."""
        raw = self.get("SORANB_DATA_DIR")
        if not raw:
            self.sources["SORANB_DATA_DIR"] = f"default: {DEFAULT_DATA_DIR_NAME} in the project root {root}"
            return (root / DEFAULT_DATA_DIR_NAME).resolve()
        folder = Path(raw).expanduser()
        return (folder if folder.is_absolute() else root / folder).resolve()

    def secret(self, *names: str, keyring: bool = True) -> Secret | None:
        """A secret from the environment, `.env`, or (last) the system keyring where the notebook saved it."""
        for name in names:
            value = self.get(name) or (self._from_keyring(name) if keyring else None)
            if value:
                return Secret(_check_secret(name, value))
        return None

    def _from_keyring(self, name: str) -> str | None:
        if not self._use_keyring:
            return None
        try:
            import keyring

            value = keyring.get_password(KEYRING_SERVICE, name)
        except Exception:  # no keyring package or no backend on this machine: not an error
            return None
        if value:
            self.sources[name] = "system keyring"
        return value or None


@dataclass(frozen=True)
class Settings:
    """Which provider and store soranb talks to, and how patiently."""

    provider: ProviderKind = "emulator"
    openai_api_key: Secret | None = None
    openai_base_url: str | None = field(default=None, repr=False)  # may hold user:pass
    azure_endpoint: str | None = field(default=None, repr=False)  # https://<resource>.openai.azure.com
    azure_api_key: Secret | None = None  # sent as the `api-key` header
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
    emulator_url: str | None = field(default=None, repr=False)  # an emulator served elsewhere (`soranb emulator`)
    emulator_api_key: Secret | None = None  # the key that emulator requires, if it requires one
    budget_usd: Decimal | None = None  # the most a day may cost (list prices); None: no limit
    session_budget_usd: Decimal | None = None  # the most one service (a kernel, a CLI run) may spend
    webhook_secret: Secret | None = None  # set: a loopback receiver finishes jobs on signed events (soranb.webhooks)
    webhook_host: str = "127.0.0.1"
    webhook_port: int = 0  # 0: any free port (enough for the in-process emulator, which is told the URL)
    models: tuple[ModelSpec, ...] = ()  # a user's own models, sizes and prices (soranb-models.toml)
    env_file: Path | None = None  # the .env that was read, if any
    env_file_ignored: str | None = None  # why a .env at the project root was not read
    sources: Mapping[str, str] = field(default_factory=dict, compare=False)

    # -- construction ----------------------------------------------------------
    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        dotenv: Path | Literal[False] | None = None,
        cwd: Path | None = None,
        provider_keys: bool = True,
    ) -> Settings:
        """Read settings: process environment first, then `.env` at the project root, then defaults.

        Secrets may also come from the system keyring (saved there by the notebook's credentials
        field). `environ` replaces `os.environ` and skips the keyring (tests); `dotenv=False`
        skips the `.env` file. The keyring (slow to load) is asked only for what will be used: the
        store's secrets for a Supabase store, and the OpenAI key unless `provider_keys=False` (a
        command that never builds the provider, such as `soranb list`) and SORANB_PROVIDER does not
        name `openai`; without that key the provider then defaults to the emulator.
        """
        root = find_project_root(cwd)
        env_file, file_values, ignored = _read_env_file(
            root / ".env" if dotenv is None else Path(dotenv) if dotenv else None
        )
        process = dict(os.environ if environ is None else environ)
        read = _Reader(process, file_values, env_file, use_keyring=environ is None)

        provider, key = read.provider(ask_keyring=provider_keys)
        supabase_url = read.get("SUPABASE_URL")
        store_kind = read.choice(
            "SORANB_STORE",
            ("local", "supabase"),
            default_when=bool(supabase_url),
            why="SUPABASE_URL is set" if supabase_url else "no SUPABASE_URL set",
        )
        speed = read.number("SORANB_EMULATOR_SPEED", 0.0, minimum=0.001)
        on_supabase = store_kind == "supabase"  # a local store never uses Supabase's secrets
        return cls(
            provider=provider,  # type: ignore[arg-type]
            openai_api_key=key,
            openai_base_url=_http_url(read, "OPENAI_BASE_URL", "https://gateway.example/v1"),
            azure_endpoint=_http_url(read, "AZURE_OPENAI_ENDPOINT", "https://my-resource.openai.azure.com"),
            azure_api_key=read.secret("AZURE_OPENAI_API_KEY", keyring=provider == "azure"),
            store_kind=store_kind,  # type: ignore[arg-type]
            data_dir=read.data_dir(root),
            supabase_url=supabase_url,
            supabase_key=read.secret("SUPABASE_KEY", "SUPABASE_ANON_KEY", keyring=on_supabase),
            supabase_email=read.get("SUPABASE_EMAIL"),
            supabase_password=read.secret("SUPABASE_PASSWORD", keyring=on_supabase),
            supabase_access_token=read.secret("SUPABASE_ACCESS_TOKEN", keyring=on_supabase),
            request_timeout_s=read.number("SORANB_TIMEOUT", 60.0, minimum=1),
            poll_interval_max_s=read.number("SORANB_POLL_INTERVAL_MAX", 15.0, minimum=0.05),
            max_concurrent_jobs=read.number("SORANB_MAX_CONCURRENT_JOBS", 4, minimum=1),
            emulator_speed=speed or None,
            emulator_url=_http_url(read, "SORANB_EMULATOR_URL", "http://127.0.0.1:8000/v1"),
            emulator_api_key=read.secret("SORANB_EMULATOR_API_KEY", keyring=False),
            budget_usd=_usd(read, "SORANB_BUDGET_USD"),
            session_budget_usd=_usd(read, "SORANB_SESSION_BUDGET_USD"),
            **_webhook_settings(read),
            models=_user_models(read, root),
            env_file=env_file,
            env_file_ignored=ignored,
            sources=read.sources,
        )

    def with_overrides(self, **changes: Any) -> Settings:
        """A copy with some settings changed (e.g. a key typed into a password field)."""
        sources = dict(self.sources)
        for name, value in list(changes.items()):
            if name in _SECRET_FIELDS and isinstance(value, str):
                changes[name] = Secret(_check_secret(name.upper(), value)) if value else None
            elif name in _SECRET_FIELDS and isinstance(value, Secret):
                _check_secret(name.upper(), value.reveal())
            sources[name] = "set in this session"
        if "openai_api_key" in changes and "provider" not in changes and changes["openai_api_key"]:
            changes["provider"] = "openai"
        return dataclasses.replace(self, sources=sources, **changes)

    # -- questions the views ask --------------------------------------------------
    @property
    def is_paid_provider(self) -> bool:
        """True when a job may cost money (anything but the built-in emulator)."""
        return self.provider != "emulator"

    def describe_sources(self) -> str:
        """The `.env` file the settings were read from, or why one was not read; "" when neither."""
        if self.env_file_ignored:
            return self.env_file_ignored
        return f"settings from {self.env_file}" if self.env_file is not None else ""

    def missing_secrets(self) -> list[str]:
        """Environment names of the secrets the chosen provider and store still need."""
        missing = []
        if self.provider == "openai" and not self.openai_api_key:
            missing.append("OPENAI_API_KEY")
        if self.provider == "azure":
            missing += [name for name, have in _AZURE_NEEDS if not getattr(self, have)]
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
            note = f" ({self.env_file_ignored})" if self.env_file_ignored else ""
            raise ConfigError(
                f"missing {', '.join(missing)}: set it in the environment or in .env at the project root{note}"
            )

    def secrets(self) -> list[str]:
        """The secret values, for redaction in logs (never for display): the keys and passwords, and the
        credentials inside a URL (`https://user:pass@gateway/v1`), which a Basic header carries."""
        values = [getattr(self, name) for name in _SECRET_FIELDS]
        urls = (self.openai_base_url, self.emulator_url, self.supabase_url, self.azure_endpoint)
        return [v.reveal() for v in values if v] + [s for url in urls for s in url_secrets(url)]


_AZURE_NEEDS = (("AZURE_OPENAI_ENDPOINT", "azure_endpoint"), ("AZURE_OPENAI_API_KEY", "azure_api_key"))
_SECRET_FIELDS = (
    "openai_api_key",
    "azure_api_key",
    "supabase_key",
    "supabase_password",
    "supabase_access_token",
    "emulator_api_key",
    "webhook_secret",
)


MODELS_FILE_NAME = "soranb-models.toml"


def _user_models(read: _Reader, root: Path) -> tuple[ModelSpec, ...]:
    """The models of SORANB_MODELS_FILE, else `soranb-models.toml` (`[models.NAME]`), else the project's
    pyproject.toml (`[tool.soranb.models.NAME]`): see `catalog.models_from_table`. Its prices decide what
    the budget lets through, so it is trusted only as a `.env` is."""
    named = read.get("SORANB_MODELS_FILE")
    path = (root / Path(named).expanduser()) if named else root / MODELS_FILE_NAME
    keys: tuple[str, ...] = ("models",)
    if not named and not path.is_file():
        path, keys = root / "pyproject.toml", ("tool", "soranb", "models")
        if not path.is_file():
            return ()
    try:
        table: Any = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        if keys[0] == "tool":  # a project's own pyproject.toml that is not TOML: not soranb's business
            return ()
        raise ConfigError(f"cannot read the models in {path} ({exc}); fix the file or set SORANB_MODELS_FILE") from None
    for key in keys:
        table = table.get(key, {}) if isinstance(table, dict) else {}
    if not table:
        return ()
    problem = env_file_problem(path)  # only a file that gives models (and so prices) must be trusted
    if problem is not None:
        raise ConfigError(f"soranb does not read the models in {path}: {problem}")
    try:
        return tuple(models_from_table(table, str(path)))
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _read_env_file(path: Path | None) -> tuple[Path | None, dict[str, str], str | None]:
    """The `.env` that was read, its values, and why one that is there was not read (see `env_file_problem`)."""
    if path is None or not path.is_file():
        return None, {}, None
    problem = env_file_problem(path)
    if problem:
        return None, {}, f"{path} was not read: {problem}"
    return path, {k: v for k, v in dotenv_values(path).items() if v is not None}, None


def _webhook_settings(read: _Reader) -> dict[str, Any]:
    """The webhook receiver's settings (see `soranb.webhooks`): its secret, host and port."""
    port = read.number("SORANB_WEBHOOK_PORT", 0, minimum=0)
    if port > 65535:
        raise ConfigError(f"SORANB_WEBHOOK_PORT={port} is not a TCP port; use 1 to 65535 (0: any free port)")
    host = read.get("SORANB_WEBHOOK_HOST") or "127.0.0.1"
    return {"webhook_secret": _webhook_secret(read), "webhook_host": host, "webhook_port": port}


def _webhook_secret(read: _Reader) -> Secret | None:
    """`SORANB_WEBHOOK_SECRET`, else the SDK's own `OPENAI_WEBHOOK_SECRET`: `whsec_` + base64, as the API
    hands them out (the error names the setting, never the value)."""
    for name in ("SORANB_WEBHOOK_SECRET", "OPENAI_WEBHOOK_SECRET"):
        secret = read.secret(name, keyring=False)
        if secret is None:
            continue
        from .emulator.webhooks import check_webhook_secret  # the emulator's own rule: only when one is set

        try:
            check_webhook_secret(secret.reveal())
        except ValueError as exc:
            raise ConfigError(
                f"{name} is not a webhook secret ({exc}); use the whsec_... value the provider showed when "
                "you registered the endpoint"
            ) from None
        return secret
    return None


def _http_url(read: _Reader, name: str, example: str) -> str | None:
    """An http(s) URL with a host and a port from 1 to 65535, or a `ConfigError` naming the setting (the
    value is never shown: it may hold a password). Caught here, before anything is stored or sent."""
    raw = read.get(name)
    if raw is None:
        return None
    why = ""
    try:
        parts = urlsplit(raw.strip())
        port = parts.port
    except ValueError:
        why = "its port is not a number from 1 to 65535"
    else:
        if parts.scheme not in ("http", "https") or not parts.hostname:
            why = "it is not an http:// or https:// address with a host"
        elif port == 0 or _CONTROL.search(raw):
            why = "its port is 0" if port == 0 else "it contains a control character (a line break or tab)"
    if why:
        raise ConfigError(f"{name} is not a usable URL: {why}; set it like {example}")
    return raw


def _usd(read: _Reader, name: str) -> Decimal | None:
    """A spending limit in US dollars (e.g. `5` or `2.50`); unset means no limit."""
    raw = read.get(name)
    return None if raw is None else parse_number(name, raw, Decimal, minimum=0, example="5 or 2.50 (US dollars)")
