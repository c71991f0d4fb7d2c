"""A generation request and the rules it must meet before anything is sent."""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal

from .catalog import MAX_PROMPT_CHARS, MODELS, estimate_cost
from .errors import RequestInvalid
from .images import FitMode, ImageInfo, fit_image, inspect_image

__all__ = ["GenerationRequest", "ImageInput", "validate_request"]


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

    @property
    def cost(self) -> Decimal:
        return estimate_cost(self.model, self.size, self.seconds)

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
        spec = MODELS.get(self.model)
        if spec is None:
            found.append(RequestInvalid("model", f"unknown model {self.model!r}; choose {' or '.join(MODELS)}"))
        elif self.size not in spec.sizes:
            found.append(
                RequestInvalid(
                    "size", f"{self.model} does not offer {self.size}; choose one of {', '.join(spec.sizes)}"
                )
            )
        allowed = spec.seconds if spec else ()
        if spec is not None and self.seconds not in allowed:
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
