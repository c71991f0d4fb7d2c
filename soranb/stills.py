"""Stills of a finished video: checked by their bytes, and made here when the provider's are wrong.

A gateway may ignore the `variant` of a content download and answer the MP4 for a thumbnail or a
spritesheet (LiteLLM's proxy does), or have no stills at all. What is stored as a still must be an
image, so each downloaded one is opened first; a missing or wrong one is made from the video itself
with PyAV: a WebP thumbnail, and a JPEG spritesheet of one tile per second in the grid `soranb.sprites`
reads. Runs PyAV and Pillow: call these in a worker thread.
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL import Image

__all__ = ["grid_of", "is_image", "spritesheet_from_video", "thumbnail_from_video"]

_IMAGE_FORMATS = frozenset({"WEBP", "JPEG", "PNG"})
_TILE_WIDTH = 160  # a spritesheet tile; its height follows the video's shape


def is_image(data: bytes) -> bool:
    """Whether `data` is a still image (WebP, JPEG or PNG) Pillow can open: never an MP4 under a still's name."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.format in _IMAGE_FORMATS
    except (UnidentifiedImageError, OSError, ValueError):
        return False


def thumbnail_from_video(video: Path) -> bytes:
    """A WebP of the video's frame a third of the way in (the first frame is often a fade)."""
    (frame,) = _frames(video, [1 / 3])
    out = io.BytesIO()
    frame.save(out, "WEBP", quality=80)
    return out.getvalue()


def grid_of(frames: int) -> tuple[int, int]:
    """(columns, rows) of the spritesheets made here: as square as `frames` tiles allow."""
    columns = math.ceil(math.sqrt(frames))
    return columns, math.ceil(frames / columns)


def spritesheet_from_video(video: Path, frames: int) -> bytes:
    """A JPEG grid of `frames` evenly spaced stills (one per second of a `frames`-second video)."""
    from PIL import Image

    stills = _frames(video, [(n + 0.5) / frames for n in range(frames)])
    width = _TILE_WIDTH
    height = max(1, round(width * stills[0].height / stills[0].width))
    columns, rows = grid_of(frames)
    sheet = Image.new("RGB", (columns * width, rows * height))
    for n, still in enumerate(stills):
        sheet.paste(still.resize((width, height)), ((n % columns) * width, (n // columns) * height))
    out = io.BytesIO()
    sheet.save(out, "JPEG", quality=75)
    return out.getvalue()


def _frames(video: Path, at: list[float]) -> list[Image.Image]:
    """The frames at these fractions of the video's length, decoded in one pass."""
    import av

    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        duration = float(stream.duration * stream.time_base) if stream.duration and stream.time_base else 0.0
        wanted = sorted(fraction * duration for fraction in at)
        found: list[Image.Image] = []
        last = None
        for frame in container.decode(stream):
            last = frame
            while wanted and (frame.time or 0.0) >= wanted[0]:
                found.append(frame.to_image())
                wanted.pop(0)
            if not wanted:
                break
        while wanted and last is not None:  # a video shorter than it says: its last frame
            found.append(last.to_image())
            wanted.pop(0)
    if not found:
        raise ValueError(f"{video.name} has no frame to make a still from")
    return found
