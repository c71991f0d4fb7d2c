"""Spritesheets: fetched and stored beside the thumbnail, their grid read from the image, deleted with the record."""

from __future__ import annotations

import io

import pytest
from PIL import Image
from widget_helpers import finish

from soranb.records import GenerationRecord, Status
from soranb.request import GenerationRequest
from soranb.sprites import Spritesheet, sprite_grid, spritesheet_key


@pytest.mark.parametrize(
    ("width", "height", "frames", "size", "grid"),
    [
        (1024, 144, 4, "1280x720", (4, 1)),  # the emulator's sheets: 4 tiles of 256 x 144 a row
        (1024, 288, 8, "1280x720", (4, 2)),
        (1024, 432, 12, "1280x720", (4, 3)),
        (1024, 455, 4, "720x1280", (4, 1)),  # portrait tiles
        (1024, 1024, 4, "1280x720", None),  # no grid of 4 video-shaped tiles is square
        (1024, 144, 0, "1280x720", None),
        (1024, 144, 4, "not a size", None),
    ],
)
def test_the_grid_is_read_from_the_sheets_shape(width, height, frames, size, grid):
    assert sprite_grid(width, height, frames, size) == grid


def _record(**metadata: object) -> GenerationRecord:
    return GenerationRecord("x", "sora-2", "1280x720", 4, status=Status.COMPLETED, metadata=dict(metadata))


@pytest.mark.parametrize(
    "value",
    [
        {"key": "../../etc/passwd", "columns": 4, "rows": 1, "frames": 4},
        {"key": "https://evil.example/x.jpg", "columns": 4, "rows": 1, "frames": 4},
        {"key": "thumbnails/a-sprites.jpg", "columns": "4", "rows": 1, "frames": 4},
        {"key": "thumbnails/a-sprites.jpg", "columns": 2, "rows": 1, "frames": 4},  # too few tiles
        {"key": "thumbnails/a-sprites.jpg", "columns": 10**9, "rows": 1, "frames": 4},
        "thumbnails/a-sprites.jpg",
    ],
)
def test_a_stored_row_that_says_anything_is_no_spritesheet(value):
    assert Spritesheet.of(_record(spritesheet=value)) is None


def test_a_finished_video_keeps_its_spritesheet_and_loses_it_with_the_record(service):
    done = finish(service, service.generate(GenerationRequest("a lantern festival", seconds=8)).id)
    sheet = Spritesheet.of(done)
    assert sheet == Spritesheet(spritesheet_key(done.id), 4, 2, 8)
    path = service.media_path(sheet.key)
    with Image.open(io.BytesIO(path.read_bytes())) as image:
        assert image.format == "JPEG" and image.size == (1024, 288)
    service.delete(done.id)
    assert not path.exists()  # no orphan file left behind
