"""The emulator's HTTP face: a Starlette app with the routes, shapes and errors of the Videos API.

The request pipeline, outermost first: request log → latency → faults → API key
→ Starlette (routes). Faults and the log sit outside Starlette's own error
middleware on purpose: a dropped connection must leave the app as an exception,
not be turned into a 500 answer.
"""

from __future__ import annotations

import io
import json
import logging
import shutil
import tempfile
import weakref
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError
from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from soranb.catalog import MAX_PROMPT_CHARS, MODELS, parse_size
from soranb.emulator.config import EmulatorConfig
from soranb.emulator.faults import FaultMiddleware, FaultPicker
from soranb.emulator.jobs import Job, JobTable
from soranb.emulator.pipeline import ApiKeyCheck, Latency, RequestLog
from soranb.emulator.render import SPRITESHEET_FILE, THUMBNAIL_FILE, VIDEO_FILE
from soranb.emulator.wire import ApiError, error_response

__all__ = ["EmulatorState", "create_app"]

log = logging.getLogger("soranb.emulator")

API_DEFAULT_MODEL = "sora-2"
API_DEFAULT_SIZE = "720x1280"  # the Videos API's own default (portrait), whatever soranb's forms preselect
API_DEFAULT_SECONDS = "4"
POLL_HINT_MS = (250, 10_000)
MAX_REFERENCE_BYTES = 20 * 1024 * 1024
MAX_JSON_BYTES = 1024 * 1024  # a create or remix body is a prompt and a few fields: far below this
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
        self.faults = FaultPicker(config.faults, config.seed)

    def close(self) -> None:
        """Stop rendering; remove the state folder if the emulator made it itself."""
        self.table.close()
        if self._owned_dir is not None:
            shutil.rmtree(self._owned_dir, ignore_errors=True)


def create_app(config: EmulatorConfig | None = None) -> Starlette:
    """A fresh emulator app; `config` defaults to `EmulatorConfig()` (real-time speed)."""
    state = EmulatorState(config or EmulatorConfig())
    app = _EmulatorApp(
        routes=[
            Route("/v1/videos", _create, methods=["POST"]),
            Route("/v1/videos", _list, methods=["GET"]),
            Route("/v1/videos/{video_id}", _retrieve, methods=["GET"]),
            Route("/v1/videos/{video_id}", _delete, methods=["DELETE"]),
            Route("/v1/videos/{video_id}/content", _content, methods=["GET"]),
            Route("/v1/videos/{video_id}/remix", _remix, methods=["POST"]),
        ],
        exception_handlers={ApiError: _api_error, HTTPException: _http_error},
    )
    app.state.emulator = state
    return app


class _EmulatorApp(Starlette):
    def build_middleware_stack(self) -> ASGIApp:
        state: EmulatorState = self.state.emulator
        inner = ApiKeyCheck(super().build_middleware_stack(), state.config.api_key)
        return RequestLog(Latency(FaultMiddleware(inner, state.faults), state.config.latency_ms))


# -- handlers --------------------------------------------------------------------------------------


async def _create(request: Request) -> Response:
    state = _state(request)
    fields, upload = await _read_create_body(request)
    model = _text(fields, "model", API_DEFAULT_MODEL)
    _check_model(state, model)
    prompt = _check_prompt(fields.get("prompt"))
    seconds = _text(fields, "seconds", API_DEFAULT_SECONDS)
    allowed_seconds = [str(s) for s in MODELS[model].seconds]
    if seconds not in allowed_seconds:
        raise ApiError(400, _invalid_value(seconds, allowed_seconds), param="seconds", code="invalid_value")
    size = _text(fields, "size", API_DEFAULT_SIZE)
    if size not in MODELS[model].sizes:
        message = _invalid_value(size, list(MODELS[model].sizes), f" for model {model}")
        raise ApiError(400, message, param="size", code="invalid_value")
    reference = _check_reference(upload, size) if upload is not None else None
    job = state.table.create(model=model, prompt=prompt, size=size, seconds=int(seconds), reference=reference)
    return _video_response(state, job)


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
    name, media_type = _VARIANTS[variant]
    path = state.table.media_dir(job.id) / name
    if not path.is_file():
        raise _not_found(job.id)
    return FileResponse(path, media_type=media_type)


async def _remix(request: Request) -> Response:
    state = _state(request)
    source = _job(state, request.path_params["video_id"])
    try:
        body = await _json_body(request)
    except ApiError as exc:
        if exc.status == 413:
            raise
        raise ApiError(400, "The body must be a JSON object with a 'prompt'.") from None
    prompt = _check_prompt(body.get("prompt") if isinstance(body, dict) else None)
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


async def _read_create_body(request: Request) -> tuple[dict[str, Any], bytes | None]:
    """The create request's fields and the bytes of its input_reference upload (JSON or multipart)."""
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("application/json"):
        body = await _json_body(request)
        if not isinstance(body, dict):
            raise ApiError(400, "The body must be a JSON object.")
        if "input_reference" in body:
            raise ApiError(400, "Send input_reference as a file in a multipart form.", param="input_reference")
        return body, None
    fields: dict[str, Any] = {}
    upload = None
    async with request.form(max_files=1, max_fields=50) as form:  # closes the spooled upload files
        for key, value in form.multi_items():
            if isinstance(value, UploadFile):
                if key != "input_reference":
                    raise ApiError(400, f"Unexpected file field '{key}'.", param=key)
                upload = await value.read(MAX_REFERENCE_BYTES + 1)
            elif key.startswith("input_reference"):
                message = "The soranb emulator takes input_reference as an uploaded image file only."
                raise ApiError(400, message, param="input_reference")
            else:
                fields[key] = value
    return fields, upload


async def _json_body(request: Request) -> Any:
    """The parsed JSON body, read only up to `MAX_JSON_BYTES`: a huge body is refused with 413 while it
    streams in, never held whole in memory (like an upload, which is capped the same way)."""
    too_large = ApiError(413, f"The request body is larger than the {MAX_JSON_BYTES // 1024} KB this endpoint accepts.")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_JSON_BYTES:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_JSON_BYTES:
            raise too_large
        chunks.append(chunk)
    try:
        return json.loads(b"".join(chunks))
    except ValueError:
        raise ApiError(400, "The body is not valid JSON.") from None


def _text(fields: dict[str, Any], name: str, default: str) -> str:
    value = fields.get(name)
    if value is None or value == "":
        return default
    return str(value)


def _check_model(state: EmulatorState, model: str) -> None:
    if model in state.config.retired_models:
        message = f"The model `{model}` does not exist or you do not have access to it."
        raise ApiError(404, message, param="model", code="model_not_found")
    if model not in MODELS:
        raise ApiError(400, _invalid_value(model, list(MODELS)), param="model", code="invalid_value")


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
