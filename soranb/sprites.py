"""Spritesheets: the provider's grid of stills from a finished video, kept for the cards' scrub preview.

The Videos API serves a `spritesheet` variant beside the video and the thumbnail: one JPEG of
evenly spaced stills in a grid. Its grid is not announced, so it is read from the image when the
sheet is stored: tiles have the video's shape, and the emulator (like the API's sheets seen so
far) makes one tile per second. A sheet whose shape fits no grid of that many tiles is not kept
as a scrub preview (the card shows its thumbnail, as before). What is kept goes in the record's
metadata (`spritesheet`: key, columns, rows, frames) and is checked again when read, since a
store row can say anything.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from typing import Any

from .catalog import parse_size
from .records import GenerationRecord
from .store.base import is_media_key

__all__ = ["MAX_FRAMES", "Spritesheet", "sprite_grid", "spritesheet_key"]

MAX_FRAMES = 240
_FIT = 0.03  # how far a tile's shape may be from the video's (JPEG sheets are whole pixels)


def spritesheet_key(record_id: str) -> str:
    """The store key of a record's spritesheet, beside its thumbnail (built from the id only)."""
    key = f"thumbnails/{record_id}-sprites.jpg"
    if not is_media_key(key):
        raise ValueError(f"not a record id: {record_id!r}")
    return key


def sprite_grid(width: int, height: int, frames: int, video_size: str) -> tuple[int, int] | None:
    """(columns, rows) of a `width` x `height` sheet of `frames` tiles shaped like the video, or None."""
    try:
        video_w, video_h = parse_size(video_size)
    except ValueError:
        return None
    if min(width, height, frames, video_w, video_h) <= 0 or frames > MAX_FRAMES:
        return None
    best: tuple[float, int, int] | None = None
    for columns in range(1, frames + 1):
        rows = math.ceil(frames / columns)
        tile_shape = (width / columns) / (height / rows)
        error = abs(tile_shape / (video_w / video_h) - 1)
        if error <= _FIT and (best is None or error < best[0]):
            best = (error, columns, rows)
    return None if best is None else (best[1], best[2])


@dataclass(frozen=True)
class Spritesheet:
    key: str
    columns: int
    rows: int
    frames: int

    @classmethod
    def read(cls, data: bytes, record: GenerationRecord) -> Spritesheet | None:
        """The sheet's grid from its bytes (None when it is not an image or fits no grid)."""
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
        except (UnidentifiedImageError, OSError, ValueError):
            return None
        grid = sprite_grid(width, height, record.seconds, record.size)
        return None if grid is None else cls(spritesheet_key(record.id), grid[0], grid[1], record.seconds)

    def to_metadata(self) -> dict[str, Any]:
        return {"key": self.key, "columns": self.columns, "rows": self.rows, "frames": self.frames}

    @classmethod
    def of(cls, record: GenerationRecord) -> Spritesheet | None:
        """The record's stored spritesheet, when its metadata describes a sane one."""
        value = record.metadata.get("spritesheet") if isinstance(record.metadata, dict) else None
        if not isinstance(value, dict):
            return None
        key, columns, rows, frames = (value.get(k) for k in ("key", "columns", "rows", "frames"))
        numbers = (columns, rows, frames)
        if not is_media_key(key) or not all(isinstance(n, int) and 0 < n <= MAX_FRAMES for n in numbers):
            return None
        assert isinstance(key, str) and isinstance(columns, int) and isinstance(rows, int) and isinstance(frames, int)
        if columns * rows < frames:
            return None
        return cls(key, columns, rows, frames)
