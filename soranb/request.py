"""A generation request and the rules it must meet before anything is sent."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Literal

from .catalog import EXTENSION_SECONDS, MAX_CHARACTERS, MAX_PROMPT_CHARS, MODELS, SNAPSHOTS, base_model, estimate_cost
from .errors import RequestInvalid
from .images import FitMode, ImageInfo, fit_image, inspect_image

__all__ = [
    "MAX_JOB_ID",
    "GenerationRequest",
    "ImageInput",
    "SourceVideo",
    "job_id_problem",
    "short_job_id",
    "validate_request",
]

_REF_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")  # a character or file id, as providers make them
_DATA_URL = re.compile(r"data:image/(png|jpeg|webp);base64,[A-Za-z0-9+/=]+")
MAX_IMAGE_URL_CHARS = 28 * 1024 * 1024  # a 20 MB image as base64
MAX_JOB_ID = 1024  # a provider's job ids are opaque: LiteLLM's are ~300 characters of base64


@dataclass(frozen=True)
class SourceVideo:
    """The provider's video a request extends or edits, and for an extension how many seconds it adds."""

    kind: Literal["extend", "edit"]
    job_id: str
    added_seconds: int = 0


@dataclass(frozen=True)
class ImageInput:
    """A starting image as the user gave it. The file name is kept for display only."""

    filename: str
    data: bytes

    def __repr__(self) -> str:  # keep bytes out of reprs and logs
        return f"ImageInput(filename={self.filename!r}, bytes={len(self.data)})"


@dataclass(frozen=True)
class GenerationRequest:
    prompt: str
    model: str = "sora-2"
    size: str = "1280x720"
    seconds: int = 4
    image: ImageInput | None = None
    fit: FitMode | None = None  # how to make a mismatched image fit; None: refuse it
    characters: tuple[str, ...] = ()  # ids of characters the video features
    image_url: str | None = None  # a starting image the provider fetches (https) or a data URL
    image_file_id: str | None = None  # a starting image uploaded to the provider's Files API
    source: SourceVideo | None = None  # extend or edit this video instead of creating one

    @property
    def cost(self) -> Decimal:
        """The list price; an extension pays for the seconds it adds (`seconds` is the stitched total)."""
        if self.source is not None and self.source.kind == "extend":
            return estimate_cost(self.model, self.size, self.source.added_seconds)
        return estimate_cost(self.model, self.size, self.seconds)

    @property
    def sent_as_json(self) -> bool:
        """Whether the provider call needs more than create's multipart form (a reference object,
        characters, an extension or an edit)."""
        return bool(self.characters or self.image_url or self.image_file_id or self.source)

    def problems(self) -> list[RequestInvalid]:
        """Every rule this request breaks, each saying what to change ([] when valid)."""
        found: list[RequestInvalid] = []
        text = self.prompt.strip() if isinstance(self.prompt, str) else ""
        if not text:
            found.append(RequestInvalid("prompt", "the prompt is empty; describe the video you want"))
        elif len(self.prompt) > MAX_PROMPT_CHARS:
            found.append(
                RequestInvalid(
                    "prompt",
                    f"the prompt has {len(self.prompt):,} characters; shorten it to {MAX_PROMPT_CHARS:,}",
                )
            )
        spec = MODELS.get(base_model(self.model))
        if spec is None:
            names = ", ".join([*MODELS, *SNAPSHOTS])
            found.append(RequestInvalid("model", f"unknown model {self.model!r}; choose one of {names}"))
        elif self.size not in spec.sizes:
            found.append(
                RequestInvalid(
                    "size", f"{self.model} does not offer {self.size}; choose one of {', '.join(spec.sizes)}"
                )
            )
        allowed = spec.seconds if spec else ()
        if self.source is not None:
            found += self._source_problems()
        elif spec is not None and self.seconds not in allowed:
            found.append(
                RequestInvalid(
                    "seconds",
                    f"{self.seconds!r} seconds is not offered; choose {', '.join(map(str, allowed))}",
                )
            )
        if self.image is not None:
            try:
                info = inspect_image(self.image.data)
            except RequestInvalid as exc:
                found.append(exc)
            else:
                if info.size != self.size and self.fit is None:
                    found.append(
                        RequestInvalid(
                            "image",
                            f"the starting image is {info.size} but the video is {self.size}; "
                            "choose 'crop' or 'pad' to fit it, or pick an image of that size",
                        )
                    )
        found += self._reference_problems()
        return found

    def _source_problems(self) -> list[RequestInvalid]:
        assert self.source is not None
        found = []
        if job_id_problem(self.source.job_id) is not None:
            found.append(
                RequestInvalid(self.source.kind, "the source video has no valid job id; pick a completed video")
            )
        if self.source.kind == "extend" and self.source.added_seconds not in EXTENSION_SECONDS:
            choices = ", ".join(map(str, EXTENSION_SECONDS))
            found.append(
                RequestInvalid("seconds", f"an extension adds {choices} seconds, not {self.source.added_seconds!r}")
            )
        return found

    def _reference_problems(self) -> list[RequestInvalid]:
        found = []
        given = [
            name
            for name, value in (
                ("image", self.image),
                ("image URL", self.image_url),
                ("image file id", self.image_file_id),
            )
            if value
        ]
        if len(given) > 1:
            found.append(RequestInvalid("image", f"give one starting image, not {' and '.join(given)}"))
        if self.image_url is not None and not (
            len(self.image_url) <= MAX_IMAGE_URL_CHARS
            and (self.image_url.startswith("https://") or _DATA_URL.fullmatch(self.image_url))
        ):
            found.append(RequestInvalid("image_url", "the image URL must be https://... or data:image/png;base64,..."))
        if self.image_file_id is not None and not _REF_ID.fullmatch(self.image_file_id):
            found.append(RequestInvalid("image_file_id", f"{self.image_file_id[:40]!r} is not a file id (file-...)"))
        if len(self.characters) > MAX_CHARACTERS:
            found.append(RequestInvalid("characters", f"a video features at most {MAX_CHARACTERS} characters"))
        for character in self.characters:
            if not _REF_ID.fullmatch(character):
                found.append(RequestInvalid("characters", f"{character[:40]!r} is not a character id (char_...)"))
        return found

    def image_info(self) -> ImageInfo | None:
        return inspect_image(self.image.data) if self.image else None

    def prepared(self) -> GenerationRequest:
        """The request as it will be sent: validated, the image fitted to the size."""
        validate_request(self)
        if self.image is None:
            return self
        info = inspect_image(self.image.data)
        if info.size == self.size:
            return self
        assert self.fit is not None
        fitted = fit_image(self.image.data, self.size, self.fit)
        return replace(self, image=ImageInput(self.image.filename, fitted))


def validate_request(request: GenerationRequest) -> None:
    """Raise the first problem of `request` (RequestInvalid), or return."""
    problems = request.problems()
    if problems:
        raise problems[0]


def job_id_problem(value: object) -> str | None:
    """Why `value` cannot be a provider's job id, or None when it can (see `provider.check_job_id`)."""
    if not isinstance(value, str):
        return "it is not text"
    if not value:
        return "it is empty"
    if len(value) > MAX_JOB_ID:
        return f"it is {len(value)} characters long, more than {MAX_JOB_ID}"
    if value in (".", ".."):
        return "'.' or '..' would be a path segment of its own"
    if "/" in value:
        return "a '/' would change the URL path it goes into"
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        return "it holds a control character"
    if any(c.isspace() for c in value):
        return "it holds a space or other whitespace"
    if not value.isascii():
        return "it holds characters that are not printable ASCII"
    return None


def short_job_id(job_id: str) -> str:
    """A long provider id as people read it (first 12 + "…" + last 6): a gateway's 300-character id
    would drown a message, a log line or a card, while OpenAI's own (54) are shown whole, as the
    dashboard shows them. The whole id stays on the record; this is never used to call the provider."""
    return job_id if len(job_id) <= 64 else f"{job_id[:12]}…{job_id[-6:]}"
