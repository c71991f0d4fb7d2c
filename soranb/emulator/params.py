"""Reading a request body as strictly as the Videos API does.

Each endpoint declares its parameters (`Field`s): a text value, an uploaded file, an object with
known keys, or a list of such objects. A body is read from `application/json` or
`multipart/form-data` (whose bracket keys, `video[id]` or `characters[][id]`, are what the SDK
sends for nested values); anything else, form-urlencoded included, is refused with a message that
names the content type. An unknown parameter or a value of the wrong type gets a 400 that names it,
so a client's typo never passes silently.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import UploadFile
from starlette.requests import Request

from soranb.emulator.wire import ApiError

__all__ = ["MAX_JSON_BYTES", "Field", "Upload", "read_body"]

MAX_JSON_BYTES = 1024 * 1024  # a create or remix body is a prompt and a few fields: far below this
_KEY = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)((?:\[[^\[\]]*\])*)")


@dataclass(frozen=True)
class Field:
    """One parameter: text, a file upload, an object with `keys` (a list of them when `many`)."""

    text: bool = False
    file: bool = False
    keys: tuple[str, ...] = ()
    many: bool = False
    max_bytes: int = 20 * 1024 * 1024  # for a file


@dataclass(frozen=True)
class Upload:
    """An uploaded file's bytes; its name and type are the client's and only ever shown, never used."""

    filename: str
    content_type: str
    data: bytes


async def read_body(request: Request, fields: dict[str, Field], *, multipart: bool = True) -> dict[str, Any]:
    """The body as {name: str | Upload | dict | list[dict]}, checked against `fields`."""
    content_type = request.headers.get("content-type", "")
    kind = content_type.split(";")[0].strip().lower()
    accepted = "multipart/form-data or application/json" if multipart else "application/json"
    if kind == "application/json":
        parsed = await json_body(request)
        if not isinstance(parsed, dict):
            raise ApiError(400, f"The body must be a JSON object, but got {_kind(parsed)} instead.")
        body: dict[str, Any] = parsed
    elif kind == "multipart/form-data" and multipart:
        body = await _form_body(request, fields)
    elif kind == "application/x-www-form-urlencoded":
        raise ApiError(
            400,
            f"Form-urlencoded bodies are not supported by this endpoint; send {accepted}.",
            code="unsupported_content_type",
        )
    else:
        shown = f"'{kind}'" if kind else "missing"
        raise ApiError(
            400,
            f"Unsupported Content-Type ({shown}) for {request.method} {request.url.path}; send {accepted}.",
            code="unsupported_content_type",
        )
    for name, value in body.items():
        _check(name, value, fields)
    return body


async def json_body(request: Request) -> Any:
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
    except RecursionError:  # `[[[[...`: the parser gives up long before the size limit
        raise ApiError(400, "The body's JSON is nested too deeply; send a flat JSON object.") from None


async def _form_body(request: Request, fields: dict[str, Field]) -> dict[str, Any]:
    """A multipart form as nested values: `video[id]` -> {"video": {"id": ...}}, `characters[][id]` (or
    `characters[0][id]`) -> {"characters": [{"id": ...}]}."""
    body: dict[str, Any] = {}
    async with request.form(max_files=1, max_fields=50) as form:  # closes the spooled upload files
        for key, value in form.multi_items():
            match = _KEY.fullmatch(key)
            if match is None:
                raise ApiError(400, f"Unknown parameter: '{key}'.", param=key, code="unknown_parameter")
            name, brackets = match.group(1), re.findall(r"\[([^\[\]]*)\]", match.group(2))
            field = fields.get(name)
            if field is None:
                raise ApiError(400, f"Unknown parameter: '{name}'.", param=name, code="unknown_parameter")
            if isinstance(value, UploadFile):
                if brackets or not field.file:
                    raise ApiError(400, f"Invalid type for '{key}': a file is not accepted here.", param=key)
                data = await value.read(field.max_bytes + 1)
                if len(data) > field.max_bytes:
                    message = f"Invalid '{name}': the file is larger than {field.max_bytes // (1024 * 1024)} MB."
                    raise ApiError(400, message, param=name, code="file_too_large")
                body[name] = Upload(value.filename or "", value.content_type or "", data)
            elif not brackets:
                body[name] = value
            elif len(brackets) == 1 and brackets[0]:
                target = body.setdefault(name, {})
                if not isinstance(target, dict):
                    raise ApiError(400, f"Invalid type for '{name}': mixed forms.", param=name, code="invalid_type")
                target[brackets[0]] = value
            elif len(brackets) == 2 and (brackets[0] == "" or brackets[0].isdigit()) and brackets[1]:
                items = body.setdefault(name, [])
                if not isinstance(items, list):
                    raise ApiError(400, f"Invalid type for '{name}': mixed forms.", param=name, code="invalid_type")
                index = int(brackets[0]) if brackets[0] else None
                if index is None and (not items or brackets[1] in items[-1]):
                    items.append({})
                elif index is not None:
                    if index > len(items) or index > 50:
                        raise ApiError(400, f"Invalid '{key}': indexes must count up from 0.", param=name)
                    if index == len(items):
                        items.append({})
                items[-1 if index is None else index][brackets[1]] = value
            else:
                raise ApiError(400, f"Unknown parameter: '{key}'.", param=key, code="unknown_parameter")
    return body


def _check(name: str, value: Any, fields: dict[str, Field]) -> None:
    field = fields.get(name)
    if field is None:
        raise ApiError(400, f"Unknown parameter: '{name}'.", param=name, code="unknown_parameter")
    if isinstance(value, Upload):
        return  # only accepted by `_form_body` where the field takes a file
    if isinstance(value, str) and field.text:
        return
    if field.keys and not field.many and isinstance(value, dict):
        _check_object(name, value, field.keys)
        return
    if field.keys and field.many and isinstance(value, list):
        for n, item in enumerate(value):
            if not isinstance(item, dict):
                raise _wrong_type(f"{name}[{n}]", "an object", item)
            _check_object(f"{name}[{n}]", item, field.keys)
        return
    wanted = [w for w, ok in (("a string", field.text), ("an object", field.keys and not field.many)) if ok]
    wanted += ["an array of objects"] if field.many else []
    wanted += ["a file"] if field.file else []
    raise _wrong_type(name, " or ".join(wanted), value)


def _check_object(name: str, value: dict[str, Any], keys: tuple[str, ...]) -> None:
    for key, inner in value.items():
        if key not in keys:
            param = f"{name}.{key}"
            raise ApiError(400, f"Unknown parameter: '{param}'.", param=param, code="unknown_parameter")
        if not isinstance(inner, str):
            raise _wrong_type(f"{name}.{key}", "a string", inner)


def _wrong_type(name: str, wanted: str, value: Any) -> ApiError:
    message = f"Invalid type for '{name}': expected {wanted}, but got {_kind(value)} instead."
    return ApiError(400, message, param=name, code="invalid_type")


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return "a file"
