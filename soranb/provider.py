"""The Videos API client: the official `openai` SDK over one shared `httpx2.AsyncClient`.

This module is the boundary to the provider: SDK and network errors are
translated into `soranb.errors` here and nowhere else, every HTTP call is
logged (method, path, status, duration; never a header), and a job creation
is never retried in a way that can bill twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import warnings
from collections.abc import AsyncIterator, Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx2
import openai

from .debuglog import DebugLog, redact, url_secrets
from .errors import (
    AuthenticationFailed,
    ContentExpired,
    ContentIncomplete,
    JobNotFound,
    ModelRetired,
    ProviderAnswerInvalid,
    ProviderError,
    ProviderRejected,
    ProviderUnavailable,
    ProviderUnreachable,
    RateLimited,
    SoranbError,
    StoreWriteFailed,
)
from .files import written_whole
from .request import MAX_JOB_ID, GenerationRequest, job_id_problem, short_job_id

__all__ = [
    "RETIREMENT_HINT",
    "Character",
    "JobPage",
    "ProviderJob",
    "Variant",
    "VideoProvider",
    "check_job_id",
    "short_job_id",
]

# The SDK marks every videos call deprecated (the hosted API was retired on 2026-09-24). soranb knows, so
# the warning is silenced for soranb's own calls only: a warning is attributed to the module that made
# the call (this one), or, for the SDK's raw and streaming wrappers, to the wrapper's module. A user's
# own `client.videos.*` call keeps its warning.
for _module in (r"soranb\.provider", r"openai\._legacy_response", r"openai\._response"):
    warnings.filterwarnings("ignore", "The Sora API is scheduled", DeprecationWarning, _module)

Variant = Literal["video", "thumbnail", "spritesheet"]
OPENAI_BASE_URL = "https://api.openai.com/v1"
RETIREMENT_HINT = (
    "OpenAI retired the Sora 2 Videos API on 2026-09-24. Use soranb's built-in emulator "
    "(unset OPENAI_API_KEY, or set SORANB_PROVIDER=emulator), or set OPENAI_BASE_URL to a "
    "gateway that still serves /v1/videos."
)
_CHUNK = 1024 * 1024
JOB_STATUSES = ("queued", "in_progress", "completed", "failed", "canceled", "cancelled", "expired")
_KEPT_REFUSED_ID = 8192  # a refused id longer than this is not worth keeping on a record
_MAX_TIMESTAMP = 2**37  # unix seconds, year ~6300: anything larger is not a time


@dataclass(frozen=True)
class ProviderJob:
    """A provider's video object, validated and reduced to what soranb uses (plus the raw JSON)."""

    id: str
    status: str  # one of JOB_STATUSES
    progress: int
    created_at: int
    model: str = ""
    size: str = ""
    seconds: str = ""
    prompt: str | None = None
    completed_at: int | None = None
    expires_at: int | None = None
    error_code: str | None = None
    error_message: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_sdk(cls, video: Any) -> ProviderJob:
        """Validate an SDK video object (built without validation) or a plain dict."""
        if hasattr(video, "model_dump"):
            video = video.model_dump(mode="python", warnings=False)
        return cls.parse(video)

    @classmethod
    def parse(cls, raw: Any) -> ProviderJob:
        """Every field checked against the API's shape; anything else is `ProviderAnswerInvalid`.

        A hostile or broken provider can send any JSON: nothing it sends becomes a path, a URL,
        a huge number or a status soranb does not know.
        """
        if not isinstance(raw, Mapping):
            raise ProviderAnswerInvalid(f"the provider sent {_show(raw)} where a video object belongs")
        job_id = check_job_id(raw.get("id"))

        def bad(name: str, why: str) -> ProviderAnswerInvalid:
            return ProviderAnswerInvalid(
                f"the provider's answer for job {short_job_id(job_id)} is invalid: {name} {_show(raw.get(name))} {why}",
                job_id=job_id,
            )

        status = raw.get("status")
        if status not in JOB_STATUSES:
            raise bad("status", f"is not one of {', '.join(JOB_STATUSES)}")
        progress = _whole(raw.get("progress", 0), 0, 100)
        if progress is None:
            raise bad("progress", "is not a whole number from 0 to 100")
        stamps: dict[str, int | None] = {}
        for name in ("created_at", "completed_at", "expires_at"):
            stamps[name] = _whole(raw.get(name), 0, _MAX_TIMESTAMP)
            if stamps[name] is None and raw.get(name) is not None:
                raise bad(name, "is not a unix time in seconds")
        texts: dict[str, str | None] = {}
        for name, limit in (("model", 100), ("size", 20), ("seconds", 10), ("prompt", 40_000)):
            value = raw.get(name)
            if value is not None and not (isinstance(value, str | int) and not isinstance(value, bool)):
                raise bad(name, "is not text")
            texts[name] = None if value is None else str(value)[:limit]
        error = raw.get("error")
        if error is not None and not isinstance(error, Mapping):
            raise bad("error", "is not an object")
        error = error or {}
        code, message = error.get("code"), error.get("message")
        return cls(
            id=job_id,
            status=str(status),
            progress=progress,
            created_at=stamps["created_at"] or 0,
            model=texts["model"] or "",
            size=texts["size"] or "",
            seconds=texts["seconds"] or "",
            prompt=texts["prompt"],
            completed_at=stamps["completed_at"],
            expires_at=stamps["expires_at"],
            error_code=str(code)[:100] if code is not None else None,
            error_message=str(message)[:1000] if message is not None else None,
            raw=dict(raw),
        )

    @property
    def is_finished(self) -> bool:
        return self.status not in ("queued", "in_progress")


def check_job_id(value: object) -> str:
    """A provider's job id, opaque: 1-1024 printable ASCII characters without whitespace.

    Refused is what could not be an id or would change the URL it goes into: `.` or `..` (a path
    segment of its own), and `/`, which the SDK quotes as %2F but servers and proxies (Starlette,
    LiteLLM's own routes among them) decode before routing, so such an id could never be served.
    Everything else in an id is percent-encoded by the SDK's `path_template`.
    """
    why = job_id_problem(value)
    if why is None:
        return str(value)
    raise ProviderAnswerInvalid(
        f"the provider sent an invalid job id {_show(value)}: {why}; a job id is 1-{MAX_JOB_ID} printable "
        "ASCII characters, without whitespace or '/'",
        refused_id=value if isinstance(value, str) and 0 < len(value) <= _KEPT_REFUSED_ID else None,
    )


def _whole(value: object, low: int, high: int) -> int | None:
    """`value` as an int in [low, high], or None (bools, strings like "50%", NaN and huge numbers are not)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if value != value or not low <= value <= high:  # NaN compares unequal to itself
        return None
    return round(value)


def _show(value: object) -> str:
    """A short, safe rendering of something a provider sent (for error messages)."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


MAX_CHARACTER_VIDEO_BYTES = 50_000_000


@dataclass(frozen=True)
class Character:
    """A provider's character (id, name, created_at), validated like a video object."""

    id: str
    name: str
    created_at: int

    @classmethod
    def parse(cls, raw: Any) -> Character:
        if hasattr(raw, "model_dump"):
            raw = raw.model_dump(mode="python", warnings=False)
        if not isinstance(raw, Mapping):
            raise ProviderAnswerInvalid(f"the provider sent {_show(raw)} where a character belongs")
        name, created = raw.get("name"), _whole(raw.get("created_at"), 0, _MAX_TIMESTAMP)
        if name is not None and not isinstance(name, str):
            raise ProviderAnswerInvalid(f"the provider sent a character name {_show(name)} that is not text")
        return cls(id=check_job_id(raw.get("id")), name=(name or "")[:200], created_at=created or 0)


@dataclass(frozen=True)
class JobPage:
    jobs: list[ProviderJob]
    has_more: bool
    last_id: str | None
    poll_after_ms: int | None = None
    invalid: dict[str, str] = field(default_factory=dict)  # job id -> why its entry was refused


class VideoProvider:
    """One provider endpoint: the real API, a gateway, or the emulator (in-process or served)."""

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str,
        http_client: httpx2.AsyncClient,
        log: DebugLog,
        label: str,
        timeout_s: float = 60.0,
        max_retries: int = 2,
        is_paid: bool = True,
        key_is_secret: bool = True,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.label = label
        # What this provider was seen to support ("list", "delete", "variants"), learned from its answers
        # (a gateway may have no list, no delete, and answer the MP4 for every variant); absent: not known yet.
        self.capabilities: dict[str, bool] = {}
        self.emulator: Any = None  # the in-process emulator's state, when that is the provider
        self.is_paid = is_paid
        self._log = log
        self._secrets = ([api_key] if key_is_secret else []) + url_secrets(base_url)
        self._http = http_client
        self._http.event_hooks["request"].append(self._on_request)
        self._http.event_hooks["response"].append(self._on_response)
        self._client = openai.AsyncOpenAI(
            api_key=api_key,
            base_url=self.base_url,
            http_client=http_client,
            timeout=timeout_s,
            max_retries=max_retries,
        )
        # A create is never retried blindly: a retry after a lost answer bills twice.
        self._create_client = self._client.with_options(max_retries=0)

    # -- construction ------------------------------------------------------------
    @classmethod
    def from_settings(
        cls,
        settings: Any,
        log: DebugLog,
        *,
        wrap_transport: Callable[[httpx2.AsyncBaseTransport], httpx2.AsyncBaseTransport] | None = None,
        webhook_url: str | None = None,
    ) -> VideoProvider:
        """The provider the settings choose: OpenAI (or a gateway) with a key, else the emulator.

        `wrap_transport` puts a layer between soranb and the network (see `in_process`): benchmarks
        count requests with it, tests cut or rewrite answers. `webhook_url`: where the in-process
        emulator sends its signed events (the service's receiver, see `soranb.webhooks`).
        """
        timeout_s = settings.request_timeout_s
        transport = wrap_transport(httpx2.AsyncHTTPTransport()) if wrap_transport is not None else None
        if settings.provider == "openai":
            settings.validate()
            base = settings.openai_base_url or OPENAI_BASE_URL
            return cls(
                api_key=settings.openai_api_key.reveal(),
                base_url=base,
                http_client=_http_client(timeout_s, transport),
                log=log,
                label=f"openai ({httpx2.URL(base).host})",
                timeout_s=timeout_s,
            )
        if settings.provider == "azure":  # the Azure OpenAI v1 API: OpenAI's /videos shape, `api-key` auth
            settings.validate()
            key = settings.azure_api_key.reveal()
            base = f"{settings.azure_endpoint.rstrip('/')}/openai/v1/"
            return cls(
                api_key=key,
                base_url=base,
                http_client=_http_client(timeout_s, transport, headers={"api-key": key}),
                log=log,
                label=f"azure ({httpx2.URL(base).host})",
                timeout_s=timeout_s,
            )
        if settings.emulator_url:
            return cls(
                api_key=settings.emulator_api_key.reveal() if settings.emulator_api_key else "emulator",
                base_url=settings.emulator_url,
                http_client=_http_client(timeout_s, transport),
                log=log,
                label=f"emulator ({settings.emulator_url})",
                timeout_s=timeout_s,
                is_paid=False,
                key_is_secret=bool(settings.emulator_api_key),
            )
        from .emulator import IN_PROCESS_SPEED, EmulatorConfig

        hooks: dict[str, Any] = {}
        if webhook_url and settings.webhook_secret:
            hooks = {"webhook_urls": (webhook_url,), "webhook_secret": settings.webhook_secret.reveal()}
        config = EmulatorConfig.from_env(
            speed=settings.emulator_speed or IN_PROCESS_SPEED, state_dir=settings.data_dir / "emulator", **hooks
        )
        return cls.in_process(config, log, timeout_s=timeout_s, wrap_transport=wrap_transport)

    @classmethod
    def in_process(
        cls,
        config: Any,
        log: DebugLog,
        *,
        timeout_s: float = 60.0,
        max_retries: int = 2,
        wrap_transport: Callable[[httpx2.AsyncBaseTransport], httpx2.AsyncBaseTransport] | None = None,
    ) -> VideoProvider:
        """The built-in emulator running in this process (no socket, no network).

        `wrap_transport` puts a layer between soranb and the emulator: a network that cuts,
        throttles or rewrites answers, for tests and experiments.
        """
        from .emulator import EMULATOR_BASE_URL, EmulatorTransport, create_app

        app = create_app(config)
        transport: httpx2.AsyncBaseTransport = EmulatorTransport(app)
        if wrap_transport is not None:
            transport = wrap_transport(transport)
        provider = cls(
            api_key=config.api_key or "emulator",
            base_url=EMULATOR_BASE_URL,
            http_client=_http_client(timeout_s, transport),
            timeout_s=timeout_s,
            log=log,
            label=f"emulator (in-process, speed x{config.speed:g})",
            is_paid=False,
            max_retries=max_retries,
            key_is_secret=bool(config.api_key),
        )
        provider.emulator = app.state.emulator
        return provider

    @property
    def log(self) -> DebugLog:
        return self._log

    async def aclose(self) -> None:
        await self._client.close()
        await self._http.aclose()
        if self.emulator is not None:  # stop its render threads (and drop a temp state folder)
            await asyncio.to_thread(self.emulator.close)

    # -- calls -------------------------------------------------------------------
    async def create(self, request: GenerationRequest, *, known_job_ids: Collection[str] = ()) -> ProviderJob:
        """Create one job, exactly once.

        When the answer is lost (reset, timeout), the job may exist anyway: look for
        it in the newest jobs before trying again, and try again at most once.
        """
        for attempt in (1, 2):
            started = time.time()
            try:
                async with self._translated("create"):
                    video = await self._create_call(request)
                return ProviderJob.from_sdk(video)
            except (ProviderUnreachable, ProviderUnavailable) as exc:
                self._log.warning(f"create: no answer ({exc}); looking for the job before retrying")
                await asyncio.sleep(0.2)
                found = await self.find_job(request, since=started - 5, exclude=known_job_ids)
                if found is not None:
                    self._log.info(f"create: found job {short_job_id(found.id)} made by the lost request")
                    return found
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def find_job(
        self, request: GenerationRequest, *, since: float, exclude: Collection[str] = ()
    ) -> ProviderJob | None:
        """The newest job with the request's parameters created after `since`, if any."""
        page = await self.list_page(limit=50, order="desc")
        for job in page.jobs:
            if job.created_at < since:
                break
            if (
                job.id not in exclude
                and job.prompt == request.prompt
                and job.model == request.model
                and job.size == request.size
                and job.seconds == str(request.seconds)
            ):
                return job
        return None

    async def retrieve(self, job_id: str) -> ProviderJob:
        check_job_id(job_id)
        async with self._translated("retrieve", job_id=job_id):
            video = await self._client.videos.retrieve(job_id)
        return ProviderJob.from_sdk(video)

    async def list_page(
        self, *, after: str | None = None, limit: int = 100, order: Literal["asc", "desc"] = "desc"
    ) -> JobPage:
        """One page of jobs; an entry the API would never send is set aside in `invalid`, not fatal."""
        kwargs: dict[str, Any] = {"limit": limit, "order": order}
        if after:
            kwargs["after"] = check_job_id(after)
        try:
            async with self._translated("list"):
                raw = await self._client.videos.with_raw_response.list(**kwargs)
                body = raw.http_response.json()
        except (JobNotFound, ModelRetired, ProviderRejected):
            self.capabilities["list"] = False  # a gateway without a list: each job is retrieved instead
            raise
        self.capabilities["list"] = True
        if not isinstance(body, Mapping) or not isinstance(body.get("data"), list):
            raise ProviderAnswerInvalid(f"list: the provider's answer has no list of jobs ({_show(body)})")
        jobs: list[ProviderJob] = []
        invalid: dict[str, str] = {}
        for entry in body["data"]:
            try:
                jobs.append(ProviderJob.parse(entry))
            except ProviderAnswerInvalid as exc:
                if exc.job_id is not None:
                    invalid[exc.job_id] = str(exc)
        last_id = body.get("last_id")
        hint = raw.headers.get("openai-poll-after-ms")
        return JobPage(
            jobs=jobs,
            has_more=body.get("has_more") is True,
            last_id=last_id if job_id_problem(last_id) is None else None,
            poll_after_ms=int(hint) if hint and hint.isdigit() and len(hint) < 9 else None,
            invalid=invalid,
        )

    async def delete(self, job_id: str) -> None:
        check_job_id(job_id)
        try:
            async with self._translated("delete", job_id=job_id):
                await self._client.videos.delete(job_id)
        except ProviderError as exc:
            if exc.status_code == 405:  # this provider (a gateway) cannot delete: it keeps jobs until they expire
                self.capabilities["delete"] = False
            raise
        self.capabilities["delete"] = True

    def describe_capabilities(self) -> str:
        """What this provider was seen to support, for `soranb doctor` and the diagnostics panel."""
        said = {True: "yes", False: "no"}
        parts = [f"{what} {said[self.capabilities[what]]}" for what in ("list", "delete") if what in self.capabilities]
        if "variants" in self.capabilities:
            parts.append("stills " + ("from the provider" if self.capabilities["variants"] else "made from the video"))
        return ", ".join(parts) if parts else "nothing learned yet"

    async def remix(self, job_id: str, prompt: str) -> ProviderJob:
        check_job_id(job_id)
        async with self._translated("remix", job_id=job_id):
            video = await self._create_client.videos.remix(job_id, prompt=prompt)
        return ProviderJob.from_sdk(video)

    async def extend(self, job_id: str, prompt: str, seconds: int) -> ProviderJob:
        """A new job: the completed video `job_id` followed by `seconds` more (never retried blindly)."""
        check_job_id(job_id)
        body = {"prompt": prompt, "seconds": str(seconds), "video": {"id": job_id}}
        async with self._translated("extend", job_id=job_id):
            video = await self._create_client.post("/videos/extensions", body=body, cast_to=openai.types.Video)
        return ProviderJob.from_sdk(video)

    async def edit(self, job_id: str, prompt: str) -> ProviderJob:
        """A new job: the completed video `job_id` re-rendered as `prompt` says (never retried blindly)."""
        check_job_id(job_id)
        body = {"prompt": prompt, "video": {"id": job_id}}
        async with self._translated("edit", job_id=job_id):
            video = await self._create_client.post("/videos/edits", body=body, cast_to=openai.types.Video)
        return ProviderJob.from_sdk(video)

    async def create_character(self, name: str, video: Path) -> Character:
        """A character made from a video file (at most `MAX_CHARACTER_VIDEO_BYTES`, sent under a neutral name)."""
        size = video.stat().st_size
        if size > MAX_CHARACTER_VIDEO_BYTES:
            raise ProviderRejected(
                f"{video.name} is {size / 1e6:.0f} MB; a character video may be "
                f"{MAX_CHARACTER_VIDEO_BYTES // 1_000_000} MB at most"
            )
        data = await asyncio.to_thread(video.read_bytes)
        async with self._translated("create character"):
            made = await self._create_client.videos.create_character(
                name=name, video=(f"character{video.suffix.lower()[:6]}", data, "video/mp4")
            )
        return Character.parse(made)

    async def get_character(self, character_id: str) -> Character:
        check_job_id(character_id)
        async with self._translated("get character", character_id, subject="character"):
            found = await self._client.videos.get_character(character_id)
        return Character.parse(found)

    async def _create_call(self, request: GenerationRequest) -> Any:
        """The one create request for `request`: an extension, an edit, a JSON create (a reference object
        or characters) or the SDK's multipart create."""
        source = request.source
        if source is not None and source.kind == "extend":
            check_job_id(source.job_id)
            body: dict[str, Any] = {
                "prompt": request.prompt,
                "seconds": str(source.added_seconds),
                "video": {"id": source.job_id},
            }
            return await self._create_client.post("/videos/extensions", body=body, cast_to=openai.types.Video)
        if source is not None:
            check_job_id(source.job_id)
            body = {"prompt": request.prompt, "video": {"id": source.job_id}}
            return await self._create_client.post("/videos/edits", body=body, cast_to=openai.types.Video)
        args = _create_args(request)
        characters = [{"id": c} for c in request.characters]
        if request.image_url or request.image_file_id:
            reference = {"image_url": request.image_url} if request.image_url else {"file_id": request.image_file_id}
            body = {**args, "input_reference": reference, **({"characters": characters} if characters else {})}
            return await self._create_client.post("/videos", body=body, cast_to=openai.types.Video)
        if characters:  # the SDK's create has no parameter for them (yet): the API takes them as `characters[][id]`
            args["extra_body"] = {"characters": characters}
        return await self._create_client.videos.create(**args)

    async def download(self, job_id: str, variant: Variant, dest: Path) -> Path:
        """Stream one content variant to `dest`: never half a file, never all in RAM.

        The body goes to `dest.part` and becomes `dest` only when it is whole: as long as the
        Content-Length the provider announced (a connection cut early is `ContentIncomplete`).
        """
        check_job_id(job_id)
        try:
            stream = self._client.videos.with_streaming_response.download_content(job_id, variant=variant)
            async with self._translated(f"download {variant}", job_id=job_id), stream as response:
                announced = response.headers.get("content-length")
                received = 0
                with written_whole(dest) as partial, partial.open("wb") as out:
                    async for chunk in response.iter_bytes(_CHUNK):
                        out.write(chunk)
                        received += len(chunk)
                    if announced and announced.isdigit() and int(announced) != received:
                        raise ContentIncomplete(
                            f"download {variant} of {short_job_id(job_id)}: got {received} of {announced} bytes; "
                            "soranb will fetch it again"
                        )
        except OSError as exc:
            raise StoreWriteFailed(
                f"could not write {dest.name} to {dest.parent} ({exc.strerror or exc}); "
                "free some disk space or set SORANB_DATA_DIR to a writable folder"
            ) from None
        return dest

    # -- the one place errors are translated ---------------------------------------
    @contextlib.asynccontextmanager
    async def _translated(self, action: str, job_id: str | None = None, *, subject: str = "job") -> AsyncIterator[None]:
        """Translate whatever the SDK or the network raises into `soranb.errors`, by one table.

        `job_id` names the object the call is about (a `subject`: a job or a character); a 404 for a
        named object is that object missing, while a 404 for no object is the API itself gone.
        """
        try:
            yield
        except SoranbError:
            raise
        except Exception as exc:
            error = self._translate(action, exc, job_id, subject)
            if error is None:
                raise
        else:
            return
        _raise_alone(error)

    def _translate(self, action: str, exc: Exception, job_id: str | None, subject: str) -> ProviderError | None:
        """The `soranb.errors` error for a lower layer's `exc` (None: not one the table knows), redacted."""
        if isinstance(exc, openai.APIStatusError):
            return self._status_error(action, exc, job_id, subject)
        cause = exc.__cause__ if isinstance(exc, openai.APIConnectionError) and exc.__cause__ else exc
        for kinds, error, advice in _TRANSLATIONS:
            if isinstance(cause, kinds) or isinstance(exc, kinds):
                detail = f"{type(cause).__name__}: {cause}"
                advice_text = advice.format(label=self.label, url=self.base_url)
                return error(self._safe(f"{action}: {advice_text} ({detail})"))
        return None

    def _status_error(
        self, action: str, exc: openai.APIStatusError, job_id: str | None, subject: str = "job"
    ) -> ProviderError:
        status = exc.status_code
        code = self._safe(str(exc.code)) if exc.code is not None else None  # a provider's text, like the message
        message = self._safe(_provider_message(exc))
        where = f"{action}: {self.label} answered {status}"
        if status in (401, 403):
            return AuthenticationFailed(
                f"{where}: {message}. Check OPENAI_API_KEY (the key is never shown here).",
                status_code=status,
                code=code,
            )
        if status == 429:
            retry_after = _retry_after(exc.response)
            return RateLimited(
                f"{where}: rate limited; soranb will wait and try again",
                retry_after=retry_after,
                status_code=429,
            )
        if status >= 500:
            return ProviderUnavailable(f"{where}: {message}", status_code=status, code=code)
        shown = short_job_id(job_id or "")
        if action.startswith("download") and (status == 410 or "expire" in message.lower()):
            return ContentExpired(f"{where}: the files of {shown} have expired", status_code=status, code=code)
        if code == "DeploymentNotFound":  # Azure: `model` names a deployment, and this resource has none by that name
            return ProviderRejected(
                f"{where}: {self.label} has no deployment of that name; on Azure the model names a deployment: "
                "use its name from the Azure portal (and give it sizes and a price in soranb-models.toml)",
                status_code=status,
                code=code,
            )
        if code == "model_not_found" or status == 410 or (status == 404 and job_id is None):
            return ModelRetired(f"{where}: {message}. {RETIREMENT_HINT}", status_code=status, code=code)
        if status == 404:
            return JobNotFound(f"{where}: {subject} {shown} not found", status_code=status, code=code)
        return ProviderRejected(f"{where}: {message}", status_code=status, code=code)

    def _safe(self, text: str) -> str:
        return redact(text, self._secrets)

    # -- logging of every HTTP call (event hooks see retries too) ----------------------
    async def _on_request(self, request: httpx2.Request) -> None:
        request.extensions["soranb_started"] = time.perf_counter()

    async def _on_response(self, response: httpx2.Response) -> None:
        request = response.request
        started = request.extensions.get("soranb_started", time.perf_counter())
        elapsed_ms = (time.perf_counter() - started) * 1000
        level = "INFO" if response.status_code < 400 else "WARNING"
        self._log.add(
            level,
            f"provider {request.method} {_short_path(request.url.path)}"
            f"{'?' + request.url.query.decode() if request.url.query else ''} "
            f"-> {response.status_code} ({elapsed_ms:.0f} ms)",
        )


def _short_path(path: str) -> str:
    """A URL path for the log, with a long id in it shortened (`short_job_id`)."""
    return "/".join(short_job_id(segment) for segment in path.split("/"))


def _raise_alone(error: ProviderError) -> None:
    """Raise `error` with nothing behind it: the SDK's or httpx's exception holds the raw key, headers
    and URL, so it must not ride along as `__context__` (which `raise ... from None` only hides)."""
    try:
        raise error
    finally:
        error.__context__ = error.__cause__ = None
        error.__suppress_context__ = True


def _create_args(request: GenerationRequest) -> dict[str, Any]:
    args: dict[str, Any] = {
        "prompt": request.prompt,
        "model": request.model,
        "size": request.size,
        "seconds": str(request.seconds),
    }
    if request.image is not None:
        from .images import inspect_image

        info = inspect_image(request.image.data)
        # The provider sees a neutral name: the user's file name is display-only.
        args["input_reference"] = (f"start{info.extension}", request.image.data, info.mime)
    return args


def _provider_message(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])
    return exc.message


def _retry_after(response: httpx2.Response) -> float | None:
    headers = response.headers
    with contextlib.suppress(TypeError, ValueError):
        if headers.get("retry-after-ms"):
            return float(headers["retry-after-ms"]) / 1000
        if headers.get("retry-after"):
            return float(headers["retry-after"])
    return None


def _http_client(
    timeout_s: float, transport: httpx2.AsyncBaseTransport | None = None, *, headers: dict[str, str] | None = None
) -> httpx2.AsyncClient:
    """The one HTTP client a provider shares between its SDK calls (10 s to connect, `timeout_s` per request);
    `headers` go with every request (Azure's `api-key`)."""
    return httpx2.AsyncClient(transport=transport, timeout=httpx2.Timeout(timeout_s, connect=10.0), headers=headers)


# What each lower-layer error means, most specific first (as httpx maps httpcore's errors).
_TRANSLATIONS: tuple[tuple[type[BaseException] | tuple[type[BaseException], ...], type[ProviderError], str], ...] = (
    (
        (httpx2.RemoteProtocolError, httpx2.ReadError, httpx2.WriteError, httpx2.ReadTimeout),
        ProviderUnreachable,
        "the connection to {label} broke mid-answer; soranb will try again",
    ),
    (
        (openai.APITimeoutError, httpx2.TimeoutException, TimeoutError),
        ProviderUnreachable,
        "no answer from {label} at {url} in time; check the address and your network",
    ),
    (
        (openai.APIConnectionError, httpx2.TransportError, ConnectionError),
        ProviderUnreachable,
        "no answer from {label} at {url}; check the address and your network",
    ),
    (
        (openai.APIResponseValidationError, httpx2.DecodingError, ValueError, TypeError, KeyError),
        ProviderAnswerInvalid,
        "{label} sent an answer that is not the Videos API's shape",
    ),
)
