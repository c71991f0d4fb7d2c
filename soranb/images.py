"""Starting images: what a file really is, and fitting it to the video size.

The API takes JPEG, PNG or WebP whose pixel size equals the video size; we
check that before sending anything, and offer to crop or pad to fit.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Literal

from PIL import Image, ImageOps, UnidentifiedImageError

from .catalog import parse_size
from .errors import RequestInvalid

__all__ = ["ACCEPTED_FORMATS", "FitMode", "ImageInfo", "fit_image", "inspect_image"]

ACCEPTED_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
FitMode = Literal["crop", "pad"]
MAX_IMAGE_BYTES = 50 * 1024 * 1024


@dataclass(frozen=True)
class ImageInfo:
    format: str  # "JPEG" | "PNG" | "WEBP"
    width: int
    height: int

    @property
    def mime(self) -> str:
        return ACCEPTED_FORMATS[self.format]

    @property
    def size(self) -> str:
        return f"{self.width}x{self.height}"

    @property
    def extension(self) -> str:
        return {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp"}[self.format]


def inspect_image(data: bytes) -> ImageInfo:
    """Identify an image by its content (never by its file name)."""
    if not data:
        raise RequestInvalid("image", "the starting image is empty; choose a JPEG, PNG or WebP file")
    if len(data) > MAX_IMAGE_BYTES:
        raise RequestInvalid("image", "the starting image is larger than 50 MB; use a smaller file")
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.verify()
            fmt, (width, height) = image.format or "", image.size
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise RequestInvalid(
            "image", "the starting image is not a readable image; choose a JPEG, PNG or WebP file"
        ) from None
    if fmt not in ACCEPTED_FORMATS:
        raise RequestInvalid("image", f"the starting image is {fmt or 'unknown'}; use JPEG, PNG or WebP")
    return ImageInfo(fmt, width, height)


def fit_image(data: bytes, size: str, mode: FitMode) -> bytes:
    """Crop (cover) or pad (contain, black bars) the image to exactly `size`; returns PNG bytes."""
    inspect_image(data)
    width, height = parse_size(size)
    with Image.open(io.BytesIO(data)) as image:
        rgb = image.convert("RGB")
        if mode == "crop":
            fitted = ImageOps.fit(rgb, (width, height), Image.Resampling.LANCZOS)
        elif mode == "pad":
            fitted = ImageOps.pad(rgb, (width, height), Image.Resampling.LANCZOS, color=(0, 0, 0))
        else:
            raise RequestInvalid("fit", f"unknown fit mode {mode!r}; use 'crop' or 'pad'")
    out = io.BytesIO()
    fitted.save(out, format="PNG")
    return out.getvalue()
