"""The emulator's HTTP face: a Starlette app with the routes, shapes and errors of the Videos API.

The request pipeline, outermost first: request log → latency → faults → API key
→ Starlette (routes). Faults and the log sit outside Starlette's own error
middleware on purpose: a dropped connection must leave the app as an exception,
not be turned into a 500 answer.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
import logging
import secrets
import shutil
import tempfile
import weakref
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp

from soranb.catalog import (
    EXTENSION_SECONDS,
    MAX_CHARACTERS,
    MAX_PROMPT_CHARS,
    MODELS,
    SNAPSHOTS,
    base_model,
    parse_size,
)
from soranb.emulator.characters import CharacterTable, FileTable, probe_video
from soranb.emulator.config import EmulatorConfig
from soranb.emulator.faults import FaultMiddleware, FaultPicker
from soranb.emulator.jobs import Job, JobTable
from soranb.emulator.params import MAX_JSON_BYTES, Field, Upload, read_body
from soranb.emulator.pipeline import ApiKeyCheck, Latency, RequestId, RequestLog
from soranb.emulator.render import SPRITESHEET_FILE, THUMBNAIL_FILE, VIDEO_FILE
from soranb.emulator.webhooks import WebhookNotifier
from soranb.emulator.wire import ApiError, error_response

__all__ = ["MAX_JSON_BYTES", "EmulatorState", "create_app"]

log = logging.getLogger("soranb.emulator")

API_DEFAULT_MODEL = "sora-2"
API_DEFAULT_SIZE = "720x1280"  # the Videos API's own default (portrait), whatever soranb's forms preselect
API_DEFAULT_SECONDS = "4"
POLL_HINT_MS = (250, 10_000)
MAX_REFERENCE_BYTES = 20 * 1024 * 1024
MAX_VIDEO_UPLOAD_BYTES = 50 * 1024 * 1024
MAX_CHARACTER_NAME = 80
# What each endpoint accepts; anything else is a 400 that names it.
_CREATE_FIELDS = {
    "prompt": Field(text=True),
    "model": Field(text=True),
    "seconds": Field(text=True),
    "size": Field(text=True),
    "input_reference": Field(file=True, keys=("image_url", "file_id"), max_bytes=MAX_REFERENCE_BYTES),
    "characters": Field(keys=("id",), many=True),
}
_VIDEO_REF = Field(file=True, keys=("id",), max_bytes=MAX_VIDEO_UPLOAD_BYTES)
_EXTEND_FIELDS = {"prompt": Field(text=True), "seconds": Field(text=True), "video": _VIDEO_REF}
_EDIT_FIELDS = {"prompt": Field(text=True), "video": _VIDEO_REF}
_REMIX_FIELDS = {"prompt": Field(text=True)}
_CHARACTER_FIELDS = {"name": Field(text=True), "video": Field(file=True, max_bytes=MAX_VIDEO_UPLOAD_BYTES)}
_FILE_FIELDS = {"file": Field(file=True, max_bytes=MAX_REFERENCE_BYTES), "purpose": Field(text=True)}
_REFERENCE_SUFFIX = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp"}
_VARIANTS = {
    "video": (VIDEO_FILE, "video/mp4"),
    "thumbnail": (THUMBNAIL_FILE, "image/webp"),
    "spritesheet": (SPRITESHEET_FILE, "image/jpeg"),
}


class EmulatorState:
    """Everything one emulator instance owns; `app.state.emulator` in tests."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self._owned_dir: Path | None = None
        if config.state_dir is None:
            self._owned_dir = Path(tempfile.mkdtemp(prefix="soranb-emulator-"))
            weakref.finalize(self, shutil.rmtree, self._owned_dir, True)
        self.state_dir = config.state_dir or self._owned_dir
        assert self.state_dir is not None
        self.table = JobTable(config, self.state_dir)
        self.characters = CharacterTable(self.state_dir / "characters", config.clock)
        self.files = FileTable(self.state_dir / "files", config.clock)
        self.uploads_dir = self.state_dir / "uploads"
        self.webhooks: WebhookNotifier | None = None
        if config.webhook_urls and config.webhook_secret:
            self.webhooks = WebhookNotifier(
                self.table, config.webhook_urls, config.webhook_secret, config.webhook_retry_delays
            )
        self.faults = FaultPicker(config.faults, config.seed)

    def close(self) -> None:
        """Stop webhooks and rendering; remove the state folder if the emulator made it itself."""
        if self.webhooks is not None:
            self.webhooks.close()
        self.table.close()
        if self._owned_dir is not None:
            shutil.rmtree(self._owned_dir, ignore_errors=True)


def create_app(config: EmulatorConfig | None = None) -> Starlette:
    """A fresh emulator app; `config` defaults to `EmulatorConfig()` (real-time speed)."""
    state = EmulatorState(config or EmulatorConfig())
    routes: list[BaseRoute] = [
        Route("/v1/videos", _create, methods=["POST"]),
        Route("/v1/videos", _list, methods=["GET"]),
        Route("/v1/videos/extensions", _extend, methods=["POST"]),
        Route("/v1/videos/edits", _edit, methods=["POST"]),
        Route("/v1/videos/characters", _create_character, methods=["POST"]),
        Route("/v1/videos/characters/{character_id}", _get_character, methods=["GET"]),
        Route("/v1/files", _create_file, methods=["POST"]),
        Route("/v1/files/{file_id}", _get_file, methods=["GET"]),
        Route("/v1/videos/{video_id}", _retrieve, methods=["GET"]),
        Route("/v1/videos/{video_id}", _delete, methods=["DELETE"]),
        Route("/v1/videos/{video_id}/content", _content, methods=["GET"]),
        Route("/v1/videos/{video_id}/remix", _remix, methods=["POST"]),
    ]
    if state.config.deployments:  # Azure OpenAI's v1 API lives under /openai/v1/
        routes.append(Mount("/openai", routes=list(routes)))
    app = _EmulatorApp(routes=routes, exception_handlers={ApiError: _api_error, HTTPException: _http_error})
    app.state.emulator = state
    return app


class _EmulatorApp(Starlette):
    def build_middleware_stack(self) -> ASGIApp:
        state: EmulatorState = self.state.emulator
        inner = ApiKeyCheck(super().build_middleware_stack(), state.config.api_key)
        return RequestLog(RequestId(Latency(FaultMiddleware(inner, state.faults), state.config.latency_ms)))


# -- handlers --------------------------------------------------------------------------------------


async def _create(request: Request) -> Response:
    state = _state(request)
    body = await read_body(request, _CREATE_FIELDS)
    model = _text(body, "model", API_DEFAULT_MODEL)
    spec = MODELS[_check_model(state, model)]
    prompt = _check_prompt(body.get("prompt"))
    seconds = _text(body, "seconds", API_DEFAULT_SECONDS)
    allowed_seconds = [str(s) for s in spec.seconds]
    if seconds not in allowed_seconds:
        raise ApiError(400, _invalid_value(seconds, allowed_seconds), param="seconds", code="invalid_value")
    size = _text(body, "size", API_DEFAULT_SIZE)
    if size not in spec.sizes:
        message = _invalid_value(size, list(spec.sizes), f" for model {model}")
        raise ApiError(400, message, param="size", code="invalid_value")
    reference = None
    given = body.get("input_reference")
    if isinstance(given, Upload):
        reference = _check_reference(given.data, size)
    elif isinstance(given, dict):
        reference = _reference_object(state, given, size)
    characters = _check_characters(state, body.get("characters"))
    job = state.table.create(
        model=model, prompt=prompt, size=size, seconds=int(seconds), reference=reference, characters=characters
    )
    return _video_response(state, job)


async def _extend(request: Request) -> Response:
    """A new job whose video is the source followed by a newly generated segment of `seconds`."""
    state = _state(request)
    body = await read_body(request, _EXTEND_FIELDS)
    prompt = _check_prompt(body.get("prompt"))
    seconds = body.get("seconds")
    allowed = [str(s) for s in EXTENSION_SECONDS]
    if seconds is None:
        raise _missing("seconds")
    if seconds not in allowed:
        raise ApiError(400, _invalid_value(seconds, allowed), param="seconds", code="invalid_value")
    source = await _source_video(state, body.get("video"), "extended")
    job = state.table.create(
        model=source.model,
        prompt=prompt,
        size=source.size,
        seconds=source.seconds + int(seconds),
        kind="extend",
        source=source.path,
        source_seconds=source.seconds,
        source_video_id=source.video_id,
        generated_seconds=int(seconds),
    )
    source.done()
    return _video_response(state, job)


async def _edit(request: Request) -> Response:
    """A new job that re-renders the source video with the edit drawn in."""
    state = _state(request)
    body = await read_body(request, _EDIT_FIELDS)
    prompt = _check_prompt(body.get("prompt"))
    source = await _source_video(state, body.get("video"), "edited")
    job = state.table.create(
        model=source.model,
        prompt=prompt,
        size=source.size,
        seconds=source.seconds,
        kind="edit",
        source=source.path,
        source_seconds=source.seconds,
        source_video_id=source.video_id,
    )
    source.done()
    return _video_response(state, job)


async def _create_character(request: Request) -> Response:
    state = _state(request)
    body = await read_body(request, _CHARACTER_FIELDS)
    name = body.get("name")
    if name is None:
        raise _missing("name")
    name = " ".join(str(name).split())
    if not name or len(name) > MAX_CHARACTER_NAME:
        message = f"Invalid 'name': expected 1 to {MAX_CHARACTER_NAME} characters."
        raise ApiError(400, message, param="name", code="invalid_value")
    video = body.get("video")
    if video is None:
        raise _missing("video")
    if not isinstance(video, Upload) or await asyncio.to_thread(probe_video, video.data) is None:
        message = "Invalid 'video': expected an uploaded video file (MP4, WebM or MOV) with at least one frame."
        raise ApiError(400, message, param="video", code="invalid_video")
    return JSONResponse(state.characters.create(name))


async def _get_character(request: Request) -> Response:
    state = _state(request)
    character_id = request.path_params["character_id"]
    character = state.characters.get(character_id)
    if character is None:
        message = f"Character with id '{character_id}' not found."
        raise ApiError(404, message, param="character_id", code="character_not_found")
    return JSONResponse(character)


async def _create_file(request: Request) -> Response:
    """A minimal Files API, so that `input_reference={"file_id": ...}` can name an uploaded image."""
    state = _state(request)
    body = await read_body(request, _FILE_FIELDS)
    upload = body.get("file")
    if not isinstance(upload, Upload):
        raise _missing("file")
    purpose = body.get("purpose")
    if purpose is None:
        raise _missing("purpose")
    return JSONResponse(state.files.create(upload.data, upload.filename, str(purpose)))


async def _get_file(request: Request) -> Response:
    state = _state(request)
    file_id = request.path_params["file_id"]
    found = state.files.get(file_id)
    if found is None:
        raise ApiError(404, f"No such File object: {file_id}", param="id", code="file_not_found")
    return JSONResponse(found)


async def _retrieve(request: Request) -> Response:
    state = _state(request)
    return _video_response(state, _job(state, request.path_params["video_id"]))


async def _list(request: Request) -> Response:
    state = _state(request)
    query = request.query_params
    try:
        limit = int(query.get("limit", "20"))
    except ValueError:
        limit = -1
    if not 0 <= limit <= 100:
        raise ApiError(400, f"Invalid 'limit': {query.get('limit')!r}; expected 0 to 100.", param="limit")
    order = query.get("order", "desc")
    if order not in ("asc", "desc"):
        raise ApiError(400, _invalid_value(order, ["asc", "desc"]), param="order", code="invalid_value")
    jobs = state.table.all()
    if order == "desc":
        jobs.reverse()
    start = 0
    if after := query.get("after"):
        ids = [job.id for job in jobs]
        if after not in ids:
            raise ApiError(400, f"Invalid 'after': no video with id '{after}'.", param="after")
        start = ids.index(after) + 1
    page = jobs[start : start + limit]
    now = state.config.clock()
    states = [state.table.state(job, now) for job in page]
    data = [state.table.video_object(job, job_state) for job, job_state in zip(page, states, strict=True)]
    body = {
        "object": "list",
        "data": data,
        "first_id": page[0].id if page else None,
        "last_id": page[-1].id if page else None,
        "has_more": len(jobs) > start + limit,
    }
    waits = [s.wait_s for s in states if s.wait_s is not None]
    return JSONResponse(body, headers=_poll_hint(min(waits) if waits else None))


async def _delete(request: Request) -> Response:
    state = _state(request)
    video_id = request.path_params["video_id"]
    if not state.table.delete(video_id):
        raise _not_found(video_id)
    return JSONResponse({"id": video_id, "object": "video.deleted", "deleted": True})


async def _content(request: Request) -> Response:
    state = _state(request)
    job = _job(state, request.path_params["video_id"])
    variant = request.query_params.get("variant", "video")
    if variant not in _VARIANTS:
        raise ApiError(400, _invalid_value(variant, list(_VARIANTS)), param="variant", code="invalid_value")
    job_state = state.table.state(job)
    if job_state.status != "completed":
        message = (
            f"Video {job.id} failed; it has no content."
            if job_state.status == "failed"
            else f"Video {job.id} is not ready yet ({job_state.status}); poll GET /v1/videos/{job.id} first."
        )
        raise ApiError(400, message, param="video_id", code="video_not_ready")
    assert job_state.expires_at is not None
    if state.config.clock() >= job_state.expires_at:
        for name, _ in _VARIANTS.values():  # nothing can fetch them any more: free the disk
            (state.table.media_dir(job.id) / name).unlink(missing_ok=True)
        raise ApiError(410, f"The content of video {job.id} has expired.", code="video_expired")
    name, media_type = _VARIANTS[variant if state.config.variants else "video"]
    path = state.table.media_dir(job.id) / name
    if not path.is_file():
        raise _not_found(job.id)
    return FileResponse(path, media_type=media_type)


async def _remix(request: Request) -> Response:
    state = _state(request)
    body = await read_body(request, _REMIX_FIELDS, multipart=False)
    source = _job(state, request.path_params["video_id"])
    prompt = _check_prompt(body.get("prompt"))
    _check_model(state, source.model)
    source_state = state.table.state(source)
    if source_state.status != "completed":
        message = f"Video {source.id} is {source_state.status}; only a completed video can be remixed."
        raise ApiError(400, message, param="video_id", code="invalid_state")
    thumbnail = state.table.media_dir(source.id) / THUMBNAIL_FILE
    try:
        reference = (thumbnail.read_bytes(), ".webp")
    except FileNotFoundError:
        raise ApiError(400, f"The content of video {source.id} has expired.", code="video_expired") from None
    job = state.table.create(
        model=source.model,
        prompt=prompt,
        size=source.size,
        seconds=source.seconds,
        reference=reference,
        remixed_from_video_id=source.id,
        kind="remix",
    )
    return _video_response(state, job)


# -- helpers ---------------------------------------------------------------------------------------


def _state(request: Request) -> EmulatorState:
    emulator: EmulatorState = request.app.state.emulator
    return emulator


def _job(state: EmulatorState, video_id: str) -> Job:
    job = state.table.get(video_id)
    if job is None:
        raise _not_found(video_id)
    return job


def _not_found(video_id: str) -> ApiError:
    return ApiError(404, f"Video with id '{video_id}' not found.", param="video_id", code="video_not_found")


def _video_response(state: EmulatorState, job: Job) -> JSONResponse:
    job_state = state.table.state(job)
    return JSONResponse(state.table.video_object(job, job_state), headers=_poll_hint(job_state.wait_s))


def _poll_hint(wait_s: float | None) -> dict[str, str]:
    """`openai-poll-after-ms`: when the soonest open job should change, clamped; the maximum if none is."""
    low, high = POLL_HINT_MS
    ms = high if wait_s is None else round(wait_s * 1000)
    return {"openai-poll-after-ms": str(max(low, min(high, ms)))}


class _Source:
    """The video an extension or an edit starts from: its file, model, size and whole seconds."""

    def __init__(self, path: Path, model: str, size: str, seconds: int, video_id: str | None) -> None:
        self.path, self.model, self.size, self.seconds, self.video_id = path, model, size, seconds, video_id

    def done(self) -> None:
        """The job has its own copy: an uploaded source is removed (a video of ours stays)."""
        if self.video_id is None:
            self.path.unlink(missing_ok=True)


async def _source_video(state: EmulatorState, video: object, verb: str) -> _Source:
    """`video` as {"id": ...} (a completed video of ours) or an uploaded file (a size a model offers)."""
    if video is None:
        raise _missing("video")
    if isinstance(video, dict):
        video_id = video.get("id")
        if not video_id:
            raise _missing("video.id")
        source = _job(state, str(video_id))
        source_state = state.table.state(source)
        if source_state.status != "completed":
            message = f"Video {source.id} is {source_state.status}; only a completed video can be {verb}."
            raise ApiError(400, message, param="video", code="invalid_state")
        path = state.table.media_dir(source.id) / VIDEO_FILE
        if not path.is_file():
            raise ApiError(400, f"The content of video {source.id} has expired.", param="video", code="video_expired")
        return _Source(path, base_model(source.model), source.size, source.seconds, source.id)
    assert isinstance(video, Upload)
    probed = await asyncio.to_thread(probe_video, video.data)
    if probed is None:
        message = "Invalid 'video': expected a video file (MP4, WebM or MOV) with at least one frame."
        raise ApiError(400, message, param="video", code="invalid_video")
    size, seconds = probed
    model = next((name for name, spec in MODELS.items() if size in spec.sizes), None)
    if model is None:
        sizes = sorted({s for spec in MODELS.values() for s in spec.sizes})
        message = f"Invalid 'video': it is {size}; supported sizes are {', '.join(sizes)}."
        raise ApiError(400, message, param="video", code="invalid_video_size")
    if not 1 <= seconds <= max(EXTENSION_SECONDS):
        message = f"Invalid 'video': it lasts {seconds} s; upload 1 to {max(EXTENSION_SECONDS)} seconds."
        raise ApiError(400, message, param="video", code="invalid_video_length")
    state.uploads_dir.mkdir(parents=True, exist_ok=True)
    path = state.uploads_dir / f"upload-{secrets.token_hex(8)}.mp4"  # our name: the client's is never a path
    await asyncio.to_thread(path.write_bytes, video.data)
    return _Source(path, model, size, seconds, None)


def _check_characters(state: EmulatorState, given: object) -> tuple[str, ...]:
    """The names of the characters a create names by id (at most MAX_CHARACTERS, each one known)."""
    if given is None:
        return ()
    assert isinstance(given, list)
    if len(given) > MAX_CHARACTERS:
        message = f"Invalid 'characters': at most {MAX_CHARACTERS} characters per video, got {len(given)}."
        raise ApiError(400, message, param="characters", code="array_above_max_length")
    names = []
    for n, item in enumerate(given):
        character_id = item.get("id")
        if not character_id:
            raise _missing(f"characters[{n}].id")
        character = state.characters.get(character_id)
        if character is None:
            message = f"Invalid 'characters[{n}].id': no character with id '{character_id}'."
            raise ApiError(400, message, param=f"characters[{n}].id", code="character_not_found")
        names.append(str(character["name"]))
    return tuple(names)


def _reference_object(state: EmulatorState, given: dict[str, str], size: str) -> tuple[bytes, str]:
    """`input_reference` as {"file_id": ...} or {"image_url": ...}: a data URL, or an https URL that
    the emulator never fetches (it answers as the API does for a URL it cannot reach)."""
    if len(given) != 1:
        message = "Invalid 'input_reference': give exactly one of 'image_url' or 'file_id'."
        raise ApiError(400, message, param="input_reference", code="invalid_value")
    if "file_id" in given:
        file_id = given["file_id"]
        data = state.files.read(file_id)
        if data is None:
            message = f"Invalid 'input_reference.file_id': no file with id '{file_id}'."
            raise ApiError(400, message, param="input_reference.file_id", code="file_not_found")
        return _check_reference(data, size)
    url = given["image_url"]
    param = "input_reference.image_url"
    if url.startswith("data:"):
        header, _, payload = url.partition(",")
        if not header.endswith(";base64") or not payload:
            message = "Invalid 'input_reference.image_url': expected a base64 data URL (data:image/png;base64,...)."
            raise ApiError(400, message, param=param, code="invalid_image_url")
        if len(payload) > MAX_REFERENCE_BYTES * 4 // 3 + 4:
            message = f"Invalid 'input_reference.image_url': larger than {MAX_REFERENCE_BYTES // (1024 * 1024)} MB."
            raise ApiError(400, message, param=param)
        try:
            data = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            message = "Invalid 'input_reference.image_url': the base64 data is damaged."
            raise ApiError(400, message, param=param, code="invalid_image_url") from None
        return _check_reference(data, size)
    if url.startswith("https://"):
        message = (
            "Invalid 'input_reference.image_url': the image could not be downloaded from the URL. "
            "(The soranb emulator never fetches URLs: send the image as a data URL, a file_id or an upload.)"
        )
        raise ApiError(400, message, param=param, code="invalid_image_url")
    message = "Invalid 'input_reference.image_url': expected an https URL or a base64 data URL."
    raise ApiError(400, message, param=param, code="invalid_image_url")


def _missing(name: str) -> ApiError:
    return ApiError(400, f"Missing required parameter: '{name}'.", param=name, code="missing_required_parameter")


def _text(fields: dict[str, Any], name: str, default: str) -> str:
    value = fields.get(name)
    if value is None or value == "":
        return default
    return str(value)


def _check_model(state: EmulatorState, model: str) -> str:
    """The catalog model `model` names (itself, or the model a dated snapshot is a version of); on Azure,
    `model` names a deployment."""
    if state.config.deployments:
        if model not in state.config.deployments:
            message = (
                "The API deployment for this resource does not exist. If you created the deployment within "
                "the last 5 minutes, please wait a moment and try again."
            )
            raise ApiError(404, message, code="DeploymentNotFound")
        model = state.config.deployments[model]
    if model in state.config.retired_models or base_model(model) in state.config.retired_models:
        message = f"The model `{model}` does not exist or you do not have access to it."
        raise ApiError(404, message, param="model", code="model_not_found")
    if base_model(model) not in MODELS:
        raise ApiError(400, _invalid_value(model, [*MODELS, *SNAPSHOTS]), param="model", code="invalid_value")
    return base_model(model)


def _check_prompt(prompt: object) -> str:
    if prompt is None:
        raise ApiError(400, "Missing required parameter: 'prompt'.", param="prompt", code="missing_required_parameter")
    if not isinstance(prompt, str):
        raise ApiError(400, "Invalid type for 'prompt': expected a string.", param="prompt", code="invalid_type")
    if not prompt:
        message = "Invalid 'prompt': empty string. Expected a string with minimum length 1."
        raise ApiError(400, message, param="prompt", code="empty_string")
    if len(prompt) > MAX_PROMPT_CHARS:
        message = (
            f"Invalid 'prompt': string too long. Expected a string with maximum length {MAX_PROMPT_CHARS}, "
            f"but got a string with length {len(prompt)} instead."
        )
        raise ApiError(400, message, param="prompt", code="string_above_max_length")
    return prompt


def _check_reference(data: bytes, size: str) -> tuple[bytes, str]:
    """The uploaded image as (bytes, suffix), if it is a JPEG/PNG/WebP of exactly `size` pixels."""
    if len(data) > MAX_REFERENCE_BYTES:
        message = f"Invalid 'input_reference': larger than {MAX_REFERENCE_BYTES // (1024 * 1024)} MB."
        raise ApiError(400, message, param="input_reference")
    try:
        with Image.open(io.BytesIO(data)) as image:
            image_format, image_size = image.format, image.size
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError):
        image_format, image_size = None, (0, 0)
    if image_format not in _REFERENCE_SUFFIX:
        message = "Invalid 'input_reference': expected a JPEG, PNG or WebP image."
        raise ApiError(400, message, param="input_reference", code="invalid_image_format")
    if image_size != parse_size(size):
        width, height = image_size
        message = (
            f"Invalid 'input_reference': the image is {width}x{height} but the requested size is {size}; "
            "they must match."
        )
        raise ApiError(400, message, param="input_reference", code="invalid_image_size")
    return data, _REFERENCE_SUFFIX[image_format]


def _invalid_value(value: str, allowed: list[str], qualifier: str = "") -> str:
    choices = ", ".join(f"'{a}'" for a in allowed)
    return f"Invalid value: '{value}'. Supported values{qualifier} are: {choices}."


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return exc.response()


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return error_response(404, f"Invalid URL ({request.method} {request.url.path})")
    return error_response(exc.status_code, exc.detail, headers=exc.headers)
